/**
 * Named errors of the captioning engine (src/captioner/) and of reading and converting published checkpoints
 * (src/converter/). Each message says what went wrong and what the user (or the caller) can do.
 *
 * Plain TypeScript, no extension APIs: the engine imports it and still runs in Node. Every class sets `name`
 * explicitly, so the name survives minification and crosses contexts as `{ name, message }`; each name's message key
 * and whether retrying can help are in the registry (index.ts), which rebuilds these classes from the wire.
 */

export class CaptionerError extends Error {
  override name = 'CaptionerError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** pack.json is missing, malformed, or of a format version this engine does not read. */
export class PackFormatError extends CaptionerError {
  override name = 'PackFormatError';
}

/** The pack's formatVersion is not one this engine understands. */
export class UnsupportedPackVersionError extends PackFormatError {
  override name = 'UnsupportedPackVersionError';
  constructor(
    readonly found: unknown,
    readonly supported: readonly number[],
  ) {
    super(
      `This model pack has format version ${JSON.stringify(found)}, but this version of the extension reads only ` +
        `version ${supported.join(', ')}. Update the extension, or pick a pack built for it.`,
    );
  }
}

/** A pack file's SHA-256 does not match pack.json. */
export class PackIntegrityError extends CaptionerError {
  override name = 'PackIntegrityError';
  constructor(
    readonly file: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      `Model file "${file}" is corrupt: its SHA-256 is ${actual.slice(0, 12)}…, but the pack says ` +
        `${expected.slice(0, 12)}…. It was refused. Download the pack again.`,
    );
  }
}

/** A pack file has the wrong number of bytes (truncated or padded download). */
export class PackSizeError extends CaptionerError {
  override name = 'PackSizeError';
  constructor(
    readonly file: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(
      `Model file "${file}" has ${actual} bytes, but the pack says ${expected}` +
        `${actual < expected ? ' (the download was cut short)' : ''}. It was refused. Download the pack again.`,
    );
  }
}

/** A pack file could not be fetched (network, HTTP status), after retries. */
export class PackDownloadError extends CaptionerError {
  override name = 'PackDownloadError';
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(
      `Could not download model file "${file}": ${message}. Check the connection and try again; the download resumes where it stopped.`,
      options,
    );
  }
}

/** A file that pack.json lists is missing from the files the user picked or from the cache. */
export class PackFileMissingError extends CaptionerError {
  override name = 'PackFileMissingError';
  constructor(
    readonly file: string,
    where: string,
  ) {
    super(`Model file "${file}" is missing from ${where}. Pick the whole pack folder (pack.json and every file it lists).`);
  }
}

/** The requested pack is not in the local cache. */
export class PackNotCachedError extends CaptionerError {
  override name = 'PackNotCachedError';
  constructor(readonly packId: string) {
    super(`Model pack "${packId}" is not downloaded. Download it first.`);
  }
}

/** The bytes are not an image the engine (or the browser) can decode. */
export class ImageDecodeError extends CaptionerError {
  override name = 'ImageDecodeError';
  constructor(detail: string, options?: { cause?: unknown }) {
    super(
      `This image could not be decoded (${detail}). Only JPEG, PNG, GIF, WebP, AVIF, BMP, ICO and SVG images can be described.`,
      options,
    );
  }
}

/** Decoding took longer than the engine allows (a decompression bomb, or a decoder stuck on hostile bytes). */
export class ImageDecodeTimeoutError extends ImageDecodeError {
  override name = 'ImageDecodeTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`it took longer than ${Math.round(timeoutMs / 1000)} s, so it was given up; it may be a huge or damaged file`);
  }
}

/** The browser refused to store more bytes (IndexedDB quota). Nothing half-written was kept. */
export class StorageQuotaError extends CaptionerError {
  override name = 'StorageQuotaError';
  constructor(
    readonly packId: string,
    readonly neededBytes: number,
    options?: { cause?: unknown },
  ) {
    super(
      `There is not enough storage space to save model pack "${packId}" (it needs ${(neededBytes / 2 ** 20).toFixed(1)} MB). ` +
        'Nothing was half-saved, and packs you already had still work. Free some disk space, or remove downloaded ' +
        'models you no longer need (Options → "Clear saved descriptions and downloaded models"), then try again.',
      options,
    );
  }
}

