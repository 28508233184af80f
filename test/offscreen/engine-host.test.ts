// The engine host (src/offscreen/engine-host.ts) when its engine's frame dies: the caption is asked once more of a new
// engine, an image that kills two engines fails with EngineCrashedError, and an engine that keeps dying is not
// started again for every image. The engines are fakes; test/e2e/faults.test.ts crashes the real frame.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OffscreenEngineHost } from '../../src/offscreen/engine-host';
import type { Engine, EngineEvents } from '../../src/offscreen/sandbox-engine';
import type { PackLocation } from '../../src/captioner/index';
import { EngineCrashedError, ModelChangedError, NoPackError } from '../../src/shared/errors';
import { LIMITS } from '../../src/shared/limits';

const decoding = { strategy: 'greedy' as const, beams: 1, maxTokens: 20 };
const image = () => Promise.resolve(new Blob([new Uint8Array(4)]));

/** An opener whose engines crash on the images `kills` names (by their first byte), as a frame whose process died. */
function opener(kills: (blob: Blob) => Promise<boolean>) {
  const opened: Engine[] = [];
  const open = async (_from: unknown, _backend: unknown, _progress: unknown, events: EngineEvents): Promise<Engine> => {
    let crashed = false;
    const engine: Engine = {
      packId: 'p',
      packName: 'P',
      backend: 'wasm',
      backendReason: '',
      get crashed() {
        return crashed;
      },
      async caption(blob) {
        if (crashed) throw new EngineCrashedError('dead already');
        if (await kills(blob)) {
          crashed = true;
          const err = new EngineCrashedError('the frame stopped answering');
          events.onCrash(err);
          throw err;
        }
        return { text: `caption ${opened.indexOf(engine)}`, packId: 'p', backend: 'wasm' };
      },
      async captionBatch(blobs) {
        if (crashed) throw new EngineCrashedError('dead already');
        for (const blob of blobs)
          if (await kills(blob)) {
            crashed = true;
            const err = new EngineCrashedError('the frame stopped answering');
            events.onCrash(err);
            throw err;
          }
        return blobs.map(() => ({ ok: true as const, value: { text: `batch ${opened.indexOf(engine)}`, packId: 'p', backend: 'wasm' } }));
      },
      loseDevice: async () => ({ destroyed: false }),
      dispose: async () => {},
    };
    opened.push(engine);
    return engine;
  };
  return { open, opened };
}

describe('engine host: a crashed engine', () => {
  beforeEach(() => {
    (globalThis as { chrome?: unknown }).chrome = { runtime: { sendMessage: async () => undefined } };
  });
  afterEach(() => {
    delete (globalThis as { chrome?: unknown }).chrome;
  });

  it('is replaced, and the caption it was making is asked once more of the new one', async () => {
    let first = true;
    const { open, opened } = opener(async () => {
      const kill = first;
      first = false;
      return kill;
    });
    const host = new OffscreenEngineHost(() => 0, undefined, open);
    const r = await host.caption('https://packs.test/p/', 'wasm', image(), decoding, new AbortController().signal);
    expect(r.text).toBe('caption 1');
    expect(opened).toHaveLength(2);
    expect(host.status.state).toBe('ready');
    // The next image goes to the new engine: no third one.
    await host.caption('https://packs.test/p/', 'wasm', image(), decoding, new AbortController().signal);
    expect(opened).toHaveLength(2);
  });

  it('an image that kills two engines fails with EngineCrashedError; the next image is captioned', async () => {
    const poison = new Blob([new Uint8Array([7])]);
    const { open, opened } = opener(async (blob) => blob === poison);
    const host = new OffscreenEngineHost(() => 0, undefined, open);
    const signal = new AbortController().signal;
    await expect(host.caption('https://packs.test/p/', 'wasm', Promise.resolve(poison), decoding, signal)).rejects.toBeInstanceOf(
      EngineCrashedError,
    );
    expect(opened).toHaveLength(2);
    expect((await host.caption('https://packs.test/p/', 'wasm', image(), decoding, signal)).text).toBe('caption 2');
  });

  it('a batch the engine died under: each image is asked again alone, and only the one that kills it fails', async () => {
    const poison = new Blob([new Uint8Array([7])]);
    const { open, opened } = opener(async (blob) => blob === poison);
    const host = new OffscreenEngineHost(() => 0, undefined, open);
    const images = [image(), Promise.resolve(poison), image()];
    const out = await host.captionBatch('https://packs.test/p/', 'wasm', images, decoding, new AbortController().signal);
    expect(out.map((r) => (r.ok ? r.value.text : (r.error as Error).name))).toEqual(['caption 1', 'EngineCrashedError', 'caption 2']);
    // The batch's engine, the one the poison image killed alone, and the one that went on: two crashes, not four.
    expect(opened).toHaveLength(3);
  });

  it(`after ${LIMITS.sandbox.crashes} crashes in the window, no engine is started again: the status says why`, async () => {
    const { open, opened } = opener(async () => true);
    const host = new OffscreenEngineHost(() => 0, undefined, open);
    const signal = new AbortController().signal;
    const errors: unknown[] = [];
    for (let i = 0; i < 4; i += 1)
      errors.push(await host.caption('https://packs.test/p/', 'wasm', image(), decoding, signal).catch((e: unknown) => e));
    expect(errors.every((e) => e instanceof EngineCrashedError)).toBe(true);
    expect(opened).toHaveLength(LIMITS.sandbox.crashes);
    expect(host.status.state).toBe('error');
    expect(host.status.error?.message).toMatch(/stopped 3 times/);
  });
});

