// The set-up page's opt-in to CLIP's text tower: offered only for a model whose template has one, with the sizes the
// catalogue gives, off by default; what the install request then carries; and the page's HTML (a real checkbox with a
// label, described by the size, inside the model choice). Messages come from the real en/de messages.json.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCatalogue, type Catalogue } from '../../src/installer/catalogue';
import { hasText, parseTemplate } from '../../src/converter/template';
import { showTextOption, textChecked, textChoice, textOffer, type TextOptionParts } from '../../src/onboarding/text-option';
import type { InstallState } from '../../src/shared/messages';
import { installState } from '../helpers/install-state';
import { dropLocale, readMessages, useLocale } from '../helpers/locale';

afterEach(dropLocale);

/** The small template (it has a text tower) and the same without one, as template.json text. */
const WITH_TEXT = readFileSync('packs/templates/small-fp32/template.json', 'utf8');
const WITHOUT_TEXT = (() => {
  const raw = JSON.parse(WITH_TEXT) as { graphs: { role: string }[]; manifest: Record<string, unknown> };
  raw.graphs = raw.graphs.filter((g) => g.role !== 'text');
  delete raw.manifest.text;
  return JSON.stringify(raw);
})();

const CATALOGUE: Catalogue = parseCatalogue(readFileSync('src/shared/catalogue.json', 'utf8'));

function parts(): TextOptionParts {
  return { row: { hidden: true }, check: { checked: false }, label: { textContent: '' }, size: { textContent: '', hidden: true } };
}

describe('textOffer', () => {
  it('offers the text tower for a model whose template has one, with the catalogue sizes', async () => {
    const asked: string[] = [];
    const offer = await textOffer('clipcap-coco', async (folder) => (asked.push(folder), WITH_TEXT), CATALOGUE);
    expect(asked).toEqual(['vit-b32-mlp-fp16']);
    expect(offer).toEqual({
      downloadBytes: 126856192,
      diskBytes: 128342131,
    });
  });

  it('offers nothing for a template without a text tower, an unreadable template or an unknown model', async () => {
    expect(hasText(parseTemplate(WITH_TEXT))).toBe(true);
    expect(hasText(parseTemplate(WITHOUT_TEXT))).toBe(false); // a valid template, only without the text tower
    expect(await textOffer('clipcap-coco', async () => WITHOUT_TEXT, CATALOGUE)).toBeNull();
    expect(
      await textOffer(
        'clipcap-coco',
        async () => {
          throw new Error('404');
        },
        CATALOGUE,
      ),
    ).toBeNull();
    expect(await textOffer('nope', async () => WITH_TEXT, CATALOGUE)).toBeNull();
  });

  it('says "not known" for the sizes a catalogue leaves out', async () => {
    const c = structuredClone(CATALOGUE);
    delete c.models[0].textDownloadBytes;
    delete c.models[0].textDiskBytes;
    expect(await textOffer(c.models[0].id, async () => WITH_TEXT, c)).toMatchObject({ downloadBytes: null, diskBytes: null });
  });
});

describe('the checkbox', () => {
  it('is hidden with no offer, and then the install request says nothing about it', () => {
    useLocale('en');
    const p = parts();
    showTextOption(p, null);
    expect(p.row.hidden).toBe(true);
    p.check.checked = true; // whatever it held for another model
    expect(textChoice(p)).toEqual({});
  });

  it('shows the download size in its label and the disk size in its description; unticked it sends text: false', () => {
    useLocale('en');
    const p = parts();
    showTextOption(p, { downloadBytes: 126856192, diskBytes: 128342131 });
    expect(p.row.hidden).toBe(false);
    expect(p.label.textContent).toBe(
      'Also check each caption against the picture, and leave an image unlabelled when they disagree (about 127 MB more to download)',
    );
    expect(p.size).toEqual({
      hidden: false,
      textContent: 'Takes about 128 MB more space on this device. Some right descriptions may be left out too.',
    });
    expect(textChoice(p)).toEqual({ text: false });
    p.check.checked = true;
    expect(textChoice(p)).toEqual({ text: true });
  });

  it('in German, and without sizes where the catalogue has none', () => {
    useLocale('de');
    const p = parts();
    showTextOption(p, { downloadBytes: 182327040, diskBytes: null });
    expect(p.label.textContent).toMatch(/^Außerdem jede Beschreibung mit dem Bild abgleichen.*\(etwa 182 MB mehr herunterzuladen\)$/);
    expect(p.size.hidden).toBe(true);
    showTextOption(p, { downloadBytes: null, diskBytes: null });
    expect(p.label.textContent).toBe(readMessages('de').onboardingTextCheckPlain.message);
  });
});

describe('the box shows the truth for the chosen model (textChecked)', () => {
  const st = (phase: InstallState['phase'], extra: Partial<InstallState> = {}) =>
    installState('clipcap-coco', phase, { storeId: null, ...extra });

  it('an installed model: whether its pack carries the text tower', () => {
    expect(textChecked(st('ready', { storeId: 'a@1', text: true, readyText: true }))).toBe(true);
    expect(textChecked(st('ready', { storeId: 'a@1' }))).toBe(false);
  });

  it('a running, paused or failed job: what it asked for, even when the installed pack has it the other way', () => {
    expect(textChecked(st('downloading', { text: true }))).toBe(true);
    expect(textChecked(st('paused', { text: true }))).toBe(true);
    expect(textChecked(st('failed', { text: true, storeId: 'a@1' }))).toBe(true);
    // turning it off on a model whose pack has it: the box follows the job, not the old pack
    expect(textChecked(st('converting', { text: false, storeId: 'a@1', readyText: true }))).toBe(false);
  });

  it('nothing installed: off; a state that does not say (an older document): null, the box is left alone', () => {
    expect(textChecked(undefined)).toBe(false);
    expect(textChecked(st('not-installed'))).toBe(false);
    const { text: _t, readyText: _r, ...old } = st('ready', { storeId: 'a@1' });
    expect(textChecked(old)).toBeNull();
  });
});

describe('src/onboarding/index.html', () => {
  const html = readFileSync('src/onboarding/index.html', 'utf8');
  const fieldset = html.slice(html.indexOf('<fieldset id="choice">'), html.indexOf('</fieldset>'));

  it('has a real, unticked checkbox with its label, described by the size, hidden at first, inside the model choice', () => {
    const row = fieldset.slice(fieldset.indexOf('<p id="text-option"'));
    expect(row.slice(0, row.indexOf('>'))).toMatch(/\bhidden\b/);
    const input = /<input id="text-check"[^>]*>/.exec(row)?.[0];
    expect(input).toMatch(/type="checkbox"/);
    expect(input).not.toMatch(/\bchecked\b/);
    expect(input).toMatch(/aria-describedby="text-check-size"/);
    expect(row).toMatch(/<label id="text-check-label" for="text-check"/);
    expect(row).toMatch(/<span id="text-check-size" class="hint">/);
  });

  it('its messages exist in English and German', () => {
    for (const locale of ['en', 'de']) {
      const m = readMessages(locale);
      for (const key of [
        'onboardingTextCheck',
        'onboardingTextCheckPlain',
        'onboardingTextCheckDisk',
        'onboardingTextAdd',
        'onboardingTextRemove',
        'onboardingTextAddHint',
        'onboardingTextAddHintPlain',
        'onboardingTextRemoveHint',
        'onboardingTextReadyHint',
        'modelTextCheckOn',
        'modelTextCheckOff',
      ])
        expect(m[key], `${locale} ${key}`).toBeDefined();
    }
  });
});
