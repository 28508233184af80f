/**
 * The install job (docs/model-install.md section 5): published checkpoints from the catalogue's mirrors -> a verified
 * model pack in the store, switched in atomically. Runs in the offscreen document; no extension APIs here, so Node
 * tests drive it with a MemoryPackStore or fake-indexeddb and a loopback "hub".
 *
 * Persistence: one job record per model in the store's `jobs` (id = model id). It says which store entry holds the
 * ready pack, which entry is being built, what was downloaded from which mirror and how it was checked. Every step
 * writes it before moving on, so after the offscreen document, the service worker or the browser restarts,
 * resumeInterrupted() continues where the job stopped: downloads resume with Range, range-fetched bytes are not
 * fetched again, a half-written conversion is deleted and done again (it is cheap beside the download).
 *
 * Store entries: `<model>~inputs` holds the downloaded inputs (deleted after a successful conversion); each
 * conversion writes a NEW entry `<model>@<stamp>`. The job's `readyStoreId` moves to it in one putJob, only after it
 * is complete and re-verified; the old entry is deleted afterwards. A failure at any step leaves the old pack in use.
 * Caption checking turned on or off for an installed model goes the same way, but copies the pack's other files from
 * the installed entry rather than downloading the model again (text-change.ts).
 */
import {
  CaptionAbortedError,
  InstallQuotaError,
  MirrorsFailedError,
  RangeNotSupportedError,
  SourceIntegrityError,
  StorageQuotaError,
  UnknownModelError,
  UserFileNeededError,
  WrongCheckpointError,
  isQuotaError,
} from '../shared/errors';
import type { PackManifest } from '../captioner/pack-format';
import type { InstallStore, StoredJob, StoredPackRecord } from '../captioner/pack-store';
import { checkInputs, describeCheckpoint, findCheckpointProblems, type ConverterCheckpoint } from '../converter/check-inputs';
import { convertPack } from '../converter/convert';
import { blobSource, openCheckpoint, type Checkpoint, type RandomAccess } from '../converter/readers/checkpoint';
import { hasText, parseTemplate, withoutText, type Template } from '../converter/template';
import { findModel, modelSizes, type Catalogue, type CatalogueInput, type CatalogueModel, type CatalogueSource } from './catalogue';
import { RateMeter, fetchFile, hashBlob, hashStoredFile, probeSource, type SourceFacts } from './fetch-file';
import { HttpRangeSource, storedFileSource } from './http-source';
import { verifyEntry } from './stored-pack';
import { changeTextTower } from './text-change';
import type { InstallPhase, InstallState } from '../shared/messages';

/** One model's install, as the installer reports it: the protocol's own type (src/shared/messages.ts). */
export type ModelState = InstallState;

/**
 * How an input was checked, recorded in the pack's provenance:
 *   sha256-pinned  the whole file's SHA-256 equals the catalogue's
 *   sha256-server  no pinned hash: the whole file's SHA-256 equals the one the server declared (X-Linked-Etag)
 *   etag-pinned    range-read: the server's declared SHA-256 equals the catalogue's (the file was not hashed whole)
 *   size-pinned    range-read or unhashable: only the size equals the catalogue's (plus the template's key/shape checks)
 *   size-server    nothing pinned nor declared: the size the server declared, plus key/shape checks
 */
type InputCheck = 'sha256-pinned' | 'sha256-server' | 'etag-pinned' | 'size-pinned' | 'size-server';

interface InputJob {
  /** index of the source in use, or null before one was picked */
  source: number | null;
  /** what the source's server said (persisted, so a resume does not ask again) */
  facts: SourceFacts | null;
  mode: 'whole' | 'ranges' | 'user-file' | null;
  size: number | null;
  done: boolean;
  check: InputCheck | null;
  sha256: string | null;
  /** failures of earlier mirrors in this attempt */
  failures: Array<{ url: string; error: { name: string; message: string } }>;
}