describe('engine host: the model changed while one was opening', () => {
  beforeEach(() => {
    (globalThis as { chrome?: unknown }).chrome = { runtime: { sendMessage: async () => undefined } };
  });
  afterEach(() => {
    delete (globalThis as { chrome?: unknown }).chrome;
  });

  /** Engines that take `ms` to open, named by their pack's URL; counts how many are alive at once. */
  function slowOpener(ms: number) {
    const log: string[] = [];
    let alive = 0;
    let mostAlive = 0;
    const open = async (from: PackLocation): Promise<Engine> => {
      const url = from.kind === 'url' ? from.url : String(from.kind);
      alive += 1;
      mostAlive = Math.max(mostAlive, alive);
      log.push(`open ${url}`);
      await new Promise((r) => setTimeout(r, ms));
      let disposed = false;
      return {
        packId: url,
        packName: url,
        backend: 'wasm',
        backendReason: '',
        crashed: false,
        caption: async () => ({ text: `from ${url}`, packId: url, backend: 'wasm' }),
        captionBatch: async (blobs) =>
          blobs.map(() => ({ ok: true as const, value: { text: `from ${url}`, packId: url, backend: 'wasm' } })),
        loseDevice: async () => ({ destroyed: false }),
        dispose: async () => {
          if (disposed) return;
          disposed = true;
          alive -= 1;
          log.push(`dispose ${url}`);
        },
      };
    };
    return { open, log, mostAlive: () => mostAlive };
  }

  it('the newest pack wins, the superseded request fails with ModelChangedError, and one engine lives at a time', async () => {
    const { open, log, mostAlive } = slowOpener(30);
    const host = new OffscreenEngineHost(() => 0, undefined, open);
    const first = host.load('https://packs.test/a/', 'wasm');
    const caption = host.caption('https://packs.test/b/', 'wasm', image(), decoding, new AbortController().signal);
    await expect(first).rejects.toBeInstanceOf(ModelChangedError);
    expect((await caption).text).toBe('from https://packs.test/b/');
    expect(host.status).toMatchObject({ state: 'ready', packId: 'https://packs.test/b/' });
    // A was not opened again after B (the two used to reopen each other for ever), and B's frame started after A's
    // was gone.
    expect(log).toEqual(['open https://packs.test/a/', 'dispose https://packs.test/a/', 'open https://packs.test/b/']);
    expect(mostAlive()).toBe(1);
  }, 5_000);

  it('the status names the model asked for at once, not the one before it (which may have the same name)', async () => {
    const { open } = slowOpener(30);
    let resolved = () => {};
    const resolving = new Promise<void>((r) => (resolved = r));
    const host = new OffscreenEngineHost(
      () => 0,
      async (url) => {
        if (url.includes('/b/')) await resolving;
        return { kind: 'url', url };
      },
      open,
    );
    await host.load('https://packs.test/a/', 'wasm');
    expect(host.status).toMatchObject({ state: 'ready', packUrl: 'https://packs.test/a/' });
    const loading = host.load('https://packs.test/b/', 'wasm');
    // Before the pack is even found: what a load's reply reports.
    expect(host.status).toMatchObject({ state: 'loading', packUrl: 'https://packs.test/b/', packName: '', backend: null });
    resolved();
    await loading;
    expect(host.status).toMatchObject({ state: 'ready', packUrl: 'https://packs.test/b/', packName: 'https://packs.test/b/' });
  });

  it('a model that cannot be found leaves the status idle, not loading for ever', async () => {
    const host = new OffscreenEngineHost(
      () => 0,
      async () => {
        throw new NoPackError();
      },
      slowOpener(1).open,
    );
    await expect(host.load('folder:gone', 'wasm')).rejects.toBeInstanceOf(NoPackError);
    expect(host.status).toMatchObject({ state: 'idle', packUrl: 'folder:gone' });
  });
});
