/**
 * Fetch the bytes of an image a page shows (an ImageSource) as a Blob. http(s) URLs are fetched here: the extension has host access, the page's canvas would be
 * tainted. Only URLs the page itself shows are asked for (the content script sends an element's currentSrc), so host
 * access reading past CORS reads nothing the page did not already load; `<img crossorigin>` that CORS blocked never
 * displays, and is skipped as broken before it gets here.
 *
 * Every failure is an ImageFetchError with a reason a person can read, and no fetch waits forever: a server that
 * stalls is given up on after FETCH_TIMEOUT_MS, so the queue moves on to the next image.
 */
import { ImageFetchError } from '../shared/errors';
import { LIMITS } from '../shared/limits';
import type { ImageSource } from '../shared/messages';

/** A stalled image server is given up on after this long (headers and body together). */
const FETCH_TIMEOUT_MS = LIMITS.image.fetchTimeoutMs;
/** Bigger bodies are refused: no real image a page shows needs more, and the decoder downscales anyway. */
const MAX_IMAGE_BYTES = LIMITS.image.bytes;

/** Content types that can't be an image; a URL that redirected to a login page or an API error lands here. */
const NOT_IMAGE = /^(text\/|application\/(json|xml|xhtml\+xml|javascript|ecmascript|pdf|zip)|audio\/|video\/|font\/)/i;

const fail = (why: string) => new ImageFetchError(`The image could not be downloaded (${why}).`);

export async function fetchImage(source: ImageSource, signal?: AbortSignal, timeoutMs = FETCH_TIMEOUT_MS): Promise<Blob> {
  const url = source.kind === 'url' ? source.url : source.dataUrl;
  const timeout = AbortSignal.timeout(timeoutMs);
  const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const why = (err: unknown) => {
    if (timeout.aborted) return `no answer within ${Math.round(timeoutMs / 1000)} s`;
    return err instanceof Error ? err.message : String(err);
  };
  let res: Response;
  try {
    // The page already showed this image; the HTTP cache may have it.
    res = await fetch(url, { credentials: 'include', cache: 'force-cache', signal: both, redirect: 'follow' });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw fail(why(err));
  }
  if (!res.ok) {
    void res.body?.cancel().catch(() => null);
    throw fail(`HTTP ${res.status}`);
  }
  const type = (res.headers.get('content-type') ?? '').split(';')[0].trim();
  if (NOT_IMAGE.test(type)) {
    void res.body?.cancel().catch(() => null);
    throw fail(`the server sent ${type}, not an image${res.redirected ? ', after a redirect' : ''}`);
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > MAX_IMAGE_BYTES) {
    void res.body?.cancel().catch(() => null);
    throw fail(`${Math.round(declared / 2 ** 20)} MB is more than the ${MAX_IMAGE_BYTES / 2 ** 20} MB limit`);
  }
  if (!res.body) return res.blob();
  // Read with a cap: a server may lie about the length, or send none.
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_IMAGE_BYTES) {
        void reader.cancel().catch(() => null);
        throw fail(`more than the ${MAX_IMAGE_BYTES / 2 ** 20} MB limit`);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof ImageFetchError) throw err;
    if (signal?.aborted) throw signal.reason ?? err;
    throw fail(`the download broke off: ${why(err)}`);
  }
  if (size === 0) throw fail('the server sent an empty body');
  return new Blob(chunks as BlobPart[], { type });
}
