// The offscreen document's end of the engine link (src/offscreen/engine-link-client.ts): telling a busy frame from a
// dead one. The frame is a real EngineServer over a MessageChannel (test/helpers/fake-engine-frame.ts); a crash is a
// frame that goes silent. The limits are the test's own (TEST_LIMITS: 120 ms silent, 400 ms while opening).
import { describe, expect, it } from 'vitest';
import { EngineCrashedError } from '../../src/shared/errors';
import { EngineLinkClient } from '../../src/offscreen/engine-link-client';
import { TEST_LIMITS, fakeCreate, fakePack, linkPair, type FakeCaptioner } from '../helpers/fake-engine-frame';

const decoding = { strategy: 'greedy' as const, beams: 1, maxTokens: 20 };

describe('engine link client', () => {
  it('a frame busy for longer than the silence limit, but answering pings, is not taken for dead', async () => {
    const engine: FakeCaptioner = { calls: [], answer: () => new Promise((r) => setTimeout(() => r('slow but fine'), 500)) };
    const { client, dead } = linkPair(fakeCreate(engine));
    await client.call('os-sb-open', { manifest: fakePack().manifest, backend: 'wasm', wasmPaths: 'x/' });
    expect((await client.call('os-sb-caption', { image: new Blob([]), decoding, urgent: false })).text).toBe('slow but fine');
    expect(dead).toEqual([]);
    client.close();
  });

  it('a crashed frame fails the call out with EngineCrashedError, once, and every later call at once', async () => {
    const engine: FakeCaptioner = { calls: [], answer: () => new Promise(() => {}) };
    // No heartbeat (a browser that refuses the frame its worker): the frame's own limit is the verdict.
    const { client, dead, crash } = linkPair(fakeCreate(engine), {}, { heartbeat: false });
    await client.call('os-sb-open', { manifest: fakePack().manifest, backend: 'wasm', wasmPaths: 'x/' });
    const t0 = performance.now();
    const p = client.call('os-sb-caption', { image: new Blob([]), decoding, urgent: false });
    crash();
    await expect(p).rejects.toBeInstanceOf(EngineCrashedError);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(120);
    expect(dead).toHaveLength(1);
    await expect(client.call('os-sb-caption', { image: new Blob([]), decoding, urgent: false })).rejects.toBeInstanceOf(EngineCrashedError);
    expect(dead).toHaveLength(1);
  });

  it("with its heartbeat, a crash is noticed once the heartbeat's limit has passed, long before the frame's own", async () => {
    const engine: FakeCaptioner = { calls: [], answer: () => new Promise(() => {}) };
    const { client, dead, crash } = linkPair(fakeCreate(engine), {}, { limits: { silentMs: 60_000, silentWhileOpeningMs: 60_000 } });
    await client.call('os-sb-open', { manifest: fakePack().manifest, backend: 'wasm', wasmPaths: 'x/' });
    const t0 = performance.now();
    const p = client.call('os-sb-caption', { image: new Blob([]), decoding, urgent: false });
    crash();
    await expect(p).rejects.toThrow(/heartbeat went silent/);
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(TEST_LIMITS.heartbeatSilentMs);
    expect(ms).toBeLessThan(30_000);
    expect(dead).toHaveLength(1);
  });

  it('a frame whose thread is busy (pings unanswered) while its heartbeat beats is not taken for dead', async () => {
    const engine: FakeCaptioner = { calls: [], answer: () => new Promise((r) => setTimeout(() => r('busy but alive'), 400)) };
    const { client, dead, busy } = linkPair(fakeCreate(engine), {}, { limits: { silentMs: 5_000 } });
    await client.call('os-sb-open', { manifest: fakePack().manifest, backend: 'wasm', wasmPaths: 'x/' });
    busy(true);
    // 400 ms: several times the heartbeat's limit (60 ms); only its beats say the process lives.
    expect((await client.call('os-sb-caption', { image: new Blob([]), decoding, urgent: false })).text).toBe('busy but alive');
    expect(dead).toEqual([]);
    client.close();
  });

  it("a check that comes late (this document's own thread was busy) judges nothing, and asks again", async () => {
    const engine: FakeCaptioner = { calls: [], answer: () => new Promise(() => {}) };
    let skew = 0;
    const limits = { pingEveryMs: 20, heartbeatSilentMs: 300, silentMs: 60_000 };
    const { client, dead, crash } = linkPair(fakeCreate(engine), {}, { limits, now: () => performance.now() + skew });
    await client.call('os-sb-open', { manifest: fakePack().manifest, backend: 'wasm', wasmPaths: 'x/' });
    const p = client.call('os-sb-caption', { image: new Blob([]), decoding, urgent: false });
    p.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    crash();
    await new Promise((r) => setTimeout(r, 50));
    // The clock jumps 10 s between two checks: the beat asked before the jump looks 10 s unanswered, but this
    // document's thread, not the frame, was what stood still.
    skew = 10_000;
    await new Promise((r) => setTimeout(r, 100));
    expect(dead).toEqual([]);
    // The frame is dead all the same: the beat asked after the jump goes unanswered past the limit.
    await expect(p).rejects.toThrow(/heartbeat went silent/);
    expect(dead).toHaveLength(1);
  });

  it('while a model opens (its thread blocked for seconds), the longer limit applies; a caption gets the short one', async () => {
    // A frame that answers no ping at all, and replies to its calls late: like ORT creating a session.
    const channel = new MessageChannel();
    channel.port2.onmessage = (e: MessageEvent) => {
      const msg = e.data as { type: string; callId: number };
      if (msg.type === 'os-sb-ping') return;
      const value = msg.type === 'os-sb-open' ? { packId: 'p', packName: 'P', backend: 'wasm', backendReason: '' } : { text: 'late' };
      setTimeout(() => channel.port2.postMessage({ type: 'sb-os-reply', callId: msg.callId, reply: { ok: true, value } }), 250);
    };
    const dead: Error[] = [];
    const client = new EngineLinkClient(channel.port1, { onFallback: () => {}, onDead: (e) => dead.push(e) }, TEST_LIMITS);
    expect(await client.call('os-sb-open', { manifest: fakePack().manifest, backend: 'wasm', wasmPaths: 'x/' })).toMatchObject({
      packId: 'p',
    });
    await expect(client.call('os-sb-caption', { image: new Blob([]), decoding, urgent: false })).rejects.toBeInstanceOf(EngineCrashedError);
    expect(dead).toHaveLength(1);
    channel.port2.close();
  });

  it('a frame that says it is creating a session during a caption (the text tower) gets the longer limit until it is done', async () => {
    // Silent to pings like the frame above; it announces the session before blocking, and its end after.
    const channel = new MessageChannel();
    channel.port2.onmessage = (e: MessageEvent) => {
      const msg = e.data as { type: string; callId: number };
      if (msg.type !== 'os-sb-caption') return;
      channel.port2.postMessage({ type: 'sb-os-opening', opening: true });
      setTimeout(() => {
        channel.port2.postMessage({ type: 'sb-os-opening', opening: false });
        channel.port2.postMessage({ type: 'sb-os-reply', callId: msg.callId, reply: { ok: true, value: { text: 'checked' } } });
      }, 250);
    };
    const dead: Error[] = [];
    const client = new EngineLinkClient(channel.port1, { onFallback: () => {}, onDead: (e) => dead.push(e) }, TEST_LIMITS);
    expect((await client.call('os-sb-caption', { image: new Blob([]), decoding, urgent: false })).text).toBe('checked');
    expect(dead).toEqual([]);
    // Done creating: the next silent caption gets the short limit again.
    await expect(
      new Promise((resolve, reject) => {
        channel.port2.onmessage = () => {};
        client.call('os-sb-caption', { image: new Blob([]), decoding, urgent: false }).then(resolve, reject);
      }),
    ).rejects.toBeInstanceOf(EngineCrashedError);
    channel.port2.close();
  });

  it('a fallback event from the frame reaches the owner', async () => {
    const seen: string[] = [];
    const engine: FakeCaptioner = { calls: [], answer: async () => 'ok' };
    const { client } = linkPair(fakeCreate(engine), { onFallback: (b, r) => seen.push(`${b}: ${r}`) });
    const channel = (client as unknown as { port: MessagePort }).port;
    channel.onmessage?.(new MessageEvent('message', { data: { type: 'sb-os-fallback', backend: 'wasm', reason: 'device lost' } }));
    expect(seen).toEqual(['wasm: device lost']);
    client.close();
  });
});
