import type { InstallStore, StoredJob, StoredPackRecord } from './pack-store';
import { concat, gather, checkNoOverlap, mergeRanges, type Chunk } from './stored-chunks';

/** In-memory store (Node, tests, or when IndexedDB is unavailable). Nothing survives a reload. */
export class MemoryPackStore implements InstallStore {
  private records = new Map<string, StoredPackRecord>();
  /** per file, chunks sorted by offset (contiguous for appended files, with holes for sparse ones) */
  private chunks = new Map<string, Chunk[]>();
  private jobs = new Map<string, StoredJob>();
  private blobs = new Map<string, Blob>();
  private key = (id: string, path: string) => `${id}\u0000${path}`;
  async getRecord(id: string) {
    const r = this.records.get(id);
    return r ? structuredClone(r) : null;
  }
  async putRecord(r: StoredPackRecord) {
    this.records.set(r.id, structuredClone(r));
  }
  async storedBytes(id: string, path: string) {
    const last = this.chunks.get(this.key(id, path))?.at(-1);
    return last ? last.offset + last.data.byteLength : 0;
  }
  async append(id: string, path: string, offset: number, data: Uint8Array) {
    const have = await this.storedBytes(id, path);
    if (have !== offset) throw new Error(`append at ${offset} but ${have} bytes stored`);
    const k = this.key(id, path);
    this.chunks.set(k, [...(this.chunks.get(k) ?? []), { offset, data: Uint8Array.prototype.slice.call(data) }]);
  }
  async read(id: string, path: string) {
    const c = this.chunks.get(this.key(id, path));
    return c ? concat(c.map((x) => x.data)) : null;
  }
  async readBlob(id: string, path: string) {
    const c = this.chunks.get(this.key(id, path));
    return c ? new Blob(c.map((x) => x.data as Uint8Array<ArrayBuffer>)) : null;
  }
  async readRange(id: string, path: string, offset: number, length: number) {
    return gather(this.chunks.get(this.key(id, path)) ?? [], offset, length, `${id}/${path}`);
  }
  async putRange(id: string, path: string, offset: number, data: Uint8Array) {
    const k = this.key(id, path);
    const list = this.chunks.get(k) ?? [];
    checkNoOverlap(list, offset, data.byteLength, `${id}/${path}`);
    this.chunks.set(
      k,
      [...list, { offset, data: Uint8Array.prototype.slice.call(data) }].sort((a, b) => a.offset - b.offset),
    );
  }
  async storedRanges(id: string, path: string) {
    return mergeRanges(
      (this.chunks.get(this.key(id, path)) ?? []).map((c) => [c.offset, c.offset + c.data.byteLength] as [number, number]),
    );
  }
  async clearFile(id: string, path: string) {
    this.chunks.delete(this.key(id, path));
  }
  async listRecords() {
    return [...this.records.values()].map((r) => structuredClone(r));
  }
  async deletePack(id: string) {
    this.records.delete(id);
    for (const k of [...this.chunks.keys()]) if (k.startsWith(`${id}\u0000`)) this.chunks.delete(k);
  }
  async getJob<T extends StoredJob>(id: string) {
    const j = this.jobs.get(id);
    return j ? (structuredClone(j) as T) : null;
  }
  async putJob(job: StoredJob) {
    this.jobs.set(job.id, structuredClone(job));
  }
  async deleteJob(id: string) {
    this.jobs.delete(id);
  }
  async listJobs<T extends StoredJob>() {
    return [...this.jobs.values()].map((j) => structuredClone(j) as T);
  }
  async putBlob(key: string, blob: Blob) {
    this.blobs.set(key, blob);
  }
  async getBlob(key: string) {
    return this.blobs.get(key) ?? null;
  }
  async deleteBlob(key: string) {
    this.blobs.delete(key);
  }
}
