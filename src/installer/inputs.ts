/**
 * The install job's inputs (docs/model-install.md section 5, step 2): each published checkpoint from the first of
 * its mirrors that works, or the file the user picked; range-read (only the tensors a template reads) where the
 * catalogue allows it and the server answers Range, else downloaded whole and hashed; checked against the template
 * (keys and shapes) before it is used. What was fetched from where, and how it was checked, is kept in the job
 * record, so a resumed job goes on from the bytes it has. The Installer (installer.ts) owns the job; this fetches.
 */
import {
  MirrorsFailedError,
  RangeNotSupportedError,
  SourceIntegrityError,
  StorageQuotaError,
  UserFileNeededError,
  WrongCheckpointError,
  isQuotaError,
} from '../shared/errors';
import type { InstallStore } from '../captioner/pack-store';
import { describeCheckpoint, findCheckpointProblems, type ConverterCheckpoint } from '../converter/check-inputs';
import { blobSource, openCheckpoint, type Checkpoint, type RandomAccess } from '../converter/readers/checkpoint';
import type { Template } from '../converter/template';
import type { CatalogueInput, CatalogueModel, CatalogueSource } from './catalogue';
import { fetchFile, hashBlob, hashStoredFile, probeSource, type SourceFacts } from './fetch-file';
import { HttpRangeSource, storedFileSource } from './http-source';
import type { InstallPhase } from '../shared/messages';

/**
 * How an input was checked, recorded in the pack's provenance:
 *   sha256-pinned  the whole file's SHA-256 equals the catalogue's
 *   sha256-server  no pinned hash: the whole file's SHA-256 equals the one the server declared (X-Linked-Etag)
 *   etag-pinned    range-read: the server's declared SHA-256 equals the catalogue's (the file was not hashed whole)
 *   size-pinned    range-read or unhashable: only the size equals the catalogue's (plus the template's key/shape checks)
 *   size-server    nothing pinned nor declared: the size the server declared, plus key/shape checks
 */
type InputCheck = 'sha256-pinned' | 'sha256-server' | 'etag-pinned' | 'size-pinned' | 'size-server';

