/**
 * The ClipCap captioning engine: public API. No extension APIs here, so it runs in the offscreen document, on a
 * plain page and in Node.
 */
export { createCaptioner } from './captioner';
export type { BatchItem, Captioner, CaptionerEvent, CaptionerOptions, CaptionOptions, CaptionTimings, EngineCaption } from './captioner';
export * from '../shared/errors';
export {
  deleteCachedPack,
  listCachedPacks,
  loadCachedPack,
  loadPack,
  loadPackFromFiles,
  loadPackFromUrl,
  sha256Hex,
  verifyFile,
} from './pack-loader';
export type { LoadedPack, LoadPackOptions, PackLocation, PackProgress, PickedFile } from './pack-loader';
export { IndexedDbPackStore, MemoryPackStore, defaultPackStore } from './pack-store';
export type { CachedPackInfo, PackStore, StoredPackRecord } from './pack-store';
export { parseManifest, SUPPORTED_FORMAT_VERSIONS } from './pack-format';
export type { PackManifest } from './pack-format';
export { decodeImageInBrowser, DEFAULT_DECODE_TIMEOUT_MS, DEFAULT_MAX_PIXELS, guardDecode } from './image-decode';
export type { ImageDecoderFn, ImageInput } from './image-decode';
export { preprocessRgba } from './preprocess';
export type { RgbaImage } from './preprocess';
export { postprocessCaption } from './postprocess';
export { probeWebGpu } from './sessions';
export type { Backend } from './sessions';
