// WASM threads when the caller does not say: one core is left for the page and the screen reader, at most 4. And the
// options each graph's session is created with.
import { describe, expect, it } from 'vitest';
import { createSessions, createTextSession, defaultThreads, type Ort } from '../../src/captioner/sessions';

describe('default wasm threads', () => {
  it('leaves a core free, from 1 to 4 threads', () => {
    expect([1, 2, 3, 4, 6, 8, 16].map((n) => defaultThreads(n))).toEqual([1, 1, 2, 3, 4, 4, 4]);
  });
});

// What each graph's session is created with, and in which order: on WASM the decoder first (its creation is the heap's
// high point, and what it frees then holds the others), the once-per-image graphs unoptimised (their fp16 weights stay
// fp16 in ORT's heap), the decoder at the basic level (folding without the fusion passes, which cost more at creation
// than they save), the text tower fully optimised; on WebGPU the image graphs first, every graph optimised.
describe('session options and order per graph', () => {
  const graphs = ['vision', 'mapper', 'decoder', 'text'] as const;
  const files = Object.fromEntries(graphs.map((g, i) => [g, new Uint8Array([i])])) as Record<(typeof graphs)[number], Uint8Array>;
  /** An ORT stand-in that records, in order, which graph each session is made from and with which options. */
  function recordingOrt() {
    const made: Array<{ graph: string; level: unknown; provider: string }> = [];
    const ort = {
      InferenceSession: {
        create: async (bytes: Uint8Array, o: Record<string, unknown>) => {
          const graph = graphs[bytes[0]];
          made.push({ graph, level: o.graphOptimizationLevel, provider: (o.executionProviders as string[])[0] });
          return { graph, release: async () => undefined };
        },
      },
    } as unknown as Ort;
    return { ort, made };
  }
  const named = (s: object) => Object.fromEntries(graphs.map((g) => [g, (s as Record<string, { graph?: string }>)[g]?.graph]));

  it('WASM: the decoder first; vision and mapper unoptimised, the decoder at the basic level, the text tower optimised', async () => {
    const { ort, made } = recordingOrt();
    const s = await createSessions(ort, { vision: files.vision, mapper: files.mapper, decoder: files.decoder }, 'wasm');
    await createTextSession(ort, s, files.text);
    expect(made.map((m) => [m.graph, m.level])).toEqual([
      ['decoder', 'basic'],
      ['vision', 'disabled'],
      ['mapper', 'disabled'],
      ['text', 'all'],
    ]);
    expect(made.every((m) => m.provider === 'wasm')).toBe(true);
    expect(named(s)).toEqual({ vision: 'vision', mapper: 'mapper', decoder: 'decoder', text: 'text' });
  });

  it('WebGPU: the image graphs first, every graph optimised', async () => {
    const { ort, made } = recordingOrt();
    const s = await createSessions(ort, files, 'webgpu');
    expect(made.map((m) => [m.graph, m.level])).toEqual([
      ['vision', 'all'],
      ['mapper', 'all'],
      ['decoder', 'all'],
      ['text', 'all'],
    ]);
    expect(named(s)).toEqual({ vision: 'vision', mapper: 'mapper', decoder: 'decoder', text: 'text' });
  });
});
