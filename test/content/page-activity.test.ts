// A busy page (many watched changes a second) holds captions for images off screen until it has been quiet a while,
// with one let through now and then; an ordinary page never holds them.
import { describe, expect, it } from 'vitest';
import { PageActivity } from '../../src/content/page-activity';
import { LIMITS } from '../../src/shared/limits';

const { windowMs, changes, quietMs, trickleMs } = LIMITS.queue.busyPage;

function clock() {
  let t = 10_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('page activity', () => {
  it('an ordinary page (a few changes a second) never holds background captions', () => {
    const c = clock();
    const a = new PageActivity(c.now);
    for (let i = 0; i < 100; i += 1) {
      a.note(Math.floor(changes / 20));
      c.advance(windowMs / 10);
      expect(a.backgroundTurn()).toBe(0);
    }
    expect(a.stats.busySpells).toBe(0);
  });

  it('a storm holds them until it has been quiet for a while, letting one through every trickle period', () => {
    const c = clock();
    const a = new PageActivity(c.now);
    let through = 0;
    // 10 s of storm: 2,000 changes a second, in frames of 50.
    for (let ms = 0; ms < 10_000; ms += 25) {
      a.note(50);
      c.advance(25);
      if (a.busy && a.backgroundTurn() === 0) through += 1;
    }
    expect(a.busy).toBe(true);
    expect(a.stats.busySpells).toBe(1);
    // Busy from the storm's first 0.1 s; none in the first trickle period, then one per period: at 5.1 s (10.1 s is past).
    expect(trickleMs).toBe(5000);
    expect(through).toBe(1);
    const wait = a.backgroundTurn();
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(quietMs);
    c.advance(quietMs);
    expect(a.busy).toBe(false);
    expect(a.backgroundTurn()).toBe(0);
  });
});
