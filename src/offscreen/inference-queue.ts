/**
 * The engine host's inference queue: one inference at a time, lowest priority number first, then first come.
 * Jobs are keyed by caption-cache key, so the same image asked twice (two frames, or again after a worker restart)
 * runs once and answers every waiter. Cancelling a request drops its waiter; a job with no waiters left is removed,
 * or aborted when it is running. Recent results are remembered, for requests that arrive just after their job ended.
 */
import { BoundedMap } from '../shared/bounded-map';
import { CancelledError, QueueFullError } from '../shared/errors';
import { LIMITS } from '../shared/limits';

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

interface Job<T> {
  key: string;
  priority: number;
  seq: number;
  waiters: Map<string, Waiter<T>>;
  controller: AbortController;
  run: (signal: AbortSignal) => Promise<T>;
}

export class InferenceQueue<T> {
  private queued: Job<T>[] = [];
  private running: Job<T> | null = null;
  private seq = 0;
  /**
   * Results of jobs that just ended, by key, oldest first (at most `recentSize`): for a request that was on its way while
   * its job ended. Not a second caption cache: the worker's caption cache (background/caption-cache.ts) is the one.
   */
  private justFinished: BoundedMap<string, T>;

  constructor(
    private readonly maxQueued = LIMITS.queue.inference,
    recentSize = LIMITS.queue.inferenceRemembered,
    private readonly onChange: () => void = () => {},
  ) {
    this.justFinished = new BoundedMap(recentSize);
  }

  get size(): number {
    return this.queued.length + (this.running ? 1 : 0);
  }

  submit(requestId: string, key: string, priority: number, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const remembered = this.justFinished.get(key);
    if (remembered !== undefined) return Promise.resolve(remembered);
    return new Promise<T>((resolve, reject) => {
      const existing = this.running?.key === key ? this.running : this.queued.find((j) => j.key === key);
      if (existing) {
        existing.waiters.set(requestId, { resolve, reject });
        existing.priority = Math.min(existing.priority, priority);
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
        run,
      });
      this.onChange();
      this.pump();
    });
  }

  cancel(requestIds: Iterable<string>): void {
    for (const id of requestIds) {
      for (const job of [...this.queued, ...(this.running ? [this.running] : [])]) {
        const w = job.waiters.get(id);
        if (!w) continue;
        job.waiters.delete(id);
        w.reject(new CancelledError());
        if (job.waiters.size === 0) {
          if (job === this.running) job.controller.abort(new CancelledError());
          else this.queued = this.queued.filter((j) => j !== job);
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
    for (const job of [...this.queued, ...(this.running ? [this.running] : [])]) {
      job.controller.abort(reason);
      for (const w of job.waiters.values()) w.reject(reason);
      job.waiters.clear();
    }
    this.queued = [];
    this.justFinished.clear();
    this.onChange();
  }

  private next(): Job<T> | undefined {
    let best = -1;
    for (let i = 0; i < this.queued.length; i += 1) {
      const j = this.queued[i];
      const b = this.queued[best];
      if (best < 0 || j.priority < b.priority || (j.priority === b.priority && j.seq < b.seq)) best = i;
    }
    return best < 0 ? undefined : this.queued.splice(best, 1)[0];
  }

  private pump(): void {
    if (this.running) return;
    const job = this.next();
    if (!job) return;
    this.running = job;
    this.onChange();
    void job
      .run(job.controller.signal)
      .then(
        (value) => {
          this.justFinished.set(job.key, value);
          for (const w of job.waiters.values()) w.resolve(value);
        },
        (err: unknown) => {
          for (const w of job.waiters.values()) w.reject(err);
        },
      )
      .finally(() => {
        this.running = null;
        this.onChange();
        this.pump();
      });
  }
}
