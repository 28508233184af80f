/**
 * Backend choice and the WebGPU -> WASM fallback, in Node: a stub navigator.gpu reports an adapter, and a wrapped
 * onnxruntime-web makes the "webgpu" sessions fail (at creation, or at run time) while "wasm" sessions are real.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCaptioner, type CaptionerEvent } from '../../src/captioner/captioner';
import { BackendUnavailableError } from '../../src/shared/errors';
import { decodeImageWithSharp } from '../../src/captioner/node-decode';
import { loadPackFromFiles, type LoadedPack } from '../../src/captioner/pack-loader';
import type { Ort } from '../../src/captioner/sessions';
import { goldenPackDirs, packMissingMessage, readGolden, pickedPackFiles } from './helpers/packs';

const dir = goldenPackDirs()[0];
const missing = packMissingMessage(dir);

/**
 * The warm-up's runs: vision, mapper, prefill, one step. A text tower is not among them: its session is made at the
 * first caption that needs it (captioner.ts ensureText), so the first caption's run count includes its own.
 */
const warmUpRuns = 4;

/**
 * onnxruntime-web, except that sessions asked for "webgpu" fail where `failAt` says: at creation, at the warm-up
 * runs, or at run time after the warm-up. `lost` makes ort.env.webgpu.device report a lost device.
 */
