/**
 * SHA-256 over a file written piece by piece.
 *
 * WebCrypto's `crypto.subtle.digest` only hashes one complete buffer: there is no update()/final(). A converted
 * vision graph is 175 MB in fp16 (636 MB for the fp32 decoder of a full pack), and the converter streams it into the
 * pack store in chunks precisely so that it is never in memory whole; gathering it again just to hash it would hold
 * it twice. @noble/hashes hashes incrementally, chunk by chunk, as the bytes go out.
 */
import { sha256 } from '@noble/hashes/sha2.js';

export class Sha256Stream {
  private readonly h = sha256.create();
  private n = 0;

  update(data: Uint8Array): this {
    this.h.update(data);
    this.n += data.byteLength;
    return this;
  }

  /** bytes hashed so far */
  get bytes(): number {
    return this.n;
  }

  /** The digest as 64 lowercase hex digits; the stream cannot be updated afterwards. */
  hex(): string {
    const d = this.h.digest();
    let s = '';
    for (const b of d) s += b.toString(16).padStart(2, '0');
    return s;
  }
}