/** True for the errors browsers raise when storage is full (IndexedDB and the Storage API differ in how they say it). */
export function isQuotaError(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const { name, message } = e as { name?: unknown; message?: unknown };
  if (name === 'QuotaExceededError' || name === 'NS_ERROR_DOM_QUOTA_REACHED') return true;
  return (
    (name === 'UnknownError' || name === 'AbortError') && typeof message === 'string' && /quota|disk (is )?full|no space/i.test(message)
  );
}

/** The image decodes to zero pixels in some dimension. */
export class EmptyImageError extends CaptionerError {
  override name = 'EmptyImageError';
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    super(`This image is ${width}×${height} pixels: there is nothing to describe.`);
  }
}

/** The model produced nothing usable as a caption. */
export class EmptyCaptionError extends CaptionerError {
  override name = 'EmptyCaptionError';
  constructor(readonly tokenIds: readonly number[]) {
    super('The model produced no words for this image, so no description was written. Try another image or model pack.');
  }
}

/** The caller aborted the call through its AbortSignal. */
export class CaptionAbortedError extends CaptionerError {
  override name = 'AbortError';
  constructor(reason?: unknown) {
    super('Captioning was cancelled.', { cause: reason });
  }
}

/** The captioner was disposed, or its sessions could not be created on any backend. */
export class CaptionerDisposedError extends CaptionerError {
  override name = 'CaptionerDisposedError';
  constructor() {
    super('The captioner was shut down. Create a new one to describe more images.');
  }
}

/** No backend (WebGPU nor WASM) could create the model's sessions. */
export class BackendUnavailableError extends CaptionerError {
  override name = 'BackendUnavailableError';
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`The model could not be started on this device (${detail}). Reload the extension; if it persists, try a smaller pack.`, options);
  }
}

/** Options passed to caption() are out of range. */
export class InvalidOptionError extends CaptionerError {
  override name = 'InvalidOptionError';
}

/** The names of the engine's own errors: the fuzz tests check that caption() rejects with nothing else. */
export const CAPTIONER_ERROR_NAMES = [
  'CaptionerError',
  'PackFormatError',
  'UnsupportedPackVersionError',
  'PackIntegrityError',
  'PackSizeError',
  'PackDownloadError',
  'PackFileMissingError',
  'PackNotCachedError',
  'ImageDecodeError',
  'ImageDecodeTimeoutError',
  'EmptyImageError',
  'StorageQuotaError',
  'EmptyCaptionError',
  'AbortError',
  'CaptionerDisposedError',
  'BackendUnavailableError',
  'InvalidOptionError',
] as const;

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CaptionAbortedError(signal.reason);
}

// -----------------------------------------------------------------------------
// Reading published checkpoints on the device (src/converter/readers/)

/** A published weights file (PyTorch zip, TorchScript archive, safetensors) that cannot be read. */
export class CheckpointError extends CaptionerError {
  override name = 'CheckpointError';
}

/** The bytes are none of the formats the readers know. */
export class NotACheckpointError extends CheckpointError {
  override name = 'NotACheckpointError';
  constructor(readonly what: string) {
    super(
      `This file is not a PyTorch checkpoint, TorchScript archive or safetensors file (${what}). ` +
        'Pick the file the model list names, or download it again.',
    );
  }
}

/** The container is damaged: a zip record, pickle stream or safetensors header is inconsistent. */
export class CorruptCheckpointError extends CheckpointError {
  override name = 'CorruptCheckpointError';
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`The model file is damaged (${detail}). Download it again.`, options);
  }
}

/** The file ends before data its index points at: an interrupted download. */
export class TruncatedCheckpointError extends CheckpointError {
  override name = 'TruncatedCheckpointError';
  constructor(
    readonly needed: number,
    readonly size: number,
  ) {
    super(
      `The model file is cut short: it has ${size} bytes, but its index refers to byte ${needed}. Download it again; the download resumes where it stopped.`,
    );
  }
}

