/**
 * What the Hugging Face Hub says about one of its files, from its API rather than from its download redirect.
 *
 * The Hub states a file's SHA-256 (its LFS oid) and size as X-Linked-Etag / X-Linked-Size on the 302 that `resolve`
 * answers. A browser follows that redirect itself and shows an extension no header of it (`redirect: 'manual'` gives
 * an opaque response), so in the extension a catalogue source without a pinned hash would be checked by its size
 * alone. The Hub's paths-info API returns the same facts as JSON; @huggingface/hub's `pathsInfo` speaks it.
 */
import { pathsInfo } from '@huggingface/hub';

export interface HubFileRef {
  /** where the Hub answers: https://huggingface.co, or the same behind CAPTION_MIRROR_BASE */
  hubUrl: string;
  /** owner/name */
  repo: string;
  revision: string;
  path: string;
}

/**
 * A `…/resolve/<revision>/<path>` URL of a model repository on the Hub (possibly rewritten by CAPTION_MIRROR_BASE to
 * `${base}/huggingface.co/…`), split into its parts; null for any other URL.
 */
export function parseHubUrl(url: string): HubFileRef | null {
  const m = /^(https?:\/\/(?:[^?#]*\/)?huggingface\.co)\/([^/?#]+\/[^/?#]+)\/resolve\/([^/?#]+)\/([^?#]+)$/.exec(url);
  if (!m || /^(datasets|spaces)\//.test(m[2])) return null;
  return { hubUrl: m[1], repo: m[2], revision: decodeURIComponent(m[3]), path: m[4].split('/').map(decodeURIComponent).join('/') };
}

/** The file's SHA-256 and size as the Hub's API states them for an LFS file; null when the Hub does not say. */
export async function hubFileFacts(ref: HubFileRef, fetchFn: typeof globalThis.fetch): Promise<{ sha256: string; size: number } | null> {
  const [info] = await pathsInfo({
    repo: { type: 'model', name: ref.repo },
    paths: [ref.path],
    revision: ref.revision,
    hubUrl: ref.hubUrl,
    fetch: fetchFn,
  });
  const lfs = info?.path === ref.path ? info.lfs : undefined;
  if (!lfs || !/^[0-9a-f]{64}$/.test(lfs.oid) || !Number.isSafeInteger(lfs.size)) return null;
  return { sha256: lfs.oid, size: lfs.size };
}
