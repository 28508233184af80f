/**
 * An InstallStore whose file bytes live on disk, for Node runs at full size (bench/accept-convert.bench.ts): a full
 * install stores ~1 GB (inputs, then the pack), which a MemoryPackStore would hold in the very process whose memory
 * is being measured. In the extension the bytes go to IndexedDB, outside the page's heap; here they go to files.
 *
 * Each stored file is one file under `dir` (sparse where only ranges were put), with its stored ranges kept in
 * memory. Records, jobs and blobs are small and stay in memory, so nothing survives the process: this is a store
 * for one run, not a persistent one. Checked against the same contract as the other stores in
 * test/captioner/pack-store.test.ts.
 */
import { constants, mkdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { mergeRanges, type InstallStore, type StoredJob, type StoredPackRecord } from '../../src/captioner/pack-store';

export class DiskPackStore implements InstallStore {
  private records = new Map<string, StoredPackRecord>();
  /** per stored file: its merged [start, end) ranges, sorted */
  private ranges = new Map<string, Array<[number, number]>>();
  private jobs = new Map<string, StoredJob>();
  private blobs = new Map<string, Blob>();
  /** writes one at a time, each checked against what the ones before it stored (as an IndexedDB transaction is) */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  private key = (id: string, path: string) => `${id}\u0000${path}`;
  // encodeURIComponent keeps entry ids like "coco@lx2" and paths like "vision.onnx" one file name each
  private entryDir = (id: string) => join(this.dir, encodeURIComponent(id));
  private file = (id: string, path: string) => join(this.entryDir(id), encodeURIComponent(path));

  /** bytes stored in all files of all entries */
  bytesStored(): number {
    let n = 0;
    for (const list of this.ranges.values()) for (const [a, b] of list) n += b - a;
    return n;
  }

  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writes.then(fn);
    this.writes = run.catch(() => undefined);
    return run;
  }

  private async write(id: string, path: string, offset: number, data: Uint8Array) {
    mkdirSync(this.entryDir(id), { recursive: true });
    const k = this.key(id, path);
    // never truncate: a sparse file gets its ranges in any order (clearFile deletes the file, so nothing stale stays)
    const fh = await open(this.file(id, path), constants.O_RDWR | constants.O_CREAT);
    try {
      for (let done = 0; done < data.byteLength;) done += (await fh.write(data, done, data.byteLength - done, offset + done)).bytesWritten;
    } finally {
      await fh.close();
    }
    this.ranges.set(k, mergeRanges([...(this.ranges.get(k) ?? []), [offset, offset + data.byteLength]]));
  }

  async getRecord(id: string) {
    const r = this.records.get(id);
    return r ? structuredClone(r) : null;
  }
  async putRecord(r: StoredPackRecord) {
    this.records.set(r.id, structuredClone(r));
  }
  async storedBytes(id: string, path: string) {
    return this.ranges.get(this.key(id, path))?.at(-1)?.[1] ?? 0;
  }
  append(id: string, path: string, offset: number, data: Uint8Array) {
    return this.serially(async () => {
      const have = await this.storedBytes(id, path);
      if (have !== offset) throw new Error(`append at ${offset} but ${have} bytes stored`);
      if (data.byteLength) await this.write(id, path, offset, data);
    });
  }
  async read(id: string, path: string) {
    const end = await this.storedBytes(id, path);
    return this.ranges.has(this.key(id, path)) ? this.readRange(id, path, 0, end) : null;
  }
  async readBlob(id: string, path: string) {
    const bytes = await this.read(id, path);
    return bytes ? new Blob([bytes]) : null;
  }
  async readRange(id: string, path: string, offset: number, length: number) {
    const list = this.ranges.get(this.key(id, path)) ?? [];
    if (length > 0 && !list.some(([a, b]) => a <= offset && offset + length <= b)) {
      throw new RangeError(`${id}/${path}: bytes ${offset}-${offset + length} are not stored`);
    }
    const out = new Uint8Array(length);
    if (length === 0) return out;
    const fh = await open(this.file(id, path), 'r');
    try {
      for (let done = 0; done < length;) done += (await fh.read(out, done, length - done, offset + done)).bytesRead;
    } finally {
      await fh.close();
    }
    return out;
  }
  putRange(id: string, path: string, offset: number, data: Uint8Array) {
    return this.serially(async () => {
      for (const [a, b] of this.ranges.get(this.key(id, path)) ?? []) {
        if (a < offset + data.byteLength && offset < b) {
          throw new RangeError(`${id}/${path}: bytes ${offset}-${offset + data.byteLength} overlap stored bytes ${a}-${b}`);
        }
      }
      if (data.byteLength) await this.write(id, path, offset, data);
    });
  }
  async storedRanges(id: string, path: string) {
    return (this.ranges.get(this.key(id, path)) ?? []).map(([a, b]) => [a, b] as [number, number]);
  }
  clearFile(id: string, path: string) {
    return this.serially(async () => {
      this.ranges.delete(this.key(id, path));
      rmSync(this.file(id, path), { force: true });
    });
  }
  async listRecords() {
    return [...this.records.values()].map((r) => structuredClone(r));
  }
  deletePack(id: string) {
    return this.serially(async () => {
      this.records.delete(id);
      for (const k of [...this.ranges.keys()]) if (k.startsWith(`${id}\u0000`)) this.ranges.delete(k);
      rmSync(this.entryDir(id), { recursive: true, force: true });
    });
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
