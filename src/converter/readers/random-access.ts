/**
 * A file the readers can read any part of, without holding it whole: bytes in memory, a Blob/File, or (in
 * src/installer/) HTTP Range requests. The readers only ever ask for the parts they need, so a vision-only install
 * downloads the index and the vision tensors, not the text tower.
 */
import { throwIfAborted, TruncatedCheckpointError } from '../../shared/errors';

export interface RandomAccess {
  readonly size: number;
  read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>;
}

/** Refuses reads past the end with TruncatedCheckpointError: an index that points past the end means a cut download. */
function checkRange(size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new RangeError(`bad read [${offset}, +${length})`);
  }
  if (offset + length > size) throw new TruncatedCheckpointError(offset + length, size);
}

export function bytesSource(bytes: Uint8Array): RandomAccess {
  return {
    size: bytes.length,
    read(offset, length, signal) {
      throwIfAborted(signal);
      checkRange(bytes.length, offset, length);
      return Promise.resolve(bytes.subarray(offset, offset + length));
    },
  };
}

export function blobSource(blob: Blob): RandomAccess {
  return {
    size: blob.size,
    async read(offset, length, signal) {
      throwIfAborted(signal);
      checkRange(blob.size, offset, length);
      const buf = await blob.slice(offset, offset + length).arrayBuffer();
      throwIfAborted(signal);
      return new Uint8Array(buf);
    },
  };
}
