/**
 * The captioner's one-at-a-time rule: calls run behind each other (ORT runs one graph at a time per session), and an
 * urgent call (a caption a person asked for) runs between two decoder steps of the call now running instead of after
 * it. A waiting call rejects at once when its signal aborts; one that starts after the captioner was disposed fails
 * with CaptionerDisposedError.
 */
import { CaptionAbortedError, CaptionerDisposedError, throwIfAborted } from '../shared/errors';

/** Settle like `run`, or reject at once when `signal` aborts first. */
function abortable<T>(signal: AbortSignal | undefined, run: Promise<T>): Promise<T> {
  if (!signal) return run;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new CaptionAbortedError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    run.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export class CallQueue {
  private tail: Promise<unknown> = Promise.resolve();
  /** A call is running (between its start and its end; urgent ones run inside it). */
  private running = false;
  /** Urgent calls waiting for the running call's next decoder step, or for its end. */
  private readonly urgent: (() => Promise<void>)[] = [];

  constructor(private readonly disposed: () => boolean) {}

  /** Every call queued so far has settled. */
  get idle(): Promise<unknown> {
    return this.tail;
  }

  /** Run the urgent calls that are waiting, one after another (awaited between decoder steps, and after each call). */
  readonly runUrgent = async (): Promise<void> => {
    while (this.urgent.length) await this.urgent.shift()!();
  };

  /** Run fn behind every earlier call; reject at once if aborted while waiting. */
  enqueue<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    const start = async () => {
      if (this.disposed()) throw new CaptionerDisposedError();
      throwIfAborted(signal);
      this.running = true;
      try {
        return await fn();
      } finally {
        // An urgent call that came after this call's last decoder step runs before the next call.
        await this.runUrgent();
        this.running = false;
      }
    };
    const run = this.tail.then(start, start);
    this.tail = run.catch(() => undefined);
    return abortable(signal, run);
  }

  /** Run fn between the running call's decoder steps (or at its end); as enqueue when no call is running. */
  jumpQueue<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    if (!this.running) return this.enqueue(signal, fn);
    const run = new Promise<T>((resolve, reject) => {
      this.urgent.push(async () => {
        const started = (async () => {
          if (this.disposed()) throw new CaptionerDisposedError();
          throwIfAborted(signal);
          return fn();
        })();
        // Settled here, never thrown: the call it runs inside goes on whatever this one's fate.
        await started.then(resolve, reject);
      });
    });
    return abortable(signal, run);
  }
}
