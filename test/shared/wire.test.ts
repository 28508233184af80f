// Errors crossing contexts: the registry rebuilds each named class, and a missing reply is a transport error.
import { describe, expect, it } from 'vitest';
import { ImageFetchError, NoPackError, PackIntegrityError, fromWire, isTransportError, toWire } from '../../src/shared/errors';
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