interface JobRecord extends StoredJob {
  id: string;
  phase: InstallPhase;
  /** true while the job should be running: resumeInterrupted() restarts these */
  running: boolean;
  workId: string;
  /** the entry being converted into, if any */
  targetId: string | null;
  readyStoreId: string | null;
  /** what the ready pack was built from: a different catalogue entry means an update is due */
  readyFrom: string | null;
  picked: Record<string, string>;
  /**
   * The user's choice: also fetch and convert CLIP's text tower (check captions against the picture). Kept with the
   * job so that a resumed, restarted or updated install builds the same pack. Absent in records from before: off.
   */
  text?: boolean;
  /** the `text` the ready pack was built with */
  readyText?: boolean;
  /** whether the ready pack has a text tower (its template may have none, whatever was asked); absent in older records */
  readyHasText?: boolean;
  inputs: Record<string, InputJob>;
  error: { name: string; message: string } | null;
  updatedAt: number;
}

export interface InstallerDeps {
  store: InstallStore;
  catalogue: Catalogue;
  /** URL of the bundled templates/ folder (browser.runtime.getURL('templates/') in the extension) */
  templateBase: string;
  fetch?: typeof globalThis.fetch;
  onState(s: ModelState): void;
  /** navigator.storage.estimate by default */
  estimate?: () => Promise<{ quota?: number; usage?: number }>;
  /** tuning for tests: attempts per mirror, first back-off delay, bytes per store write, progress events */
  retries?: number;
  retryDelayMs?: number;
  flushBytes?: number;
  progressIntervalMs?: number;
  /** smallest Range request (default 64 KiB; tests with tiny files use less) */
  minRequest?: number;
}

/** Bytes between two needed tensors below which one request covers both (fewer round trips, a little more data). */
const RANGE_GAP = 64 * 1024;

const wire = (e: unknown) => ({ name: e instanceof Error ? e.name : 'Error', message: e instanceof Error ? e.message : String(e) });
const isAbort = (e: unknown) => e instanceof Error && e.name === 'AbortError';

