import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { CaptionCache } from '../../src/background/caption-cache';
import { labelText } from '../../src/content/labeller';
import { ImageFetchError, NoPackError, fromWire, isTransportError, toWire } from '../../src/shared/errors';
import { PackIntegrityError } from '../../src/shared/errors';
import { unwrap } from '../../src/shared/messages';

describe('errors on the wire', () => {
  it('keep their names and classes', () => {
    const back = fromWire(toWire(new NoPackError()));
    expect(back).toBeInstanceOf(NoPackError);
    expect(back.name).toBe('NoPackError');
    const engine = fromWire(toWire(new PackIntegrityError('vision.onnx', 'a'.repeat(64), 'b'.repeat(64))));
    expect(engine.name).toBe('PackIntegrityError');
    expect(engine.message).toMatch(/corrupt/);
    expect(toWire('plain')).toEqual({ name: 'Error', message: 'plain' });
  });

  it('a missing reply is a transport error, which is retried; a named error is not', () => {
    let caught: unknown;
    try {
      unwrap('cs-bg-status', undefined);
    } catch (e) {
      caught = e;
    }
    expect(isTransportError(caught)).toBe(true);
    expect(isTransportError(new ImageFetchError('HTTP 404'))).toBe(false);
    expect(() => unwrap('cs-bg-status', { ok: false, error: { name: 'ImageFetchError', message: 'x' } })).toThrow(ImageFetchError);
  });
});

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
});

describe('label text', () => {
  it('puts the marker before the caption, in sentence flow', () => {
    expect(labelText('Appears to be: ', 'A red circle on a white background.')).toBe('Appears to be: a red circle on a white background.');
    expect(labelText('Appears to be: ', 'TV on a table.')).toBe('Appears to be: TV on a table.');
  });
});
