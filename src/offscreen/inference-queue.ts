/**
 * The engine host's inference queue: lowest priority number first, then first come. Jobs are keyed by caption-cache
 * key, so the same image asked twice (two frames, or again after a worker restart) runs once and answers every
 * waiter. Cancelling a request drops its waiter; a job with no waiters left is removed, or aborted when it is running.
 * Recent results are remembered, for requests that arrive just after their job ended.
 *
 * Batches: when the job to run next may share a batch (the runner names its group: same model, greedy decoding),
 * queued jobs of the same group join it, up to `maxBatch`, and run as rows of one decoder step (captioner.ts's
 * captionBatch): the weights are read once per step for all of them. After a pause the first job runs alone, so the
 * first label on a page does not wait for a batch. Urgent jobs (priority below `urgentBelow`:
 * "Describe this image") do not wait for the batch: one at a time, they run beside it, and the engine runs them
 * between the batch's decoder steps.
 */
import { BoundedMap } from '../shared/bounded-map';
import { CancelledError, QueueFullError } from '../shared/errors';
import { LIMITS } from '../shared/limits';

export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** How the queue runs its jobs' work. */
export interface JobRunner<I, T> {
  /** One job alone; `urgent`: it runs beside a batch, between its decoder steps. */
  one(item: I, signal: AbortSignal, urgent: boolean): Promise<T>;
  /** Several jobs of one group as one batch; each gets its own result, in order. */
  many(items: I[], signal: AbortSignal): Promise<Settled<T>[]>;
  /** Jobs with the same group may share a batch; null: this job always runs alone. */
  group(item: I): string | null;
}

/** A job that is its own work: a function of the abort signal, run alone (the default runner, and the tests'). */
export type Work<T> = (signal: AbortSignal) => Promise<T>;

function ownWork<T>(): JobRunner<Work<T>, T> {
  return {
    one: (work, signal) => work(signal),
    many: () => Promise.reject(new Error('unreachable: work items never share a batch')),
    group: () => null,
  };
}

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

interface Job<I, T> {
  key: string;
  priority: number;
  seq: number;
  waiters: Map<string, Waiter<T>>;
  controller: AbortController;
  item: I;
}

export interface QueueOptions<I, T> {
  runner?: JobRunner<I, T>;
  maxQueued?: number;
  /** Results of just-finished jobs it keeps, for requests that were on their way while their job ended. */
  recentSize?: number;
  /** Rows of one batch at most (1: no batches). */
  maxBatch?: number;
  /** Jobs with a priority number below this are urgent (run beside a batch). */
  urgentBelow?: number;
  /**
   * When the queue is idle and a batch could take more rows than are waiting, wait this long for more to arrive
   * before starting it (0: start at once). A batch's answers reach the content script together, and its next requests
   * come back a few milliseconds apart: without the wait, the first would start alone every time.
   */
  gatherMs?: number;
  /**
   * A queue that has finished nothing for this long is idle: its next job runs alone and at once, as the first label
   * on a page is the one a person waits for; the jobs that queue up behind it share the next batches.
   */
  idleMs?: number;
  onChange?: () => void;
}

export class InferenceQueue<T, I = Work<T>> {
  private queued: Job<I, T>[] = [];
  /** The job, or the batch, running now. */
  private running: Job<I, T>[] = [];
  /** The urgent job running beside it. */
  private urgent: Job<I, T> | null = null;
  private seq = 0;
  /**
   * Results of jobs that just ended, by key, oldest first (at most `recentSize`): for a request that was on its way while
   * its job ended. Not a second caption cache: the worker's caption cache (background/caption-cache.ts) is the one.
   */
  private justFinished: BoundedMap<string, T>;
  private readonly runner: JobRunner<I, T>;
  private readonly maxQueued: number;
  private readonly maxBatch: number;
  private readonly urgentBelow: number;
  private readonly gatherMs: number;
  /** The wait for a batch to fill (gatherMs), while it lasts. */
  private gathering: ReturnType<typeof setTimeout> | null = null;
  private gathered = false;
  private readonly idleMs: number;
  /** When the last job or batch ended (performance.now()). */
  private lastEnded = -Infinity;
  private readonly onChange: () => void;

  constructor(opts: QueueOptions<I, T> = {}) {
    this.runner = opts.runner ?? (ownWork<T>() as unknown as JobRunner<I, T>);
    this.maxQueued = opts.maxQueued ?? LIMITS.queue.inference;
    this.maxBatch = opts.maxBatch ?? 1;
    this.urgentBelow = opts.urgentBelow ?? 0;
    this.gatherMs = opts.gatherMs ?? 0;
    this.idleMs = opts.idleMs ?? Infinity;
    this.onChange = opts.onChange ?? (() => {});
    this.justFinished = new BoundedMap(opts.recentSize ?? LIMITS.queue.inferenceRemembered);
  }

  get size(): number {
    return this.queued.length + this.running.length + (this.urgent ? 1 : 0);
  }

  private all(): Job<I, T>[] {
    return [...this.queued, ...this.running, ...(this.urgent ? [this.urgent] : [])];
  }