/** Keep a File the user picked on an extension page for the offscreen document (runtime messages can't carry Blobs). */
export async function stashPickedFile(store: InstallStore, blob: Blob): Promise<string> {
  const key = `picked-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  await store.putBlob(key, blob);
  return key;
}

/** The catalogue facts a pack is built from; when they change (a new extension version), the model is updated. */
function fingerprint(m: CatalogueModel): string {
  return JSON.stringify([
    m.template,
    m.version ?? '',
    Object.entries(m.inputs).map(([r, i]) => [r, i.fetch, i.sources.map((s) => [s.url, s.sha256, s.bytes])]),
  ]);
}

/**
 * Only caption checking differs from the installed pack (and the catalogue entry is the one it was built from): the
 * job adds or drops CLIP's text tower (text-change.ts) rather than setting the model up again.
 */
const isTextChange = (m: CatalogueModel, job: JobRecord | null): job is JobRecord =>
  !!job?.readyStoreId && job.readyFrom === fingerprint(m) && !!job.readyText !== !!job.text;

/** What the job downloads and what the pack takes on disk: for a text change, only what the change downloads. */
function sizesOf(m: CatalogueModel, job: JobRecord | null) {
  const s = modelSizes(m, !!job?.text);
  if (!isTextChange(m, job)) return s;
  return { downloadBytes: job.text ? s.downloadBytes - modelSizes(m, false).downloadBytes : 0, diskBytes: s.diskBytes };
}

function sourceUrl(s: CatalogueSource) {
  return s.url;
}

export class Installer {
  private readonly store: InstallStore;
  private readonly fetchFn: typeof globalThis.fetch;
  private readonly runs = new Map<string, Promise<ModelState>>();
  private readonly controllers = new Map<string, AbortController>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly progress = new Map<string, { bytes: number; total: number; meter: RateMeter; lastEmit: number }>();

  constructor(private readonly deps: InstallerDeps) {
    this.store = deps.store;
    this.fetchFn = deps.fetch ?? globalThis.fetch.bind(globalThis);
  }

  private model(id: string): CatalogueModel {
    const m = findModel(this.deps.catalogue, id);
    if (!m) throw new UnknownModelError(id);
    return m;
  }

  private newJob(m: CatalogueModel): JobRecord {
    return {
      id: m.id,
      phase: 'not-installed',
      running: false,
      workId: `${m.id}~inputs`,
      targetId: null,
      readyStoreId: null,
      readyFrom: null,
      picked: {},
      text: false,
      inputs: {},
      error: null,
      updatedAt: Date.now(),
    };
  }

  private needsFiles(m: CatalogueModel, job: JobRecord | null): string[] {
    return Object.entries(m.inputs)
      .filter(([role, i]) => i.fetch === 'user-file' && !job?.picked[role])
      .map(([role]) => role);
  }

  private toState(m: CatalogueModel, job: JobRecord | null): ModelState {
    const p = this.progress.get(m.id);
    const phase = job?.phase ?? 'not-installed';
    const active = phase === 'downloading' || phase === 'verifying' || phase === 'converting';
    const total = p?.total ?? sizesOf(m, job).downloadBytes;
    const bytes = phase === 'ready' ? total : (p?.bytes ?? 0);
    return {
      id: m.id,
      phase,
      bytes,
      total,
      rate: active && p ? p.meter.rate : 0,
      etaSeconds: active && p ? p.meter.eta(bytes, total) : null,
      error: job?.error ?? null,
      storeId: job?.readyStoreId ?? null,
      needsFiles: phase === 'ready' || isTextChange(m, job) ? [] : this.needsFiles(m, job),
      text: !!job?.text,
      readyText: !!job?.readyStoreId && (job.readyHasText ?? !!job.readyText),
    };
  }

  private async save(job: JobRecord, emit = true) {
    job.updatedAt = Date.now();
    await this.store.putJob(job);
    if (emit) this.deps.onState(this.toState(this.model(job.id), job));
  }

  private setProgress(job: JobRecord, bytes: number, total: number, force = false) {
    let p = this.progress.get(job.id);
    if (!p) this.progress.set(job.id, (p = { bytes, total, meter: new RateMeter(), lastEmit: 0 }));
    p.bytes = bytes;
    p.total = total;
    p.meter.add(bytes);
    const now = Date.now();
    if (force || now - p.lastEmit >= (this.deps.progressIntervalMs ?? 250)) {
      p.lastEmit = now;
      this.deps.onState(this.toState(this.model(job.id), job));
    }
  }

  async states(): Promise<ModelState[]> {
    const jobs = new Map((await this.store.listJobs<JobRecord>()).map((j) => [j.id, j]));
    return this.deps.catalogue.models.map((m) => this.toState(m, jobs.get(m.id) ?? null));
  }

  async readyStoreId(modelId: string): Promise<string | null> {
    return (await this.store.getJob<JobRecord>(modelId))?.readyStoreId ?? null;
  }

  /**
   * Install (or update, or continue installing) a model. Idempotent: a running or queued install of the same model is
   * joined, a persisted job continues, a model already built from this catalogue entry is simply reported ready.
   * Resolves with the final state (ready, failed or paused); failures are reported in the state, never thrown,
   * except for an unknown model id.
   * `text`: also fetch and convert CLIP's text tower; undefined keeps the job's choice (off for a new job). Changing
   * it on a ready model adds or drops only the text tower (text-change.ts). A template without a text tower ignores it.
   */
  install(modelId: string, picked?: Record<string, string>, text?: boolean): Promise<ModelState> {
    const m = this.model(modelId);
    const running = this.runs.get(modelId);
    if (running) return running;
    const run = (async () => {
      const job = (await this.store.getJob<JobRecord>(modelId)) ?? this.newJob(m);
      if (picked) {
        for (const [role, key] of Object.entries(picked)) {
          if (job.picked[role] && job.picked[role] !== key) {
            await this.store.deleteBlob(job.picked[role]);
            delete job.inputs[role];
          }
          job.picked[role] = key;
        }
      }
      if (text !== undefined && text !== !!job.text) {
        job.text = text;
        // Range reads were planned for the other choice: plan them again (stored bytes stay; only the missing come).
        for (const s of Object.values(job.inputs)) if (s.mode === 'ranges') s.done = false;
      }
      if (
        job.phase === 'ready' &&
        job.readyStoreId &&
        job.readyFrom === fingerprint(m) &&
        !!job.readyText === !!job.text &&
        (await this.store.getRecord(job.readyStoreId))
      ) {
        return this.toState(m, job);
      }
      // A text change needs only the CLIP checkpoint (never a file the user picks, in the published models): a
      // role it does need and lacks fails the job as an install does.
      const needs = isTextChange(m, job) ? [] : this.needsFiles(m, job);
      if (needs.length) {
        job.error = wire(new UserFileNeededError(m.id, needs, needs.map((r) => m.inputs[r].hint ?? '').join('; ')));
        job.phase = job.readyStoreId ? 'ready' : 'failed';
        job.running = false;
        await this.save(job);
        return this.toState(m, job);
      }
      job.phase = 'queued';
      job.running = true;
      job.error = null;
      await this.save(job);
      // One job at a time: they share the disk, the network and (in conversion) a lot of memory.
      const turn = this.queue.then(() => this.run(m));
      this.queue = turn.catch(() => undefined);
      return turn;
    })().finally(() => this.runs.delete(modelId));
    this.runs.set(modelId, run);
    return run;
  }

  /** Jobs persisted as running (the offscreen document, the service worker or the browser went away) start again. */
  async resumeInterrupted(): Promise<void> {
    for (const job of await this.store.listJobs<JobRecord>()) {
      if (job.running && findModel(this.deps.catalogue, job.id)) void this.install(job.id);
    }
  }

  /** Stop downloading; every stored byte is kept. */
  async pause(modelId: string): Promise<void> {
    const m = this.model(modelId);
    const job = await this.store.getJob<JobRecord>(modelId);
    if (!job || !job.running) return;
    job.running = false;
    job.phase = 'paused';
    await this.save(job);
    this.controllers.get(modelId)?.abort('pause');
    await this.runs.get(modelId)?.catch(() => undefined);
    this.deps.onState(this.toState(m, (await this.store.getJob<JobRecord>(modelId)) ?? job));
  }

  resume(modelId: string): Promise<void> {
    return this.install(modelId).then(() => undefined);
  }

  /** Stop and delete the job's bytes (downloads and any half-built pack). A ready pack stays. */
  async cancel(modelId: string): Promise<void> {
    const m = this.model(modelId);
    this.controllers.get(modelId)?.abort('cancel');
    const job = await this.store.getJob<JobRecord>(modelId);
    if (job) {
      job.running = false;
      await this.store.putJob(job);
    }
    await this.runs.get(modelId)?.catch(() => undefined);
    const now = await this.store.getJob<JobRecord>(modelId);
    if (!now) return;
    await this.store.deletePack(now.workId);
    if (now.targetId) await this.store.deletePack(now.targetId);
    for (const key of Object.values(now.picked)) await this.store.deleteBlob(key);
    this.progress.delete(modelId);
    if (now.readyStoreId) {
      // The pack in use stays, and so does its choice about the text tower: a later install (an extension update)
      // must not build the cancelled choice behind the user's back.
      Object.assign(now, { phase: 'ready', running: false, targetId: null, picked: {}, inputs: {}, error: null, text: !!now.readyText });
      await this.save(now);
    } else {
      await this.store.deleteJob(modelId);
      this.deps.onState(this.toState(m, null));
    }
  }

  /** Cancel any job and delete the installed pack. */
  async remove(modelId: string): Promise<void> {
    const m = this.model(modelId);
    await this.cancel(modelId);
    const job = await this.store.getJob<JobRecord>(modelId);
    if (job?.readyStoreId) await this.store.deletePack(job.readyStoreId);
    await this.store.deleteJob(modelId);
    this.progress.delete(modelId);
    this.deps.onState(this.toState(m, null));
  }

  // ---- the job itself ----

  private async run(m: CatalogueModel): Promise<ModelState> {
    let job = (await this.store.getJob<JobRecord>(m.id)) ?? this.newJob(m);
    if (!job.running) return this.toState(m, job); // paused or cancelled while queued
    const ctl = new AbortController();
    this.controllers.set(m.id, ctl);
    const signal = ctl.signal;
    try {
      // Off: the template as if it had no text tower, for the range plan, the checks and the conversion alike, so
      // none of the text tower's bytes is fetched or read.
      const full = await this.loadTemplate(m, signal);
      const template = job.text ? full : withoutText(full);
      const ready = isTextChange(m, job) ? await this.store.getRecord(job.readyStoreId!) : null;
      let storeId: string;
      if (ready && (!hasText(full) || !!ready.manifest.text === !!job.text))
        storeId = ready.id; // nothing to change
      else if (ready) storeId = await this.changeText(m, job, ready, full, signal);
      else storeId = await this.build(m, job, template, signal);
      // The switch: one write moves the pointer to a complete, re-verified entry. Before it the old pack is in use;
      // after it the new one is. Cleaning up afterwards can fail without harm (the next install retries it).
      const old = job.readyStoreId;
      Object.assign(job, {
        readyStoreId: storeId,
        readyFrom: fingerprint(m),
        readyText: !!job.text,
        readyHasText: hasText(template),
        targetId: null,
        phase: 'ready',
        running: false,
        error: null,
        inputs: {},
      });
      const picked = Object.values(job.picked);
      job.picked = {};
      await this.save(job);
      if (old && old !== storeId) await this.store.deletePack(old);
      await this.store.deletePack(job.workId);
      for (const key of picked) await this.store.deleteBlob(key);
      this.progress.delete(m.id);
      return this.toState(m, job);
    } catch (e) {
      const now = (await this.store.getJob<JobRecord>(m.id)) ?? job;
      if (signal.aborted || isAbort(e)) {
        // Paused or cancelled: pause()/cancel() already wrote the job; bytes stay for resume.
        if (now.running) Object.assign(now, { running: false, phase: 'paused' });
        await this.save(now);
        return this.toState(m, now);
      }
      job = now;
      // A half-built entry is never used; delete it so it does not hold space. Downloads stay for a retry.
      if (job.targetId) {
        await this.store.deletePack(job.targetId).catch((d) => console.warn('[installer] could not delete a half-built pack', d));
        job.targetId = null;
      }
      const err =
        isQuotaError(e) && !(e instanceof StorageQuotaError)
          ? new StorageQuotaError(m.id, sizesOf(m, job).downloadBytes + sizesOf(m, job).diskBytes, { cause: e })
          : e;
      Object.assign(job, { phase: 'failed', running: false, error: wire(err) });
      await this.save(job);
      return this.toState(m, job);
    } finally {
      this.controllers.delete(m.id);
    }
  }

  private async fetchBytes(url: string, signal: AbortSignal): Promise<Uint8Array> {
    const res = await this.fetchFn(url, { signal });
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }

  private templateUrl(m: CatalogueModel, file: string) {
    const base = this.deps.templateBase.endsWith('/') ? this.deps.templateBase : `${this.deps.templateBase}/`;
    return new URL(`${m.template}/${file}`, base).toString();
  }

  private async loadTemplate(m: CatalogueModel, signal: AbortSignal): Promise<Template> {
    return parseTemplate(new TextDecoder().decode(await this.fetchBytes(this.templateUrl(m, 'template.json'), signal)));
  }

  /** Refuse early, before any download, when the origin's free space is short of what is still to be stored. */
  private async checkSpace(m: CatalogueModel, job: JobRecord) {
    const estimate =
      this.deps.estimate ?? (typeof navigator !== 'undefined' && navigator.storage?.estimate ? () => navigator.storage.estimate() : null);
    if (!estimate) return;
    const { quota, usage } = await estimate();
    if (quota === undefined) return;
    let stored = 0;
    for (const role of Object.keys(m.inputs)) for (const [a, b] of await this.store.storedRanges(job.workId, role)) stored += b - a;
    const size = sizesOf(m, job);
    const needed = Math.max(0, size.downloadBytes - stored) + size.diskBytes;
    const free = quota - (usage ?? 0);
    if (free < needed) throw new InstallQuotaError(m.id, needed, free);
  }

  /** Names a role's tensors the template reads (present ones only: absent ones are the converter's error to report). */
  private neededNames(template: Template, role: string, ckpt: Checkpoint): string[] {
    const spec = template.inputs[role];
    const names = [...Object.keys(spec.params), ...Object.keys(spec.optional), ...Object.values(spec.optional)];
    return [...new Set(names)].filter((n) => ckpt.tensors.has(n));
  }

  private checkFits(template: Template, role: string, ckpt: Checkpoint) {
    const p = findCheckpointProblems(template, role, ckpt);
    if (p.missing.length || p.unexpected.length || p.wrongShape.length) {
      throw new WrongCheckpointError(role, template.id, describeCheckpoint(ckpt.tensors), p.missing, p.unexpected, p.wrongShape);
    }
  }

  /** Progress over the inputs `roles`. */
  private inputProgress(m: CatalogueModel, job: JobRecord, roles: string[]) {
    // bytes: stored input bytes; total: what the inputs need, the catalogue's estimate until the real figure is known
    const have = new Map<string, number>();
    const need = new Map<string, number>();
    return {
      update: (role: string, h: number, n: number | null, force = false) => {
        have.set(role, h);
        if (n !== null) need.set(role, n);
        let bytes = 0;
        for (const v of have.values()) bytes += v;
        let total = 0;
        for (const v of need.values()) total += v;
        if (need.size < roles.filter((r) => m.inputs[r].fetch !== 'user-file').length)
          total = Math.max(total, sizesOf(m, job).downloadBytes);
        this.setProgress(job, bytes, Math.max(total, bytes), force);
      },
    };
  }

  /** One input: from the first source that works (or the picked file), checked; returns a RandomAccess over it. */
  private async obtainInput(
    m: CatalogueModel,
    job: JobRecord,
    role: string,
    input: CatalogueInput,
    template: Template,
    prog: ReturnType<Installer['inputProgress']>,
    signal: AbortSignal,
  ): Promise<RandomAccess> {
    const state = (job.inputs[role] ??= {
      source: null,
      facts: null,
      mode: null,
      size: null,
      done: false,
      check: null,
      sha256: null,
      failures: [],
    });

    if (input.fetch === 'user-file') {
      const blob = await this.store.getBlob(job.picked[role]);
      if (!blob) throw new UserFileNeededError(m.id, [role], input.hint ?? '');
      if (!state.done) {
        if (input.bytes != null && blob.size !== input.bytes)
          throw new SourceIntegrityError(`file:///${role}`, 'size', input.bytes, blob.size);
        if (input.sha256) {
          job.phase = 'verifying';
          await this.save(job);
          const got = await hashBlob(blob, signal);
          if (got !== input.sha256) throw new SourceIntegrityError(`file:///${role}`, 'sha256', input.sha256, got);
        }
        Object.assign(state, {
          mode: 'user-file',
          size: blob.size,
          done: true,
          check: input.sha256 ? 'sha256-pinned' : 'size-server',
          sha256: input.sha256 ?? null,
        });
        job.phase = 'downloading';
        await this.save(job);
      }
      return blobSource(blob);
    }

    if (state.done && state.source !== null && state.size !== null) {
      // Downloaded before a restart: reopen from the store (a range-read file's needed ranges are all stored).
      const url = sourceUrl(input.sources[state.source]);
      if (state.mode === 'whole') return storedFileSource(this.store, job.workId, role, state.size);
      return HttpRangeSource.open(url, this.store, job.workId, role, this.rangeOpts(signal, state.size));
    }

    const failures = state.failures;
    for (let i = state.source ?? 0; i < input.sources.length; i++) {
      const src = input.sources[i];
      const url = sourceUrl(src);
      try {
        if (state.source !== i) {
          // Bytes from another mirror may belong to another file (when nothing was pinned): start this one clean.
          await this.store.clearFile(job.workId, role);
          Object.assign(state, { source: i, facts: null, mode: null, size: null, check: null, sha256: null });
          await this.save(job, false);
        }
        if (!state.facts) {
          state.facts = await probeSource(url, {
            fetch: this.fetchFn,
            signal,
            retries: this.deps.retries,
            retryDelayMs: this.deps.retryDelayMs,
          });
          await this.save(job, false);
        }
        const facts = state.facts;
        // Cheap checks first: a wrong size or declared hash is refused before a byte is downloaded.
        if (src.bytes !== null && facts.size !== null && facts.size !== src.bytes)
          throw new SourceIntegrityError(url, 'size', src.bytes, facts.size);
        if (src.sha256 && facts.sha256 && facts.sha256 !== src.sha256)
          throw new SourceIntegrityError(url, 'sha256', src.sha256, facts.sha256);
        const size = src.bytes ?? facts.size;
        if (input.fetch === 'vision-only' && facts.ranges && size !== null && state.mode !== 'whole') {
          try {
            return await this.rangeInput(job, role, src, facts, size, template, prog, signal);
          } catch (e) {
            if (!(e instanceof RangeNotSupportedError)) throw e;
            // The server ignores Range after all: fall back to a whole download of this file, hashed as usual.
            await this.store.clearFile(job.workId, role);
          }
        }
        return await this.wholeInput(job, role, src, facts, template, prog, signal);
      } catch (e) {
        if (signal.aborted || isAbort(e) || isQuotaError(e) || e instanceof StorageQuotaError) throw e;
        // This mirror failed: say why, drop its bytes, and try the next one.
        failures.push({ url, error: wire(e) });
        await this.store.clearFile(job.workId, role);
        Object.assign(state, { source: i + 1 < input.sources.length ? i + 1 : null, facts: null, mode: null, size: null });
        await this.save(job, false);
      }
    }
    const err = new MirrorsFailedError(role, failures.slice());
    state.failures = [];
    state.source = null;
    throw err;
  }

  private rangeOpts(signal: AbortSignal, size: number | null, onFetched?: (n: number) => void) {
    return {
      fetch: this.fetchFn,
      signal,
      size,
      onFetched,
      retries: this.deps.retries,
      retryDelayMs: this.deps.retryDelayMs,
      flushBytes: this.deps.flushBytes,
      minRequest: this.deps.minRequest,
    };
  }

  private async rangeInput(
    job: JobRecord,
    role: string,
    src: CatalogueSource,
    facts: SourceFacts,
    size: number,
    template: Template,
    prog: ReturnType<Installer['inputProgress']>,
    signal: AbortSignal,
  ): Promise<RandomAccess> {
    const state = job.inputs[role];
    state.mode = 'ranges';
    state.size = size;
    await this.save(job, false);
    let got = 0;
    const http = await HttpRangeSource.open(
      src.url,
      this.store,
      job.workId,
      role,
      this.rangeOpts(signal, size, (n) => {
        got += n;
        prog.update(role, got, null);
      }),
    );
    const ckpt = await openCheckpoint(http, src.format, signal);
    // A wrong file is refused from its index, before its tensors are fetched.
    this.checkFits(template, role, ckpt);
    const ranges = ckpt.ranges(this.neededNames(template, role, ckpt), RANGE_GAP);
    let stored = 0;
    for (const [a, b] of await this.store.storedRanges(job.workId, role)) stored += b - a;
    const need = stored + http.missingBytes(ranges);
    got = stored;
    prog.update(role, got, need, true);
    await http.prefetch(ranges, signal);
    prog.update(role, need, need, true);
    Object.assign(state, {
      done: true,
      check: src.sha256 && facts.sha256 === src.sha256 ? 'etag-pinned' : src.bytes !== null ? 'size-pinned' : 'size-server',
      sha256: src.sha256 ?? facts.sha256,
      failures: [],
    });
    await this.save(job, false);
    return http;
  }

  private async wholeInput(
    job: JobRecord,
    role: string,
    src: CatalogueSource,
    facts: SourceFacts,
    template: Template,
    prog: ReturnType<Installer['inputProgress']>,
    signal: AbortSignal,
  ): Promise<RandomAccess> {
    const state = job.inputs[role];
    state.mode = 'whole';
    await this.save(job, false);
    const expected = src.bytes ?? facts.size;
    const res = await fetchFile(src.url, this.store, job.workId, role, {
      fetch: this.fetchFn,
      signal,
      expectedBytes: expected,
      retries: this.deps.retries,
      retryDelayMs: this.deps.retryDelayMs,
      flushBytes: this.deps.flushBytes,
      onProgress: (n, total) => prog.update(role, n, total),
    });
    const want = expected ?? res.serverTotal;
    if (want !== null && res.bytes !== want) throw new SourceIntegrityError(src.url, 'size', want, res.bytes);
    job.phase = 'verifying';
    await this.save(job);
    const got = await hashStoredFile(this.store, job.workId, role, res.bytes, signal);
    const pinned = src.sha256 ?? facts.sha256;
    if (pinned && got !== pinned) throw new SourceIntegrityError(src.url, 'sha256', pinned, got);
    Object.assign(state, {
      done: true,
      size: res.bytes,
      sha256: got,
      failures: [],
      check: src.sha256 ? 'sha256-pinned' : facts.sha256 ? 'sha256-server' : src.bytes !== null ? 'size-pinned' : 'size-server',
    });
    job.phase = 'downloading';
    await this.save(job);
    const file = storedFileSource(this.store, job.workId, role, res.bytes);
    // Check the keys now, so that a wrong file from this mirror makes us try the next one.
    this.checkFits(template, role, await openCheckpoint(file, src.format, signal));
    return file;
  }

  /** The whole install: download the inputs, convert them into a new entry, verify it; returns the entry id. */
  private async build(m: CatalogueModel, job: JobRecord, template: Template, signal: AbortSignal): Promise<string> {
    await this.checkSpace(m, job);
    job.phase = 'downloading';
    await this.save(job);
    const inputs = await this.obtainInputs(m, job, Object.keys(m.inputs), template, signal);
    job.phase = 'converting';
    await this.save(job);
    const targetId = await this.newTarget(m, job);
    await checkInputs(template, inputs, signal);
    const provenance = {
      installedBy: 'extension',
      catalogueModel: m.id,
      template: template.id,
      installedAt: new Date().toISOString(),
      inputs: this.inputProvenance(m, job),
    };
    const tokenizer = await this.fetchBytes(this.templateUrl(m, 'tokenizer.json'), signal);
    const manifest: PackManifest = await convertPack({
      template,
      text: !!job.text && hasText(template),
      tokenizer,
      inputs,
      signal,
      skeleton: (path) => this.fetchBytes(this.templateUrl(m, path), signal),
      sink: { append: (path, offset, data) => this.store.append(targetId, path, offset, data) },
      meta: { id: m.id, version: m.version ?? '1.0.0', name: m.name, description: m.description, provenance },
      onProgress: (written, total) => this.setProgress(job, written, total),
    });
    // Re-verify from the store: what loadCachedPack will read is what the converter meant to write.
    job.phase = 'verifying';
    await this.save(job);
    const complete = await verifyEntry(this.store, targetId, manifest, signal);
    await this.store.putRecord({ id: targetId, manifest, complete, savedAt: Date.now() });
    if (signal.aborted) throw new CaptionAbortedError(signal.reason);
    return targetId;
  }

  /** Caption checking turned on or off for the installed pack `ready` (text-change.ts); returns the new entry's id. */
  private async changeText(
    m: CatalogueModel,
    job: JobRecord,
    ready: StoredPackRecord,
    template: Template,
    signal: AbortSignal,
  ): Promise<string> {
    await this.checkSpace(m, job);
    job.phase = job.text ? 'downloading' : 'converting';
    await this.save(job);
    const targetId = await this.newTarget(m, job);
    await changeTextTower({
      store: this.store,
      ready,
      targetId,
      template,
      add: !!job.text,
      signal,
      inputs: (t) => this.obtainInputs(m, job, Object.keys(t.inputs), t, signal),
      skeleton: (path) => this.fetchBytes(this.templateUrl(m, path), signal),
      provenance: () => ({ template: template.id, installedAt: new Date().toISOString(), inputs: this.inputProvenance(m, job) }),
      phase: async (p) => {
        job.phase = p;
        await this.save(job);
      },
      onProgress: (written, total) => this.setProgress(job, written, total),
    });
    if (signal.aborted) throw new CaptionAbortedError(signal.reason);
    return targetId;
  }

  /** A new, empty entry to convert into (one a conversion cut short left is deleted: it is done again whole). */
  private async newTarget(m: CatalogueModel, job: JobRecord): Promise<string> {
    if (job.targetId) await this.store.deletePack(job.targetId);
    const targetId = `${m.id}@${Date.now().toString(36)}`;
    job.targetId = targetId;
    await this.save(job);
    return targetId;
  }

  /** The inputs `roles`, downloaded (or picked) and checked against `template`, opened for the converter. */
  private async obtainInputs(
    m: CatalogueModel,
    job: JobRecord,
    roles: string[],
    template: Template,
    signal: AbortSignal,
  ): Promise<Record<string, ConverterCheckpoint>> {
    const prog = this.inputProgress(m, job, roles);
    const sources: Record<string, RandomAccess> = {};
    for (const role of roles) sources[role] = await this.obtainInput(m, job, role, m.inputs[role], template, prog, signal);
    const inputs: Record<string, ConverterCheckpoint> = {};
    for (const [role, src] of Object.entries(sources)) {
      const format =
        m.inputs[role].fetch === 'user-file' ? m.inputs[role].format : m.inputs[role].sources[job.inputs[role].source ?? 0]?.format;
      inputs[role] = await openCheckpoint(src, format, signal);
    }
    return inputs;
  }

  /** Where each downloaded input came from and how it was checked, for the pack's provenance. */
  private inputProvenance(m: CatalogueModel, job: JobRecord) {
    return Object.fromEntries(
      Object.entries(job.inputs).map(([role, s]) => [
        role,
        {
          url: m.inputs[role].fetch === 'user-file' ? null : m.inputs[role].sources[s.source ?? 0]?.url,
          mode: s.mode,
          bytes: s.size,
          sha256: s.sha256,
          check: s.check,
          commit: s.facts?.commit ?? null,
        },
      ]),
    );
  }
}
