/**
 * The two ends of the engine link in one Node process: a real EngineServer (src/sandbox/) serving a fake captioner on
 * one port of a MessageChannel, and the offscreen document's EngineLinkClient on the other, with a heartbeat as the
 * frame's worker gives one (src/sandbox/heartbeat.ts) unless `heartbeat` is false. `crash()` makes the frame go
 * silent, as a crashed process does: no reply, no pong, no beat, ever again. `busy(true)` leaves its pings
 * unanswered, as a thread inside ORT does, while replies and beats go on.
 */
import type { createCaptioner } from '../../src/captioner/captioner';
import type { LoadedPack } from '../../src/captioner/pack-loader';
import { EngineLinkClient, type LinkEvents } from '../../src/offscreen/engine-link-client';
import { EngineServer } from '../../src/sandbox/engine-server';

interface FakeCaptionCall {
  bytes: number;
  strategy?: string;
  signal?: AbortSignal;
}

export interface FakeCaptioner {
  /** What each caption returns, or how it fails; awaited, so it can wait. */
  answer: (call: FakeCaptionCall) => Promise<string>;
  calls: FakeCaptionCall[];
}

export function fakeCreate(engine: FakeCaptioner, openMs = 0): typeof createCaptioner {
  return (async (opts: { pack: LoadedPack }) => {
    await new Promise((r) => setTimeout(r, openMs));
    return {
      manifest: opts.pack.manifest,
      backend: 'wasm',
      backendReason: 'fake',
      async caption(image: Blob, o: { strategy?: string; signal?: AbortSignal }) {
        const call = { bytes: image.size, strategy: o.strategy, signal: o.signal };
        engine.calls.push(call);
        return { text: await engine.answer(call), backend: 'wasm', confidence: undefined };
      },
    };
  }) as unknown as typeof createCaptioner;
}

export const TEST_LIMITS = {
  pingEveryMs: 10,
  silentWhileOpeningMs: 400,
  silentMs: 120,
  heartbeatSilentMs: 60,
  heartbeatStartMs: 1000,
  connectMs: 1000,
  crashes: 3,
  crashWindowMs: 60_000,
};

export function linkPair(
  create: typeof createCaptioner,
  events: Partial<LinkEvents> = {},
  opts: { heartbeat?: boolean; limits?: Partial<typeof TEST_LIMITS>; now?: () => number } = {},
) {
  const channel = new MessageChannel();
  const server = new EngineServer(channel.port2, create);
  server.start();
  let busy = false;
  const serve = channel.port2.onmessage!;
  channel.port2.onmessage = (e: MessageEvent) => {
    if (!(busy && (e.data as { type: string }).type === 'os-sb-ping')) serve.call(channel.port2, e);
  };
  const beats = new MessageChannel();
  if (opts.heartbeat !== false) {
    beats.port2.onmessage = () => beats.port2.postMessage(0);
    server.offerHeartbeat(beats.port1);
  }
  const dead: Error[] = [];
  const client = new EngineLinkClient(
    channel.port1,
    { onFallback: events.onFallback ?? (() => {}), onDead: (e) => (dead.push(e), events.onDead?.(e)) },
    { ...TEST_LIMITS, ...opts.limits },
    opts.now,
  );
  return {
    client,
    dead,
    busy: (on: boolean) => (busy = on),
    crash: () => {
      channel.port2.onmessage = null;
      channel.port2.close();
      beats.port2.onmessage = null;
      beats.port2.close();
    },
  };
}

export function fakePack(): LoadedPack {
  return {
    manifest: { id: 'fake-pack', name: 'Fake pack' } as LoadedPack['manifest'],
    files: { vision: new Uint8Array(16), mapper: new Uint8Array(8) } as unknown as LoadedPack['files'],
    source: 'files',
  };
}
