/**
 * A name that is only a file name ("IMG_2034.jpg") or only stopwords ("image", "photo") says nothing about the
 * picture; with the option on (the default) it counts as missing.
 */

const STOPWORDS = new Set([
  // English
  'a',
  'an',
  'the',
  'of',
  'this',
  'that',
  'my',
  'our',
  'image',
  'images',
  'img',
  'photo',
  'photos',
  'photograph',
  'picture',
  'pictures',
  'pic',
  'pics',
  'graphic',
  'graphics',
  'icon',
  'thumbnail',
  'thumb',
  'untitled',
  'placeholder',
  'screenshot',
  'jpg',
  'jpeg',
  'png',
  'gif',
  // German (the other shipped locale)
  'bild',
  'bilder',
  'foto',
  'fotos',
  'grafik',
  'ein',
  'eine',
  'das',
  'der',
  'die',
]);

const FILE_NAME = /^[^\s/\\]*[/\\]?[^\s/\\]+\.(jpe?g|png|gif|webp|avif|bmp|svg|tiff?|heic|ico)$/i;
const CAMERA_NAME = /^(img|dsc|dscn|dscf|dcim|pxl|mvimg|gopr|photo|image|screenshot)[ _-]?[\d_ -]+$/i;

export function isWeakName(name: string): boolean {
  const t = name.trim().toLowerCase();
  if (t === '') return true;
  if (FILE_NAME.test(t) || CAMERA_NAME.test(t)) return true;
  const words = t.split(/[\s_\-.,:;!?()[\]"']+/).filter(Boolean);
  return words.length > 0 && words.every((w) => STOPWORDS.has(w) || /^\d+$/.test(w));
}
