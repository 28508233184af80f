/**
 * The offscreen document's end of the link to the engine's frame (src/shared/engine-link.ts): calls with one reply
 * each, cancellation, the frame's events, and the watch that tells a busy frame from a dead one.
 *
 * A crashed frame sends nothing, and nothing in the parent page says so (a MessagePort's close event did not fire for
 * a crashed frame in Chromium 156). So while any call is out, the client pings; a ping left unanswered for longer than
 * the frame can be busy (LIMITS.sandbox) means its process is gone: every call out fails with EngineCrashedError, and
 * `onDead` lets the owner start a new frame. Any message from the frame counts as an answer. Once the frame has sent
 * its heartbeat's port (src/sandbox/heartbeat.ts: a worker in its process that is never busy), that is pinged too,
 * and its silence past the much shorter heartbeat limit is the verdict; the frame's own limit stays, for a hang.
 */
import { CaptionAbortedError, CaptionerDisposedError, EngineCrashedError, fromWire } from '../shared/errors';
import type { LinkDown, LinkProtocol, LinkRequest, LinkType, LinkUp } from '../shared/engine-link';
import { LIMITS } from '../shared/limits';

interface Pending {
  type: LinkType;
  resolve(v: unknown): void;
  reject(e: Error): void;
}

export interface LinkEvents {
  onFallback(backend: string, reason: string): void;
  /** The frame stopped answering; every call out has failed with `err`. */
  onDead(err: EngineCrashedError): void;
}

export class EngineLinkClient {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** When the ping now unanswered was sent (null: none is). */
  private pingSentAt: number | null = null;
  /** The frame's heartbeat, once it has sent it, and when the beat asked of it now unanswered was asked. */
  private heartbeat: MessagePort | null = null;
  private beatSentAt: number | null = null;
  /** When the last check ran (null: the watch is off). */
  private lastCheckAt: number | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private ended: Error | null = null;
  /** The frame said it is creating a session outside 'os-sb-open' (sb-os-opening). */
  private openingOutsideOpen = false;

  constructor(
    private readonly port: MessagePort,
    private readonly events: LinkEvents,
    private readonly limits: typeof LIMITS.sandbox = LIMITS.sandbox,
    private readonly now: () => number = () => performance.now(),
  ) {
    port.onmessage = (e: MessageEvent) => this.receive(e.data as LinkUp, e.ports);
  }

  /** Send one request; `transfer` moves buffers instead of copying them; an aborted `signal` cancels it at once. */
  call<K extends LinkType>(
    type: K,
    req: LinkProtocol[K]['req'],
    opts: { transfer?: Transferable[]; signal?: AbortSignal } = {},
  ): Promise<LinkProtocol[K]['res']> {
    if (this.ended) return Promise.reject(this.ended);
    if (opts.signal?.aborted) return Promise.reject(new CaptionAbortedError(opts.signal.reason));
    const callId = this.nextId++;
    return new Promise<LinkProtocol[K]['res']>((resolve, reject) => {
      const onAbort = () => {
        if (!this.pending.delete(callId)) return;
        this.send({ type: 'os-sb-abort', callId });
        this.watch();
        reject(new CaptionAbortedError(opts.signal?.reason));
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(callId, {
        type,
        resolve: (v) => {
          opts.signal?.removeEventListener('abort', onAbort);
          resolve(v as LinkProtocol[K]['res']);
        },
        reject: (e) => {
          opts.signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
      this.send({ type, callId, ...req } as LinkRequest, opts.transfer ?? []);
      this.watch();
    });
  }

  /** Stop using the link (the engine is disposed): calls out fail with CaptionerDisposedError. */
  close(): void {
    this.end(new CaptionerDisposedError());
    this.port.close();
  }

  private beat(heartbeat: MessagePort): void {
    this.heartbeat?.close();
    this.heartbeat = heartbeat;
    heartbeat.onmessage = () => (this.beatSentAt = null);
  }

  private send(msg: LinkDown, transfer: Transferable[] = []): void {
    this.port.postMessage(msg, transfer);
  }

  private receive(msg: LinkUp, ports: readonly MessagePort[]): void {
    if (this.ended) return;
    this.pingSentAt = null;
    if (msg.type === 'sb-os-heartbeat' && ports[0]) this.beat(ports[0]);
    else if (msg.type === 'sb-os-fallback') this.events.onFallback(msg.backend, msg.reason);
    else if (msg.type === 'sb-os-opening') this.openingOutsideOpen = msg.opening;
    else if (msg.type === 'sb-os-reply') {
      const p = this.pending.get(msg.callId);
      if (!p) return;
      this.pending.delete(msg.callId);
      if (msg.reply.ok) p.resolve(msg.reply.value);
      else p.reject(fromWire(msg.reply.error));
    }
    this.watch();
  }

  /** Ping while calls are out, and judge the frame dead when a ping stays unanswered past its limit. */
  private watch(): void {
    if (this.pending.size === 0) {
      if (this.timer !== null) clearInterval(this.timer);
      this.timer = null;
      this.pingSentAt = this.beatSentAt = this.lastCheckAt = null;
      return;
    }
    this.timer ??= setInterval(() => this.check(), this.limits.pingEveryMs);
  }

  private check(): void {
    const now = this.now();
    // A check that comes late means this document's own thread was busy, and answers may still wait, unread, behind
    // it: it judges nothing, and asks again.
    if (this.lastCheckAt !== null && now - this.lastCheckAt > 3 * this.limits.pingEveryMs) this.pingSentAt = this.beatSentAt = null;
    this.lastCheckAt = now;
    const verdict = this.silence(now);
    if (verdict) {
      const err = new EngineCrashedError(verdict);
      this.end(err);
      this.events.onDead(err);
      return;
    }
    if (this.pingSentAt === null) {
      this.pingSentAt = now;
      this.send({ type: 'os-sb-ping' });
    }
    if (this.heartbeat && this.beatSentAt === null) {
      this.beatSentAt = now;
      this.heartbeat.postMessage(0);
    }
  }

  /** Why the frame is dead, or null while it may only be busy. */
  private silence(now: number): string | null {
    if (this.beatSentAt !== null && now - this.beatSentAt > this.limits.heartbeatSilentMs) {
      const s = Math.round((now - this.beatSentAt) / 1000);
      return `The captioning engine's process stopped: its heartbeat went silent for ${s} s (it crashed or ran out of memory).`;
    }
    if (this.pingSentAt === null) return null;
    const opening = this.openingOutsideOpen || [...this.pending.values()].some((p) => p.type === 'os-sb-open');
    const limit = opening ? this.limits.silentWhileOpeningMs : this.limits.silentMs;
    const silent = now - this.pingSentAt;
    if (silent <= limit) return null;
    return `The captioning engine stopped answering for ${Math.round(silent / 1000)} s (its process crashed, hung or ran out of memory).`;
  }

  private end(err: Error): void {
    if (this.ended) return;
    this.ended = err;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.heartbeat?.close();
    this.heartbeat = null;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
