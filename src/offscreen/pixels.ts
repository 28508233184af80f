/** Get an image's bytes. http(s) URLs are fetched here: the extension has host access, the page's canvas would be tainted. */
import { ImageFetchError } from '../shared/errors';
import type { ImageSource } from '../shared/messages';

export async function sourceToBlob(source: ImageSource, signal?: AbortSignal): Promise<Blob> {
  const url = source.kind === 'url' ? source.url : source.dataUrl;
  let res: Response;
  try {
    // The page already showed this image; the HTTP cache may have it.
    res = await fetch(url, { credentials: 'include', cache: 'force-cache', signal });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new ImageFetchError(`The image could not be downloaded (${err instanceof Error ? err.message : String(err)}).`);
  }
  if (!res.ok) throw new ImageFetchError(`The image could not be downloaded (HTTP ${res.status}).`);
  return res.blob();
}