  submit(requestId: string, key: string, priority: number, item: I): Promise<T> {
    const remembered = this.justFinished.get(key);
    if (remembered !== undefined) return Promise.resolve(remembered);
    return new Promise<T>((resolve, reject) => {
      const existing = this.all().find((j) => j.key === key);
      if (existing) {
        existing.waiters.set(requestId, { resolve, reject });
        existing.priority = Math.min(existing.priority, priority);
        this.pump();
        return;
      }
      if (this.queued.length >= this.maxQueued) {
        reject(new QueueFullError());
        return;
      }
      this.seq += 1;
      this.queued.push({
        key,
        priority,
        seq: this.seq,
        waiters: new Map([[requestId, { resolve, reject }]]),
        controller: new AbortController(),
        item,
      });
      this.onChange();
      this.pump();
    });
  }

  cancel(requestIds: Iterable<string>): void {
    for (const id of requestIds) {
      for (const job of this.all()) {
        const w = job.waiters.get(id);
        if (!w) continue;
        job.waiters.delete(id);
        w.reject(new CancelledError());
        if (job.waiters.size === 0) {
          if (this.queued.includes(job)) this.queued = this.queued.filter((j) => j !== job);
          else job.controller.abort(new CancelledError());
          this.onChange();
        }
      }
    }
  }

  /** Forget remembered results (the caption cache was cleared); queued and running jobs go on. */
  forget(): void {
    this.justFinished.clear();
  }

  /** Drop everything, e.g. when the pack changes. */
  clear(reason: unknown = new CancelledError()): void {
    for (const job of this.all()) {
      job.controller.abort(reason);
      for (const w of job.waiters.values()) w.reject(reason);
      job.waiters.clear();
    }
    this.queued = [];
    this.justFinished.clear();
    this.onChange();
  }

  /** The queued jobs in the order they run: lowest priority number first, then first come. */
  private ordered(): Job<I, T>[] {
    return [...this.queued].sort((a, b) => a.priority - b.priority || a.seq - b.seq);
  }

  private take(jobs: Job<I, T>[]): void {
    this.queued = this.queued.filter((j) => !jobs.includes(j));
  }

  private pump(): void {
    const order = this.ordered();
    // An urgent job runs at once, beside the job or batch running now (the engine fits it between decoder steps).
    const u = order.find((j) => j.priority < this.urgentBelow);
    if (u && !this.urgent && (this.running.length > 0 || order[0] === u)) {
      this.take([u]);
      this.urgent = u;
      this.onChange();
      void this.settle([u], this.runner.one(u.item, u.controller.signal, this.running.length > 0)).finally(() => {
        this.urgent = null;
        this.onChange();
        this.pump();
      });
      return this.pump();
    }
    if (this.running.length || this.urgent) return;
    const first = order[0];
    if (!first) return;
    const streaming = performance.now() - this.lastEnded <= this.idleMs;
    const group = streaming ? this.runner.group(first.item) : null;
    const batch = group === null ? [first] : order.filter((j) => this.runner.group(j.item) === group).slice(0, this.maxBatch);
    if (group !== null && batch.length < this.maxBatch && this.gatherMs > 0 && !this.gathered) {
      this.gathering ??= setTimeout(() => {
        this.gathering = null;
        this.gathered = true;
        this.pump();
      }, this.gatherMs);
      return;
    }
    if (this.gathering !== null) clearTimeout(this.gathering);
    this.gathering = null;
    this.gathered = false;
    this.take(batch);
    this.running = batch;
    this.onChange();
    const done =
      batch.length === 1
        ? this.settle(batch, this.runner.one(first.item, first.controller.signal, false))
        : this.settleEach(
            batch,
            this.runner.many(
              batch.map((j) => j.item),
              allAborted(batch.map((j) => j.controller.signal)),
            ),
          );
    void done.finally(() => {
      this.running = [];
      this.lastEnded = performance.now();
      this.onChange();
      this.pump();
    });
  }

  /** One job's result to its waiters. */
  private settle(jobs: Job<I, T>[], run: Promise<T>): Promise<void> {
    return this.settleEach(
      jobs,
      run.then(
        (value) => [{ ok: true as const, value }],
        (error: unknown) => [{ ok: false as const, error }],
      ),
    );
  }

  /** Each job's result to its waiters; a batch that failed as a whole fails every job. */
  private async settleEach(jobs: Job<I, T>[], run: Promise<Settled<T>[]>): Promise<void> {
    let results: Settled<T>[];
    try {
      results = await run;
    } catch (error) {
      results = jobs.map(() => ({ ok: false, error }));
    }
    jobs.forEach((job, i) => {
      const r = results[i] ?? { ok: false, error: new Error('The engine gave no answer for this image.') };
      if (r.ok) this.justFinished.set(job.key, r.value);
      for (const w of job.waiters.values()) {
        if (r.ok) w.resolve(r.value);
        else w.reject(r.error);
      }
    });
  }
}

/** A signal that aborts once every one of `signals` has: a batch goes on while any of its images is still wanted. */
function allAborted(signals: AbortSignal[]): AbortSignal {
  const c = new AbortController();
  const check = () => {
    if (signals.every((s) => s.aborted)) c.abort(signals[0].reason);
  };
  for (const s of signals) s.addEventListener('abort', check, { once: true });
  check();
  return c.signal;
}
