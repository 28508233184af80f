/**
 * Network chunks gathered into one store write: a response arrives in chunks of a few kB, and each store write is an
 * IndexedDB transaction, so the downloaders (fetch-file.ts, http-source.ts) write every `flushBytes` instead. What is
 * still here when the document dies is what a resume fetches again.
 */
export class ChunkBuffer {
  private parts: Uint8Array[] = [];
  /** bytes gathered since the last take() */
  bytes = 0;

  push(chunk: Uint8Array): void {
    this.parts.push(chunk);
    this.bytes += chunk.byteLength;
  }

  /** The gathered bytes as one array, and the buffer empty again; null when there is nothing. */
  take(): Uint8Array | null {
    if (this.bytes === 0) return null;
    const buf = new Uint8Array(this.bytes);
    let o = 0;
    for (const p of this.parts) {
      buf.set(p, o);
      o += p.byteLength;
    }
    this.parts = [];
    this.bytes = 0;
    return buf;
  }
}
