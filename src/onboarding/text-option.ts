/**
 * The set-up page's one opt-in: also fetch CLIP's text tower, so that each caption is checked against the picture and
 * an image whose caption does not match stays unlabelled. Offered only for a model whose graph template has a text
 * tower; off by default (its threshold for real models is assumed, not measured on real images). The label says what
 * it costs to download, the description what it takes on disk.
 */
import { findModel, loadCatalogue, modelSizes, type Catalogue } from '../installer/catalogue';
import { hasText, parseTemplate } from '../converter/template';
import { msg } from '../shared/i18n';
import type { InstallState } from '../shared/messages';
import { formatBytes } from '../shared/status-text';

/** What turning it on adds, in bytes; null where the catalogue does not say. */
export interface TextOffer {
  downloadBytes: number | null;
  diskBytes: number | null;
}

/** The elements (plain objects in unit tests): the row, the checkbox, its label and the size it is described by. */
export interface TextOptionParts {
  row: { hidden: boolean };
  check: { checked: boolean };
  label: { textContent: string | null };
  size: { textContent: string | null; hidden: boolean };
}

/**
 * Whether the model offers the text tower, and at what cost: its template (bundled under templates/) is read and
 * asked; a template that cannot be read offers nothing, so the install goes on as before.
 */
export async function textOffer(
  modelId: string,
  readTemplate: (folder: string) => Promise<string>,
  catalogue: Catalogue = loadCatalogue(),
): Promise<TextOffer | null> {
  const m = findModel(catalogue, modelId);
  if (!m) return null;
  try {
    if (!hasText(parseTemplate(await readTemplate(m.template)))) return null;
  } catch (err) {
    console.warn('[alt-text] set-up page: could not read the template of', modelId, err);
    return null;
  }
  const off = modelSizes(m, false);
  const on = modelSizes(m, true);
  return {
    downloadBytes: m.textDownloadBytes === undefined ? null : on.downloadBytes - off.downloadBytes,
    diskBytes: m.textDiskBytes === undefined ? null : on.diskBytes - off.diskBytes,
  };
}

/**
 * What the box says for a model's install state: the truth, not the page's default. A job that runs (or was paused,
 * or failed) shows what it asked for; an installed model, whether its pack carries the text tower; none, off. Null
 * when the state does not say (it comes from a document that predates these fields): the box is then left alone.
 */
export function textChecked(s: InstallState | undefined): boolean | null {
  if (!s || s.phase === 'not-installed') return false;
  if (s.text === undefined && s.readyText === undefined) return null;
  return s.phase === 'ready' ? !!s.readyText : !!s.text;
}

/**
 * Show the option for `offer` (hide it for null). The page sets the box from the model's state (textChecked) when the
 * model is chosen and when a job of it starts or ends; in between it keeps what the user ticked.
 */
export function showTextOption(parts: TextOptionParts, offer: TextOffer | null): void {
  parts.row.hidden = !offer;
  if (!offer) return;
  parts.label.textContent =
    offer.downloadBytes === null ? msg('onboardingTextCheckPlain') : msg('onboardingTextCheck', formatBytes(offer.downloadBytes));
  parts.size.hidden = offer.diskBytes === null;
  parts.size.textContent = offer.diskBytes === null ? '' : msg('onboardingTextCheckDisk', formatBytes(offer.diskBytes));
}

/** What the install request says: the box's value while it is offered, nothing otherwise (the installer's default). */
export function textChoice(parts: TextOptionParts): { text?: boolean } {
  return parts.row.hidden ? {} : { text: parts.check.checked };
}