function flakyGpuOrt(failAt: 'create' | 'warmup' | 'run' | 'never', lost?: Promise<{ reason: string; message: string }>): Ort {
  const real = ort;
  let gpuRuns = 0;
  const InferenceSession = {
    create: async (bytes: Uint8Array, opts: { executionProviders?: string[] }) => {
      const wantsGpu = opts.executionProviders?.includes('webgpu');
      if (wantsGpu && failAt === 'create') throw new Error('GPU adapter lost (simulated)');
      const s = await real.InferenceSession.create(bytes, { ...opts, executionProviders: ['wasm'] });
      if (!wantsGpu) return s;
      return new Proxy(s, {
        get(target, prop, recv) {
          if (prop === 'run') {
            return async (...args: unknown[]) => {
              gpuRuns++;
              if (failAt === 'warmup' || (failAt === 'run' && gpuRuns > warmUpRuns))
                throw new Error('GPU device lost during run (simulated)');
              return (target.run as (...a: unknown[]) => unknown)(...args);
            };
          }
          const v = Reflect.get(target, prop, recv);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    },
  };
  const env = lost
    ? Object.assign(Object.create(real.env), { wasm: real.env.wasm, webgpu: { device: Promise.resolve({ lost }) } })
    : real.env;
  return { ...real, InferenceSession, Tensor: real.Tensor, env } as unknown as Ort;
}

describe('backend choice and fallback', () => {
  if (missing) {
    it('pack exists', () => {
      throw new Error(missing);
    });
    return;
  }
  let pack: LoadedPack;
  let image: Buffer;
  let expected: number[];
  const nav = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  beforeAll(async () => {
    pack = await loadPackFromFiles(pickedPackFiles(dir));
    const golden = readGolden(dir);
    image = readFileSync(join(dir, golden.images[0].file));
    expected = golden.images[0].greedy.tokenIds;
  });
  afterEach(() => {
    if (nav) Object.defineProperty(globalThis, 'navigator', nav);
    else delete (globalThis as { navigator?: unknown }).navigator;
  });
  const fakeGpu = (adapter: boolean) =>
    Object.defineProperty(globalThis, 'navigator', {
      configurable: true,
      value: {
        hardwareConcurrency: 8,
        gpu: { requestAdapter: async () => (adapter ? { info: { vendor: 'test', architecture: 'stub' } } : null) },
      },
    });
  const opts = { strategy: 'greedy' as const, maxTokens: 20 };

  it('without an adapter, auto uses WASM and says why; webgpu explicitly is a named error', async () => {
    fakeGpu(false);
    const events: CaptionerEvent[] = [];
    const cap = await createCaptioner({ pack, ort: ort, decodeImage: decodeImageWithSharp, onEvent: (e) => events.push(e) });
    expect(cap.backend).toBe('wasm');
    expect(cap.backendReason).toMatch(/no WebGPU adapter/);
    // The first word on the backend (before it, only the opening's steps), and no fallback.
    expect(events.filter((e) => e.type !== 'opening')[0]).toMatchObject({ type: 'backend', backend: 'wasm' });
    await cap.dispose();
    await expect(createCaptioner({ pack, ort: ort, backend: 'webgpu' })).rejects.toBeInstanceOf(BackendUnavailableError);
  });

  it('falls back to WASM once when WebGPU fails at session creation', async () => {
    fakeGpu(true);
    const events: CaptionerEvent[] = [];
    const cap = await createCaptioner({
      pack,
      ort: flakyGpuOrt('create'),
      decodeImage: decodeImageWithSharp,
      onEvent: (e) => events.push(e),
    });
    expect(cap.backend).toBe('wasm');
    expect(cap.backendReason).toMatch(/WebGPU failed at session creation.*simulated/);
    expect(events.filter((e) => e.type === 'fallback')).toHaveLength(1);
    const r = await cap.caption(image, { ...opts, maxTokens: readGolden(dir).decoding.maxTokens });
    expect(r.tokenIds).toEqual(expected);
    await cap.dispose();
  });

  it('warms WebGPU up at creation; a failure there falls back to WASM before any caption', async () => {
    fakeGpu(true);
    const events: CaptionerEvent[] = [];
    const cap = await createCaptioner({
      pack,
      ort: flakyGpuOrt('warmup'),
      decodeImage: decodeImageWithSharp,
      onEvent: (e) => events.push(e),
    });
    expect(cap.backend).toBe('wasm');
    expect(cap.backendReason).toMatch(/WebGPU failed while warming up.*simulated/);
    expect(events.filter((e) => e.type === 'fallback')).toHaveLength(1);
    const r = await cap.caption(image, { ...opts, maxTokens: readGolden(dir).decoding.maxTokens });
    expect(r.tokenIds).toEqual(expected);
    await cap.dispose();
  });

  it('a lost WebGPU device switches the next caption to WASM, with the reason', async () => {
    fakeGpu(true);
    let loseDevice!: (info: { reason: string; message: string }) => void;
    const lost = new Promise<{ reason: string; message: string }>((r) => (loseDevice = r));
    const cap = await createCaptioner({ pack, ort: flakyGpuOrt('never', lost), decodeImage: decodeImageWithSharp });
    expect(cap.backend).toBe('webgpu');
    expect((await cap.caption(image, opts)).backend).toBe('webgpu');
    loseDevice({ reason: 'unknown', message: 'simulated driver reset' });
    await new Promise((r) => setTimeout(r, 0));
    const r = await cap.caption(image, { ...opts, maxTokens: readGolden(dir).decoding.maxTokens });
    expect(r.backend).toBe('wasm');
    expect(r.backendReason).toMatch(/WebGPU device lost \(unknown: simulated driver reset\)/);
    expect(r.tokenIds).toEqual(expected);
    await cap.dispose();
  });

  it('falls back to WASM once when WebGPU fails at run time, and the caption is still right', async () => {
    fakeGpu(true);
    const events: CaptionerEvent[] = [];
    const cap = await createCaptioner({ pack, ort: flakyGpuOrt('run'), decodeImage: decodeImageWithSharp, onEvent: (e) => events.push(e) });
    expect(cap.backend).toBe('webgpu');
    expect(cap.backendReason).toMatch(/WebGPU adapter found \(test stub\)/);
    const r = await cap.caption(image, { ...opts, maxTokens: readGolden(dir).decoding.maxTokens });
    expect(r.backend).toBe('wasm');
    expect(r.backendReason).toMatch(/WebGPU failed at run time.*simulated/);
    expect(r.tokenIds).toEqual(expected);
    // A pack with CLIP's text tower gets it on WASM too: the caption is still scored.
    expect(r.clipScore === undefined).toBe(pack.manifest.text === undefined);
    expect(events.filter((e) => e.type === 'fallback')).toHaveLength(1);
    // later calls stay on WASM without another fallback
    await cap.caption(image, opts);
    expect(events.filter((e) => e.type === 'fallback')).toHaveLength(1);
    await cap.dispose();
  });
});
