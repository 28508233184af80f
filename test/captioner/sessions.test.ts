// WASM threads when the caller does not say: one core is left for the page and the screen reader, at most 4. And the
// options each graph's session is created with.
import { describe, expect, it } from 'vitest';
import { createSessions, createTextSession, defaultThreads, type Ort } from '../../src/captioner/sessions';

describe('default wasm threads', () => {
  it('leaves a core free, from 1 to 4 threads', () => {
    expect([1, 2, 3, 4, 6, 8, 16].map((n) => defaultThreads(n))).toEqual([1, 1, 2, 3, 4, 4, 4]);
  });
});

// What each graph's session is created with: on WASM the once-per-image graphs unoptimised (their fp16 weights stay
// fp16 in ORT's heap), the decoder and the text tower optimised; on WebGPU every graph optimised.
describe('session options per graph', () => {
  /** An ORT stand-in that records the options each session is created with, in order. */
  function recordingOrt() {
    const opts: Array<Record<string, unknown>> = [];
    const ort = {
      InferenceSession: {
        create: async (_bytes: Uint8Array, o: Record<string, unknown>) => {
          opts.push(o);
          return { release: async () => undefined };
        },
      },
    } as unknown as Ort;
    return { ort, opts };
  }
  const bytes = new Uint8Array(1);
  const files = { vision: bytes, mapper: bytes, decoder: bytes, text: bytes };

  it('WASM: vision and mapper unoptimised, decoder and text tower optimised', async () => {
    const { ort, opts } = recordingOrt();
    const s = await createSessions(ort, files, 'wasm');
    await createTextSession(ort, s, bytes);
    expect(opts.map((o) => o.graphOptimizationLevel)).toEqual(['disabled', 'disabled', 'all', 'all', 'all']);
    expect(opts.every((o) => (o.executionProviders as string[])[0] === 'wasm')).toBe(true);
  });

  it('WebGPU: every graph optimised', async () => {
    const { ort, opts } = recordingOrt();
    await createSessions(ort, files, 'webgpu');
    expect(opts.map((o) => o.graphOptimizationLevel)).toEqual(['all', 'all', 'all', 'all']);
  });
});
