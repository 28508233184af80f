// The engine's frame (src/sandbox/engine-server.ts) as its offscreen document uses it, over a real MessageChannel:
// open, caption, errors by name, cancellation, pings. The link's watch for a dead frame is in
// test/offscreen/engine-link-client.test.ts.
import { describe, expect, it } from 'vitest';
import type { CaptionOptions, createCaptioner, EngineCaption, PackSource } from '../../src/captioner/captioner';
import { ImageDecodeError } from '../../src/shared/errors';
import { fakeCreate, fakePack, linkPair, type FakeCaptioner } from '../helpers/fake-engine-frame';

const decoding = { strategy: 'greedy' as const, beams: 1, maxTokens: 20 };

describe('engine frame server', () => {
  it('opens one captioner on the manifest, and captions with it', async () => {
    const engine: FakeCaptioner = { calls: [], answer: async (c) => `a caption of ${c.bytes} bytes` };
    const { client } = linkPair(fakeCreate(engine));
    const opened = await client.call('os-sb-open', { manifest: fakePack().manifest, backend: 'wasm', wasmPaths: 'x/' });
    expect(opened).toEqual({ packId: 'fake-pack', packName: 'Fake pack', backend: 'wasm', backendReason: 'fake' });
    const r = await client.call('os-sb-caption', { image: new Blob([new Uint8Array(5)]), decoding, urgent: false });
    expect(r).toEqual({ text: 'a caption of 5 bytes', backend: 'wasm', confidence: undefined, packId: 'fake-pack' });
    expect(engine.calls.map((c) => c.strategy)).toEqual(['greedy']);
    await expect(client.call('os-sb-open', { manifest: fakePack().manifest, backend: 'wasm', wasmPaths: 'x/' })).rejects.toThrow(
      /new frame/,
    );
    client.close();
  });

  it('the files arrive after the open, moved not copied, and the captioner gets each as soon as it is there', async () => {
    const asked: string[] = [];
    let got: Record<string, number> = {};
    const create = (async (opts: { pack: PackSource }) => {
      // Like createCaptioner: every file asked for at once, each awaited when needed.
      const files = (['vision', 'mapper'] as const).map((k) => (asked.push(k), opts.pack.file(k)));
      got = { vision: (await files[0]).byteLength };
      got.mapper = (await files[1]).byteLength;
      return { manifest: opts.pack.manifest, backend: 'wasm', backendReason: 'fake' };
    }) as unknown as typeof createCaptioner;
    const { client } = linkPair(create);
    const opening = client.call('os-sb-open', { manifest: fakePack().manifest, backend: 'wasm', wasmPaths: 'x/' });
    let open = false;
    void opening.then(() => (open = true));
    const vision = new Uint8Array(16);
    await client.call('os-sb-file', { key: 'vision', data: vision }, { transfer: [vision.buffer] });
    // Moved, not copied: the offscreen document keeps no second copy of the pack.
    expect(vision.byteLength).toBe(0);
    expect(asked).toEqual(['vision', 'mapper']);
    expect(open).toBe(false); // the mapper has not come yet
    const mapper = new Uint8Array(8);
    await client.call('os-sb-file', { key: 'mapper', data: mapper }, { transfer: [mapper.buffer] });
    await opening;
    expect(got).toEqual({ vision: 16, mapper: 8 });
    client.close();
  });

  it("a stored file's Blob is read in the frame, and the captioner gets its bytes", async () => {
    const got: Record<string, number[]> = {};
    const create = (async (opts: { pack: PackSource }) => {
      for (const k of ['vision', 'mapper'] as const) got[k] = [...(await opts.pack.file(k))];
      return { manifest: opts.pack.manifest, backend: 'wasm', backendReason: 'fake' };
    }) as unknown as typeof createCaptioner;
    const { client } = linkPair(create);
    const opening = client.call('os-sb-open', { manifest: fakePack().manifest, backend: 'wasm', wasmPaths: 'x/' });
    await client.call('os-sb-file', { key: 'vision', data: new Blob([new Uint8Array([1, 2, 3])]) });
    await client.call('os-sb-file', { key: 'mapper', data: new Blob([new Uint8Array([4]), new Uint8Array([5])]) });
    await opening;
    expect(got).toEqual({ vision: [1, 2, 3], mapper: [4, 5] });
    client.close();
  });

  it("an engine error crosses as its registered class; a caption before open fails with the captioner's error", async () => {
    const thrown = new ImageDecodeError('not an image');
    const engine: FakeCaptioner = {
      calls: [],
      answer: async () => {
        throw thrown;
      },
    };
    const { client } = linkPair(fakeCreate(engine));
    await expect(client.call('os-sb-caption', { image: new Blob([]), decoding, urgent: false })).rejects.toMatchObject({
      name: 'CaptionerDisposedError',
    });
    await client.call('os-sb-open', { manifest: fakePack().manifest, backend: 'wasm', wasmPaths: 'x/' });
    const err = await client.call('os-sb-caption', { image: new Blob([]), decoding, urgent: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as Error).message).toBe(thrown.message);
    client.close();
  });

  it("cancelling a caption answers at once and aborts the engine's signal", async () => {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const engine: FakeCaptioner = {
      calls: [],
      answer: (c) =>
        new Promise((_, reject) => {
          started();
          c.signal?.addEventListener('abort', () => reject(c.signal?.reason as Error));
        }),
    };
    const { client } = linkPair(fakeCreate(engine));
    await client.call('os-sb-open', { manifest: fakePack().manifest, backend: 'wasm', wasmPaths: 'x/' });
    const ac = new AbortController();
    const p = client.call('os-sb-caption', { image: new Blob([]), decoding, urgent: false }, { signal: ac.signal });
    await running;
    ac.abort();
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    await expect.poll(() => engine.calls[0].signal?.aborted).toBe(true);
    client.close();
  });

  it("passes the re-ranking weight through, and a text tower's clipScore and verdict back; packs without one send neither", async () => {
    const seen: CaptionOptions[] = [];
    const answer = (bytes: number): Partial<EngineCaption> =>
      bytes === 1
        ? { text: 'A guess.', clipScore: 0.25, uncertain: true }
        : bytes === 2
          ? { text: 'A circle.', clipScore: 1.5, uncertain: false }
          : { text: 'Plain.' };
    const create = (async (opts: { pack: { manifest: unknown } }) => ({
      manifest: opts.pack.manifest,
      backend: 'wasm',
      backendReason: 'fake',
      async caption(image: Blob, o: CaptionOptions) {
        seen.push(o);
        return { backend: 'wasm', confidence: -0.5, ...answer(image.size) };
      },
      async captionBatch(images: Blob[], o: CaptionOptions) {
        seen.push(o);
        return images.map((im) => ({ ok: true, value: { backend: 'wasm', confidence: -0.5, ...answer(im.size) } }));
      },
    })) as unknown as typeof createCaptioner;
    const { client } = linkPair(create);
    await client.call('os-sb-open', { manifest: fakePack().manifest, backend: 'wasm', wasmPaths: 'x/' });
    const beam = { strategy: 'beam' as const, beams: 5, maxTokens: 20, rerankWeight: 2 };
    const blob = (n: number) => new Blob([new Uint8Array(n)]);
    expect(await client.call('os-sb-caption', { image: blob(1), decoding: beam, urgent: true })).toEqual({
      text: 'A guess.',
      confidence: -0.5,
      backend: 'wasm',
      packId: 'fake-pack',
      clipScore: 0.25,
      uncertain: true,
    });
    const plain = await client.call('os-sb-caption', { image: blob(3), decoding, urgent: false });
    expect(Object.keys(plain).sort()).toEqual(['backend', 'confidence', 'packId', 'text']);
    const batch = await client.call('os-sb-caption-batch', { images: [blob(2), blob(3)], decoding: { ...decoding, rerankWeight: 0 } });
    expect(batch).toEqual([
      { ok: true, value: { text: 'A circle.', confidence: -0.5, backend: 'wasm', packId: 'fake-pack', clipScore: 1.5, uncertain: false } },
      { ok: true, value: { text: 'Plain.', confidence: -0.5, backend: 'wasm', packId: 'fake-pack' } },
    ]);
    expect(seen.map((o) => o.rerankWeight)).toEqual([2, undefined, 0]);
    expect(seen[0]).toMatchObject({ strategy: 'beam', beams: 5, maxTokens: 20, urgent: true });
    client.close();
  });
});
