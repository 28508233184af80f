// The frame's caption queue orders waiting images by priority, then by distance from the reading position; when full,
// a visible image takes the place of the farthest one waiting; and it says when it has room again.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PRIORITY, type CaptionResult } from '../../src/shared/messages';

interface Sent {
  src: string;
  resolve: (r: CaptionResult) => void;
}
const sent: Sent[] = [];

vi.mock('../../src/content/messaging', () => ({
  request: (msg: { type: string; source?: { url: string } }) => {
    if (msg.type !== 'cs-bg-caption') return Promise.resolve(null);
    return new Promise<CaptionResult>((resolve) => sent.push({ src: msg.source!.url, resolve }));
  },
}));

const { CaptionRequests } = await import('../../src/content/caption-requests');

const el = (name: string) => ({ name }) as unknown as Element;
const url = (name: string) => `https://example.test/${name}.png`;
const caption = (text: string): CaptionResult => ({ text, rawText: text, cached: false }) as unknown as CaptionResult;
const tick = () => new Promise((r) => setTimeout(r, 0));

function queue(maxQueued: number, readingAt?: () => number, backgroundTurn?: () => number) {
  const results: string[] = [];
  const dropped: string[] = [];
  let rooms = 0;
  const q = new CaptionRequests(
    {
      onResult: (e) => results.push((e as unknown as { name: string }).name),
      onError: () => undefined,
      onDrop: (e) => dropped.push((e as unknown as { name: string }).name),
      onRoom: () => (rooms += 1),
    },
    new AbortController().signal,
    { maxInFlight: 1, maxQueued, readingAt, backgroundTurn },
  );
  return { q, results, dropped, rooms: () => rooms };
}

async function answerNext(): Promise<string> {
  await tick();
  const s = sent.shift()!;
  s.resolve(caption(s.src));
  await tick();
  return s.src;
}

describe('caption requests', () => {
  afterEach(() => {
    sent.length = 0;
  });

  it('asks about the nearest waiting image first, whatever order they came in', async () => {
    const { q, results } = queue(10);
    q.add(el('first'), url('first'), PRIORITY.rest, true, 900); // goes out at once (one in flight)
    q.add(el('far'), url('far'), PRIORITY.rest, true, 500);
    q.add(el('near'), url('near'), PRIORITY.rest, true, 100);
    q.add(el('mid'), url('mid'), PRIORITY.rest, true, 300);
    q.add(el('seen'), url('seen'), PRIORITY.visible, true, 0);
    const order = [];
    for (let i = 0; i < 5; i += 1) order.push(await answerNext());
    expect(order).toEqual(['first', 'seen', 'near', 'mid', 'far'].map(url));
    expect(results).toEqual(['first', 'seen', 'near', 'mid', 'far']);
  });

  it('follows the reading position as it moves: nearest to where the user reads now', async () => {
    let at = 800;
    const { q } = queue(10, () => at);
    q.add(el('first'), url('first'), PRIORITY.rest, true, 0); // goes out at once
    for (const [n, y] of [
      ['top', 100],
      ['mid', 500],
      ['low', 900],
      ['bottom', 2000],
    ] as const)
      q.add(el(n), url(n), PRIORITY.rest, true, y);
    const order = [await answerNext()]; // 'low' goes out next: nearest to 800
    at = 0; // the user went back to the top
    for (let i = 0; i < 4; i += 1) order.push(await answerNext());
    expect(order).toEqual(['first', 'low', 'top', 'mid', 'bottom'].map(url));
  });

  it('full: a visible image takes the place of the farthest waiting one, which is handed back', async () => {
    const { q, dropped } = queue(4);
    q.add(el('first'), url('first'), PRIORITY.rest, true, 50);
    q.add(el('b'), url('b'), PRIORITY.rest, true, 200);
    q.add(el('c'), url('c'), PRIORITY.rest, true, 900);
    q.add(el('d'), url('d'), PRIORITY.rest, true, 400);
    expect(q.add(el('off'), url('off'), PRIORITY.rest, true, 10)).toBe(false);
    expect(q.add(el('seen'), url('seen'), PRIORITY.visible, true, 0)).toBe(true);
    expect(dropped).toEqual(['off', 'c']);
  });

  it('says when it has room again: after turning one away, or when asked to', async () => {
    const { q, rooms } = queue(4);
    for (const [i, n] of ['a', 'b', 'c', 'd', 'e'].entries()) q.add(el(n), url(n), PRIORITY.rest, true, i);
    expect(rooms()).toBe(0);
    await answerNext();
    expect(rooms()).toBe(0); // 3 waiting: more than half
    await answerNext();
    expect(rooms()).toBe(1);
    q.callOnRoom();
    await tick();
    expect(rooms()).toBe(2);
  });

  it('while the page is busy, images off screen wait and visible ones go at once; then the rest go', async () => {
    vi.useFakeTimers();
    try {
      let wait = 1000; // the page is busy for 1 s
      const { q, results } = queue(10, undefined, () => wait);
      q.add(el('off'), url('off'), PRIORITY.rest, true, 0);
      await vi.advanceTimersByTimeAsync(0);
      expect(sent).toHaveLength(0); // held
      q.add(el('seen'), url('seen'), PRIORITY.visible, true, 500);
      await vi.advanceTimersByTimeAsync(0);
      expect(sent.map((x) => x.src)).toEqual([url('seen')]);
      sent.shift()!.resolve(caption('seen'));
      await vi.advanceTimersByTimeAsync(0);
      expect(sent).toHaveLength(0); // still busy: the image off screen still waits
      wait = 0; // calm again
      await vi.advanceTimersByTimeAsync(1000);
      expect(sent.map((x) => x.src)).toEqual([url('off')]);
      sent.shift()!.resolve(caption('off'));
      await vi.advanceTimersByTimeAsync(0);
      expect(results).toEqual(['seen', 'off']);
    } finally {
      vi.useRealTimers();
    }
  });
});
