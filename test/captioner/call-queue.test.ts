// The captioner's one-at-a-time rule (src/captioner/call-queue.ts): calls in turn, an urgent call between two steps of
// the running one, a waiting call cancelled at once, and nothing started once the captioner is disposed.
import { describe, expect, it } from 'vitest';
import { CallQueue } from '../../src/captioner/call-queue';
import { CaptionAbortedError, CaptionerDisposedError } from '../../src/shared/errors';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('call queue', () => {
  it('runs calls one at a time, in the order they came, a failed one included', async () => {
    const q = new CallQueue(() => false);
    const log: string[] = [];
    const call = (name: string, fail = false) =>
      q.enqueue(undefined, async () => {
        log.push(`${name} start`);
        await tick();
        log.push(`${name} end`);
        if (fail) throw new Error(name);
        return name;
      });
    const results = await Promise.allSettled([call('a'), call('b', true), call('c')]);
    expect(log).toEqual(['a start', 'a end', 'b start', 'b end', 'c start', 'c end']);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });

  it('an urgent call runs at the running call\u2019s next step, before the calls queued behind it', async () => {
    const q = new CallQueue(() => false);
    const log: string[] = [];
    let urgentAsked!: () => void;
    const asked = new Promise<void>((r) => (urgentAsked = r));
    const long = q.enqueue(undefined, async () => {
      for (let step = 0; step < 3; step++) {
        log.push(`long step ${step}`);
        if (step === 0) urgentAsked();
        await tick();
        await q.runUrgent();
      }
    });
    const next = q.enqueue(undefined, async () => void log.push('next'));
    await asked;
    const urgent = q.jumpQueue(undefined, async () => void log.push('urgent'));
    await Promise.all([long, next, urgent]);
    expect(log).toEqual(['long step 0', 'urgent', 'long step 1', 'long step 2', 'next']);
  });

  it('without a running call, an urgent call simply runs', async () => {
    const q = new CallQueue(() => false);
    expect(await q.jumpQueue(undefined, async () => 'alone')).toBe('alone');
  });

  it('a waiting call whose signal aborts rejects at once and never runs', async () => {
    const q = new CallQueue(() => false);
    let release!: () => void;
    const first = q.enqueue(undefined, () => new Promise<void>((r) => (release = r)));
    const ctl = new AbortController();
    let ran = false;
    const waiting = q.enqueue(ctl.signal, async () => void (ran = true));
    ctl.abort();
    await expect(waiting).rejects.toBeInstanceOf(CaptionAbortedError);
    release();
    await first;
    await q.idle;
    expect(ran).toBe(false);
  });

  it('once disposed, a call that had not started fails with CaptionerDisposedError', async () => {
    let disposed = false;
    const q = new CallQueue(() => disposed);
    let release!: () => void;
    const first = q.enqueue(undefined, () => new Promise<void>((r) => (release = r)));
    const later = q.enqueue(undefined, async () => 'never');
    await tick(); // the first call is running
    disposed = true;
    release();
    await first;
    await expect(later).rejects.toBeInstanceOf(CaptionerDisposedError);
  });
});
