// The engine page's beats to Firefox's event page (src/offscreen/keep-alive.ts): while there is work, and for the
// grace period after it, then none.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { keepBackgroundAwake } from '../../src/offscreen/keep-alive';
import { LIMITS } from '../../src/shared/limits';

describe('keep-alive beats', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('beat every interval while there is work, go on through the grace period, then stop', () => {
    let queued = 0;
    const beats: number[] = [];
    const stop = keepBackgroundAwake(() => queued, { everyMs: 1000, graceMs: 5000, beat: (n) => beats.push(n) });
    vi.advanceTimersByTime(3000);
    // Idle since it started: nothing to keep.
    expect(beats).toEqual([]);
    queued = 2;
    vi.advanceTimersByTime(3000);
    expect(beats).toEqual([2, 2, 2]);
    queued = 0;
    vi.advanceTimersByTime(5000);
    expect(beats).toEqual([2, 2, 2, 0, 0, 0, 0, 0]);
    vi.advanceTimersByTime(10_000);
    expect(beats).toHaveLength(8);
    // Work again: beats again.
    queued = 1;
    vi.advanceTimersByTime(1000);
    expect(beats.at(-1)).toBe(1);
    stop();
    vi.advanceTimersByTime(10_000);
    expect(beats).toHaveLength(9);
  });

  it('beats well inside Firefox’s 30 s idle window, and keeps the model a few minutes after the last label', () => {
    expect(LIMITS.queue.keepAliveMs).toBeLessThanOrEqual(10_000);
    expect(LIMITS.queue.keepAliveGraceMs).toBeGreaterThanOrEqual(60_000);
  });
});
