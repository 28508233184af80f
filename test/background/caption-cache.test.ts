import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { CaptionCache } from '../../src/background/caption-cache';

describe('caption cache', () => {
  const v = (text: string) => ({ text, packId: 'toy', backend: 'wasm', confidence: -0.1 });
  it('evicts the least recently used entry past its bound, and clears', async () => {
    const cache = new CaptionCache(() => 2, new IDBFactory());
    await cache.put('a', v('A'));
    await cache.put('b', v('B'));
    expect(await cache.get('a')).toEqual(v('A')); // a is now the most recent
    await cache.put('c', v('C'));
    expect(await cache.get('b')).toBeNull();
    expect(await cache.get('a')).toEqual(v('A'));
    expect(await cache.count()).toBe(2);
    expect(await cache.clear()).toBe(2);
    expect(await cache.count()).toBe(0);
  });

  it("keeps CLIP's score and verdict with the caption (an unsure caption stays unsure), and nothing a caller added", async () => {
    const cache = new CaptionCache(() => 10, new IDBFactory());
    const unsure = { ...v('A blue star.'), clipScore: 0.21, uncertain: true };
    await cache.put('u', { ...unsure, cached: false } as typeof unsure);
    expect(await cache.get('u')).toEqual(unsure);
    // A pack without CLIP's text tower: no score, no verdict, as before.
    await cache.put('plain', v('A red circle.'));
    expect(await cache.get('plain')).toEqual(v('A red circle.'));
    expect(Object.keys((await cache.get('plain'))!).sort()).toEqual(['backend', 'confidence', 'packId', 'text']);
  });
});