export interface InputJob {
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

/** The part of an install job record the inputs live in. */
export interface InputsJob {
  id: string;
  phase: InstallPhase;
  /** the store entry the inputs are kept in */
  workId: string;
  /** role -> the stored Blob key of a file the user picked */
  picked: Record<string, string>;
  inputs: Record<string, InputJob>;
}

/** What the fetcher needs of the Installer: its store and fetch, its tuning, and how a job is saved and shown. */
export interface InputHost<J extends InputsJob> {
  store: InstallStore;
  fetchFn: typeof globalThis.fetch;
  tuning: { retries?: number; retryDelayMs?: number; flushBytes?: number; minRequest?: number };
  save(job: J, emit?: boolean): Promise<void>;
  setProgress(job: J, bytes: number, total: number, force?: boolean): void;
  /** the catalogue's estimate of what the job downloads, until the real figure is known */
  downloadEstimate(m: CatalogueModel, job: J): number;
}

/** Bytes between two needed tensors below which one request covers both (fewer round trips, a little more data). */
const RANGE_GAP = 64 * 1024;

export const wire = (e: unknown) => ({ name: e instanceof Error ? e.name : 'Error', message: e instanceof Error ? e.message : String(e) });
export const isAbort = (e: unknown) => e instanceof Error && e.name === 'AbortError';

function sourceUrl(s: CatalogueSource) {
  return s.url;
}

export class InputFetcher<J extends InputsJob> {
  constructor(private readonly h: InputHost<J>) {}

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
  private inputProgress(m: CatalogueModel, job: J, roles: string[]) {
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
          total = Math.max(total, this.h.downloadEstimate(m, job));
        this.h.setProgress(job, bytes, Math.max(total, bytes), force);
      },
    };
  }

  /** One input: from the first source that works (or the picked file), checked; returns a RandomAccess over it. */
  private async obtainInput(
    m: CatalogueModel,
    job: J,
    role: string,
    input: CatalogueInput,
    template: Template,
    prog: ReturnType<InputFetcher<J>['inputProgress']>,
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
      const blob = await this.h.store.getBlob(job.picked[role]);
      if (!blob) throw new UserFileNeededError(m.id, [role], input.hint ?? '');
      if (!state.done) {
        if (input.bytes != null && blob.size !== input.bytes)
          throw new SourceIntegrityError(`file:///${role}`, 'size', input.bytes, blob.size);
        if (input.sha256) {
          job.phase = 'verifying';
          await this.h.save(job);
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
        await this.h.save(job);
      }
      return blobSource(blob);
    }

    if (state.done && state.source !== null && state.size !== null) {
      // Downloaded before a restart: reopen from the store (a range-read file's needed ranges are all stored).
      const url = sourceUrl(input.sources[state.source]);
      if (state.mode === 'whole') return storedFileSource(this.h.store, job.workId, role, state.size);
      return HttpRangeSource.open(url, this.h.store, job.workId, role, this.rangeOpts(signal, state.size));
    }

    const failures = state.failures;
    for (let i = state.source ?? 0; i < input.sources.length; i++) {
      const src = input.sources[i];
      const url = sourceUrl(src);
      try {
        if (state.source !== i) {
          // Bytes from another mirror may belong to another file (when nothing was pinned): start this one clean.
          await this.h.store.clearFile(job.workId, role);
          Object.assign(state, { source: i, facts: null, mode: null, size: null, check: null, sha256: null });
          await this.h.save(job, false);
        }
        if (!state.facts) {
          state.facts = await probeSource(url, {
            fetch: this.h.fetchFn,
            signal,
            retries: this.h.tuning.retries,
            retryDelayMs: this.h.tuning.retryDelayMs,
          });
          await this.h.save(job, false);
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
            await this.h.store.clearFile(job.workId, role);
          }
        }
        return await this.wholeInput(job, role, src, facts, template, prog, signal);
      } catch (e) {
        if (signal.aborted || isAbort(e) || isQuotaError(e) || e instanceof StorageQuotaError) throw e;
        // This mirror failed: say why, drop its bytes, and try the next one.
        failures.push({ url, error: wire(e) });
        await this.h.store.clearFile(job.workId, role);
        Object.assign(state, { source: i + 1 < input.sources.length ? i + 1 : null, facts: null, mode: null, size: null });
        await this.h.save(job, false);
      }
    }
    const err = new MirrorsFailedError(role, failures.slice());
    state.failures = [];
    state.source = null;
    throw err;
  }

  private rangeOpts(signal: AbortSignal, size: number | null, onFetched?: (n: number) => void) {
    return {
      fetch: this.h.fetchFn,
      signal,
      size,
      onFetched,
      retries: this.h.tuning.retries,
      retryDelayMs: this.h.tuning.retryDelayMs,
      flushBytes: this.h.tuning.flushBytes,
      minRequest: this.h.tuning.minRequest,
    };
  }

  private async rangeInput(
    job: J,
    role: string,
    src: CatalogueSource,
    facts: SourceFacts,
    size: number,
    template: Template,
    prog: ReturnType<InputFetcher<J>['inputProgress']>,
    signal: AbortSignal,
  ): Promise<RandomAccess> {
    const state = job.inputs[role];
    state.mode = 'ranges';
    state.size = size;
    await this.h.save(job, false);
    let got = 0;
    const http = await HttpRangeSource.open(
      src.url,
      this.h.store,
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
    for (const [a, b] of await this.h.store.storedRanges(job.workId, role)) stored += b - a;
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
    await this.h.save(job, false);
    return http;
  }

  private async wholeInput(
    job: J,
    role: string,
    src: CatalogueSource,
    facts: SourceFacts,
    template: Template,
    prog: ReturnType<InputFetcher<J>['inputProgress']>,
    signal: AbortSignal,
  ): Promise<RandomAccess> {
    const state = job.inputs[role];
    state.mode = 'whole';
    await this.h.save(job, false);
    const expected = src.bytes ?? facts.size;
    const res = await fetchFile(src.url, this.h.store, job.workId, role, {
      fetch: this.h.fetchFn,
      signal,
      expectedBytes: expected,
      retries: this.h.tuning.retries,
      retryDelayMs: this.h.tuning.retryDelayMs,
      flushBytes: this.h.tuning.flushBytes,
      onProgress: (n, total) => prog.update(role, n, total),
    });
    const want = expected ?? res.serverTotal;
    if (want !== null && res.bytes !== want) throw new SourceIntegrityError(src.url, 'size', want, res.bytes);
    job.phase = 'verifying';
    await this.h.save(job);
    const got = await hashStoredFile(this.h.store, job.workId, role, res.bytes, signal);
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
    await this.h.save(job);
    const file = storedFileSource(this.h.store, job.workId, role, res.bytes);
    // Check the keys now, so that a wrong file from this mirror makes us try the next one.
    this.checkFits(template, role, await openCheckpoint(file, src.format, signal));
    return file;
  }

  /** The inputs `roles`, downloaded (or picked) and checked against `template`, opened for the converter. */
  async obtainInputs(
    m: CatalogueModel,
    job: J,
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
  inputProvenance(m: CatalogueModel, job: J) {
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
