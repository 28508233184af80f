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
  StorageQuotaError,
  UnknownModelError,
  UserFileNeededError,
  isQuotaError,
} from '../shared/errors';
import type { PackManifest } from '../captioner/pack-format';
import type { InstallStore, StoredJob, StoredPackRecord } from '../captioner/pack-store';
import { checkInputs } from '../converter/check-inputs';
import { convertPack } from '../converter/convert';
import { hasText, parseTemplate, withoutText, type Template } from '../converter/template';
import { findModel, modelSizes, type Catalogue, type CatalogueModel } from './catalogue';
import { RateMeter } from './fetch-file';
import { InputFetcher, isAbort, wire, type InputJob, type InputsJob } from './inputs';
import { verifyEntry } from './stored-pack';
import { changeTextTower } from './text-change';
import type { InstallPhase, InstallState } from '../shared/messages';

/** One model's install, as the installer reports it: the protocol's own type (src/shared/messages.ts). */
export type ModelState = InstallState;

interface JobRecord extends StoredJob, InputsJob {
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

export class Installer {
  private readonly store: InstallStore;
  private readonly fetchFn: typeof globalThis.fetch;
  private readonly runs = new Map<string, Promise<ModelState>>();
  private readonly controllers = new Map<string, AbortController>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly progress = new Map<string, { bytes: number; total: number; meter: RateMeter; lastEmit: number }>();

  private readonly inputs: InputFetcher<JobRecord>;

  constructor(private readonly deps: InstallerDeps) {
    this.store = deps.store;
    this.fetchFn = deps.fetch ?? globalThis.fetch.bind(globalThis);
    this.inputs = new InputFetcher<JobRecord>({
      store: this.store,
      fetchFn: this.fetchFn,
      tuning: deps,
      save: (job, emit) => this.save(job, emit),
      setProgress: (job, bytes, total, force) => this.setProgress(job, bytes, total, force),
      downloadEstimate: (m, job) => sizesOf(m, job).downloadBytes,
    });
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

  /** The whole install: download the inputs, convert them into a new entry, verify it; returns the entry id. */
  private async build(m: CatalogueModel, job: JobRecord, template: Template, signal: AbortSignal): Promise<string> {
    await this.checkSpace(m, job);
    job.phase = 'downloading';
    await this.save(job);
    const inputs = await this.inputs.obtainInputs(m, job, Object.keys(m.inputs), template, signal);
    job.phase = 'converting';
    await this.save(job);
    const targetId = await this.newTarget(m, job);
    await checkInputs(template, inputs, signal);
    const provenance = {
      installedBy: 'extension',
      catalogueModel: m.id,
      template: template.id,
      installedAt: new Date().toISOString(),
      inputs: this.inputs.inputProvenance(m, job),
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
      inputs: (t) => this.inputs.obtainInputs(m, job, Object.keys(t.inputs), t, signal),
      skeleton: (path) => this.fetchBytes(this.templateUrl(m, path), signal),
      provenance: () => ({ template: template.id, installedAt: new Date().toISOString(), inputs: this.inputs.inputProvenance(m, job) }),
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
}
