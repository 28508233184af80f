/**
 * Which image URLs we may hand to the extension. The extension fetches http(s) images with its own privileges (host
 * access, cookies, no CORS), so a page must not be able to point us at something it could not load itself: an
 * intranet JSON endpoint, a file:, chrome: or chrome-extension: URL. Two rules:
 *   - only http(s), data:image/ and blob: URLs, ever;
 *   - only a picture the page has loaded as an image: an <img> that is complete with a natural size (its currentSrc),
 *     or else a URL we first load here as an image, as the page itself would (no extension privilege), and that decodes.
 */
import { UnsafeSourceError } from '../shared/errors';
import type { ImageSource } from '../shared/messages';

const ALLOWED = /^(https?:|data:image\/|blob:)/i;

export function allowedScheme(url: string): boolean {
  return ALLOWED.test(url);
}

/** An <img> the page has loaded: its currentSrc is a picture the browser decoded. */
export function loadedImageSrc(el: Element): string | null {
  if (!(el instanceof HTMLImageElement) || !el.complete || el.naturalWidth === 0 || el.naturalHeight === 0) return null;
  const src = el.currentSrc || el.src;
  return src && allowedScheme(src) ? src : null;
}

/** Load the URL as an image in the page's own context; true when it decodes to a picture. */
function probeImage(url: string, timeoutMs = 15_000): Promise<boolean> {
  if (!allowedScheme(url)) return Promise.resolve(false);
  const im = new Image();
  im.src = url;
  const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs));
  const decoded = im.decode().then(
    () => im.naturalWidth > 0 && im.naturalHeight > 0,
    () => false,
  );
  return Promise.race([decoded, timeout]).finally(() => im.removeAttribute('src'));
}

/**
 * The ImageSource for a URL. `verified`: the page already showed it as an image (a complete <img>), so it is not
 * loaded again. blob: URLs belong to the page, so their bytes are read here and sent as a data: URL.
 */
export async function toImageSource(src: string, verified: boolean): Promise<ImageSource> {
  if (!allowedScheme(src)) throw new UnsafeSourceError('Only http(s), data: and blob: images are described.');
  if (!verified && !/^data:/i.test(src) && !(await probeImage(src))) {
    throw new UnsafeSourceError('The page does not show this URL as an image.');
  }
  if (!src.toLowerCase().startsWith('blob:')) return { kind: 'url', url: src };
  const blob = await (await fetch(src)).blob();
  const dataUrl = await new Promise<string>((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result as string);
    r.onerror = () => reject(r.error ?? new Error('could not read the blob'));
    r.readAsDataURL(blob);
  });
  return { kind: 'bytes', dataUrl };
}
