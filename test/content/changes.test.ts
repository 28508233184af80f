// The content script's bookkeeping of what changed (changes.ts) and its work loop's list walking (work-loop.ts), in
// Node: elements are only map keys here, and idle callbacks are run by hand.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Changes, F_NAME, F_SRC, F_TREE } from '../../src/content/changes';
import { WorkLoop } from '../../src/content/work-loop';

let idle: IdleRequestCallback[] = [];

/** Run idle callbacks until the loop has nothing left; how many slices it took. */
function runIdle(): number {
  let slices = 0;
  while (idle.length > 0) {
    const cb = idle.shift()!;
    cb({ didTimeout: false, timeRemaining: () => 50 });
    slices += 1;
  }
  return slices;
}

beforeEach(() => {
  idle = [];
  vi.stubGlobal('requestIdleCallback', (cb: IdleRequestCallback) => idle.push(cb));
  vi.stubGlobal('cancelIdleCallback', () => {
    idle = [];
  });
});
afterEach(() => {
  vi.unstubAllGlobals();
});

const el = (name: string) => ({ name }) as unknown as Element;

describe('changes', () => {
  it('a storm of changes to one element is one unit of work, with every flag', () => {
    const seen: [Element, number][] = [];
    const changes = new Changes(new WorkLoop(new AbortController().signal), new AbortController().signal, (e, f) => seen.push([e, f]));
    const a = el('a');
    const b = el('b');
    for (let i = 0; i < 1000; i += 1) changes.mark(a, i % 2 ? F_SRC : F_NAME);
    changes.mark(b, F_TREE);
    expect(changes.size).toBe(2);
    expect(idle.length).toBe(1);
    runIdle();
    expect(seen).toEqual([
      [a, F_NAME | F_SRC],
      [b, F_TREE],
    ]);
    expect(changes.size).toBe(0);
  });

  it('a change noted while draining is handled too', () => {
    const seen: string[] = [];
    const a = el('a');
    const b = el('b');
    const changes: Changes = new Changes(new WorkLoop(new AbortController().signal), new AbortController().signal, (e) => {
      seen.push((e as unknown as { name: string }).name);
      if (e === a) changes.mark(b, F_NAME);
    });
    changes.mark(a, F_NAME);
    runIdle();
    expect(seen).toEqual(['a', 'b']);
  });

  it('notes nothing once switched off', () => {
    const ctl = new AbortController();
    const seen: Element[] = [];
    const changes = new Changes(new WorkLoop(ctl.signal), ctl.signal, (e) => seen.push(e));
    changes.mark(el('a'), F_NAME);
    ctl.abort();
    changes.mark(el('b'), F_NAME);
    runIdle();
    expect(seen).toEqual([]);
  });
});

describe('work loop', () => {
  it('walks a short list at once, and a long one in the loop', () => {
    const loop = new WorkLoop(new AbortController().signal);
    const short: number[] = [];
    loop.each([1, 2, 3], (n) => short.push(n));
    expect(short).toEqual([1, 2, 3]);
    expect(idle.length).toBe(0);

    const long = Array.from({ length: 100 }, (_, i) => i);
    const walked: number[] = [];
    loop.each(long, (n) => walked.push(n));
    expect(walked).toEqual([]);
    runIdle();
    expect(walked).toEqual(long);
    expect(loop.stats.units).toBe(100);
  });
});