/** A zip entry the readers must read in place is compressed (torch stores every entry it reads uncompressed). */
export class CompressedEntryError extends CheckpointError {
  override name = 'CompressedEntryError';
  constructor(
    readonly entry: string,
    readonly method: number,
  ) {
    super(
      `The model file holds "${entry}" compressed (zip method ${method}); only files written by PyTorch, which stores tensors uncompressed, can be read. Use the published file as it is, not a re-zipped copy.`,
    );
  }
}

/** The checkpoint's pickle names a global outside the allow-list: it could run code if loaded by Python. Nothing ran. */
export class UnsafeCheckpointError extends CheckpointError {
  override name = 'UnsafeCheckpointError';
  constructor(readonly global: string) {
    super(
      `The model file was refused: it refers to "${global}", which is not part of a model's weights and could run code. Nothing in it was run. Use the file from the official source.`,
    );
  }
}

/** The pickle uses an opcode, or a tensor a dtype, that the readers do not implement. */
export class UnsupportedCheckpointError extends CheckpointError {
  override name = 'UnsupportedCheckpointError';
  constructor(detail: string) {
    super(
      `The model file uses a feature this version of the extension cannot read (${detail}). Update the extension, or use the file from the official source.`,
    );
  }
}

// -----------------------------------------------------------------------------
// Converting published checkpoints into a pack on the device (src/converter/)

/** A graph template (templates/<id>/template.json or its skeletons) is malformed: the extension's files are damaged. */
export class TemplateFormatError extends CaptionerError {
  override name = 'TemplateFormatError';
  constructor(
    readonly templateId: string,
    readonly detail: string,
  ) {
    super(
      `The model template "${templateId}" is damaged (${detail}), so no model can be built from it. Reinstall or update the extension.`,
    );
  }
}

/** One tensor whose shape (or dtype) is not what the template needs. */
export interface CheckpointShapeMismatch {
  key: string;
  expected: readonly number[];
  actual: readonly number[];
  dtype?: string;
}

/** A checkpoint given for an input role of a template does not hold that model's weights. */
export class WrongCheckpointError extends CaptionerError {
  override name = 'WrongCheckpointError';
  constructor(
    readonly input: string,
    readonly templateId: string,
    /** what the file looks like, from its keys and shapes, e.g. "a CLIP checkpoint (ViT, width 768)" */
    readonly seemsToBe: string,
    readonly missing: readonly string[],
    readonly unexpected: readonly string[],
    readonly wrongShape: readonly CheckpointShapeMismatch[],
    /** optional keys that are present but differ from the tensor they must equal */
    readonly notEqual: readonly string[] = [],
  ) {
    const list = (xs: readonly string[]) => xs.slice(0, 6).join(', ') + (xs.length > 6 ? ` and ${xs.length - 6} more` : '');
    const parts = [
      missing.length ? `${missing.length} missing (${list(missing)})` : '',
      unexpected.length ? `${unexpected.length} unexpected (${list(unexpected)})` : '',
      wrongShape.length
        ? `${wrongShape.length} of the wrong shape (${list(wrongShape.map((w) => `${w.key} is ${w.dtype ? `${w.dtype} ` : ''}[${w.actual.join(', ')}], needs [${w.expected.join(', ')}]`))})`
        : '',
      notEqual.length ? `${notEqual.length} that must equal another tensor and do not (${list(notEqual)})` : '',
    ].filter(Boolean);
    super(
      `The file given as the "${input}" weights does not fit model "${templateId}": it seems to be ${seemsToBe}. ` +
        `Its tensors: ${parts.join('; ')}. Pick the "${input}" file this model names.`,
    );
  }
}

/** A graph op got inputs of the wrong number or shape; the converter reports it as a TemplateFormatError. */
export class OpArgumentError extends RangeError {
  override name = 'OpArgumentError';
}
