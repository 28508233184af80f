// The worker forwards the set-up page's choice about CLIP's text tower (`text`) with the install request to the
// offscreen document, and says nothing when the page said nothing (the installer then keeps the job's choice).
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { beforeEach, expect, it } from 'vitest';
import { dispatch, makeChrome } from '../helpers/chrome-fake';
import { COCO, setupPage } from '../helpers/setup-page';

let calls: { type: string; [k: string]: unknown }[];
let fake: ReturnType<typeof makeChrome>;

beforeEach(async () => {
  calls = [];
  fake = makeChrome({
    handle: async (msg) => {
      calls.push(msg);
      return { ok: true, value: { catalogue: [COCO], states: [] } };
    },
  });
  (globalThis as unknown as { chrome: unknown }).chrome = fake;
  globalThis.indexedDB = new IDBFactory();
  await fake.storage.local.set({ settings: {} });
});

it('ui-bg-model-install carries `text` through to bg-os-model-install, and leaves it out when absent', async () => {
  const { registerRouter } = await import('../../src/background/router');
  registerRouter();
  const send = (msg: unknown) => dispatch(fake.runtime.onMessage.listeners, msg, setupPage);
  for (const text of [true, false, undefined]) {
    calls = [];
    const reply = await send({ type: 'ui-bg-model-install', modelId: COCO.id, ...(text === undefined ? {} : { text }) });
    expect(reply).toMatchObject({ ok: true });
    expect(calls.filter((c) => c.type === 'bg-os-model-install')).toEqual([
      { type: 'bg-os-model-install', modelId: COCO.id, ...(text === undefined ? {} : { text }) },
    ]);
  }
});
