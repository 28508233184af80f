// Message validation, driven by the protocol module: for EVERY request type, a well-formed request passes, and
// requests from the wrong sender or with malformed payloads get a named error reply and change nothing.
// A new type added to src/shared/messages.ts without a case here fails the first test (and the type check).
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/shared/limits';
import { KEYS, SENDER_OF, VALIDATORS, makeListener, senderOf, type MessageType } from '../../src/shared/messages';
import { dispatch, event, makeChrome } from '../helpers/chrome-fake';

const PACK = 'http://127.0.0.1:9/packs/toy/';
const EXT = 'chrome-extension://fake-ext-id/';

const senders = {
  contentScript: { id: 'fake-ext-id', tab: { id: 3, url: 'http://example.test/' }, frameId: 0, url: 'http://example.test/page' },
  popup: { id: 'fake-ext-id', url: `${EXT}src/popup/index.html` },
  optionsInTab: { id: 'fake-ext-id', tab: { id: 4, url: `${EXT}src/options/index.html` }, frameId: 0, url: `${EXT}src/options/index.html` },
  worker: { id: 'fake-ext-id', url: `${EXT}service-worker-loader.js` },
  webPage: { url: 'http://evil.test/', tab: { id: 3 }, frameId: 0, origin: 'http://evil.test' },
  otherExtension: { id: 'other-ext-id', url: 'chrome-extension://other-ext-id/page.html' },
  otherExtensionInTab: { id: 'other-ext-id', tab: { id: 5 }, frameId: 0, url: 'http://example.test/page' },
} as const;
type SenderName = keyof typeof senders;

/** Who may send, and a good request, for each type. `optional` keys may be left out. */
const CASES: { [K in MessageType]: { ok: SenderName[]; valid: Record<string, unknown>; optional?: string[] } } = {
  'cs-bg-caption': {
    ok: ['contentScript'],
    valid: { requestId: 'r1', source: { kind: 'url', url: 'http://example.test/a.png' }, priority: 1 },
  },
  'cs-bg-cancel': { ok: ['contentScript'], valid: { requestIds: ['r1', 'r2'] } },
  'cs-bg-label-count': { ok: ['contentScript'], valid: { count: 3 } },
  'cs-bg-status': { ok: ['contentScript'], valid: {} },
  'ui-bg-status': { ok: ['popup', 'optionsInTab'], valid: {} },
  'ui-bg-tab-info': { ok: ['popup', 'optionsInTab'], valid: { tabId: 3 } },
  'ui-bg-caption': {
    ok: ['popup', 'optionsInTab'],
    valid: {
      requestId: 'p1',
      source: { kind: 'bytes', dataUrl: 'data:image/png;base64,iVBORw0KGgo=' },
      packUrl: PACK,
      decoding: { strategy: 'beam' },
    },
    optional: ['packUrl', 'decoding'],
  },
  'ui-bg-load-pack': { ok: ['popup', 'optionsInTab'], valid: { packUrl: PACK } },
  'ui-bg-clear-cache': { ok: ['popup', 'optionsInTab'], valid: { packs: false } },
  'bg-os-caption': {
    ok: ['worker', 'popup'],
    valid: {
      requestId: 'r1',
      key: `${PACK}|greedy-30|http://example.test/a.png`,
      source: { kind: 'url', url: 'http://example.test/a.png' },
      priority: 1,
      packUrl: PACK,
      decoding: { strategy: 'greedy', beams: 1, maxTokens: 30 },
      backend: 'auto',
    },
  },
  'bg-os-cancel': { ok: ['worker', 'popup'], valid: { requestIds: ['r1'] } },
  'bg-os-status': { ok: ['worker', 'popup'], valid: {} },
  'bg-os-load': { ok: ['worker', 'popup'], valid: { packUrl: PACK, backend: 'wasm' } },
  'bg-os-clear': { ok: ['worker', 'popup'], valid: { packs: false } },
  'bg-cs-describe': { ok: ['worker', 'popup'], valid: { via: 'menu', srcUrl: 'http://example.test/a.png' }, optional: ['srcUrl'] },
  'ui-bg-models': { ok: ['popup', 'optionsInTab'], valid: {} },
  'ui-bg-model-install': {
    ok: ['popup', 'optionsInTab'],
    valid: { modelId: 'clipcap-coco-transformer', picked: { clipcap: 'picked-1' }, text: true },
    optional: ['picked', 'text'],
  },
  'ui-bg-model-pause': { ok: ['popup', 'optionsInTab'], valid: { modelId: 'clipcap-coco' } },
  'ui-bg-model-resume': { ok: ['popup', 'optionsInTab'], valid: { modelId: 'clipcap-coco' } },
  'ui-bg-model-cancel': { ok: ['popup', 'optionsInTab'], valid: { modelId: 'clipcap-coco' } },
  'ui-bg-model-remove': { ok: ['popup', 'optionsInTab'], valid: { modelId: 'clipcap-coco' } },
  'bg-os-models': { ok: ['worker', 'popup'], valid: {} },
  'bg-os-model-install': {
    ok: ['worker', 'popup'],
    valid: { modelId: 'toy', picked: { clipcap: 'picked-1' }, text: false },
    optional: ['picked', 'text'],
  },
  'bg-os-model-pause': { ok: ['worker', 'popup'], valid: { modelId: 'toy' } },
  'bg-os-model-resume': { ok: ['worker', 'popup'], valid: { modelId: 'toy' } },
  'bg-os-model-cancel': { ok: ['worker', 'popup'], valid: { modelId: 'toy' } },
  'bg-os-model-remove': { ok: ['worker', 'popup'], valid: { modelId: 'toy' } },
};
const TYPES = Object.keys(CASES) as MessageType[];

const HUGE = 'x'.repeat(LIMITS.message.dataUrlChars + 1);
const WRONG_VALUES: unknown[] = [null, 42, -1, 1.5, NaN, 'x', '', true, {}, [], ['x'], { __proto__: { polluted: 1 } }];

/** Malformed versions of a good request: each field missing, of a wrong type, too big; extra and prototype keys. */
function malformed(type: MessageType): { what: string; msg: Record<string, unknown> }[] {
  const { valid, optional = [] } = CASES[type];
  const base = { type, ...valid };
  const out: { what: string; msg: Record<string, unknown> }[] = [
    { what: 'an extra field', msg: { ...base, extra: 'x' } },
    { what: 'a __proto__ key', msg: JSON.parse(JSON.stringify({ ...base }).replace(/^\{/, '{"__proto__":{"polluted":true},')) },
    { what: 'a constructor key', msg: { ...base, constructor: { prototype: { polluted: true } } } },
    { what: 'a prototype key', msg: { ...base, prototype: { polluted: true } } },
  ];
  for (const [k, v] of Object.entries(valid)) {
    if (!optional.includes(k)) {
      const rest: Record<string, unknown> = { ...base };
      delete rest[k];
      out.push({ what: `no ${k}`, msg: rest });
    }
    for (const w of WRONG_VALUES) {
      const sameKind =
        typeof w === typeof v &&
        Array.isArray(w) === Array.isArray(v) &&
        (typeof v !== 'number' || Number.isInteger(w)) &&
        (w === null) === (v === null);
      if (sameKind && !(typeof w === 'string' && w === '') && !(typeof w === 'number' && w < 0)) continue;
      out.push({ what: `${k} = ${JSON.stringify(w)}`, msg: { ...base, [k]: w } });
    }
    if (typeof v === 'string') out.push({ what: `${k} huge`, msg: { ...base, [k]: HUGE } });
    if (Array.isArray(v)) {
      out.push({ what: `${k} with a number inside`, msg: { ...base, [k]: [...v, 5] } });
      out.push({ what: `${k} too long`, msg: { ...base, [k]: new Array(LIMITS.message.ids + 1).fill('r') } });
    }
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      out.push({ what: `${k} with an extra key`, msg: { ...base, [k]: { ...v, extra: 1 } } });
      out.push({
        what: `${k} with a __proto__ key`,
        msg: { ...base, [k]: JSON.parse(JSON.stringify(v).replace(/^\{/, '{"__proto__":{"polluted":true},')) },
      });
      for (const [kk, vv] of Object.entries(v)) {
        out.push({ what: `${k}.${kk} = 42`, msg: { ...base, [k]: { ...v, [kk]: typeof vv === 'number' ? 'x' : 42 } } });
        if (typeof vv === 'string') out.push({ what: `${k}.${kk} huge`, msg: { ...base, [k]: { ...v, [kk]: HUGE } } });
      }
    }
  }
  // Field-specific values of the right type that are still wrong.
  const special: Record<string, unknown[]> = {
    source: [
      { kind: 'url', url: 'javascript:alert(1)' },
      { kind: 'url', url: 'file:///etc/passwd' },
      { kind: 'url', url: 'chrome-extension://other/x.png' },
      { kind: 'url', url: 'data:text/html,<script>alert(1)</script>' },
      { kind: 'bytes', dataUrl: 'http://example.test/a.png' },
      { kind: 'blob', url: 'blob:http://example.test/1' },
      { kind: 'url', url: 'http://example.test/a.png', dataUrl: 'data:,' },
    ],
    packUrl: ['javascript:alert(1)', 'file:///packs/', 'relative/packs/', 'model:', 'model:../x', 'folder:Has Space', 'model:x/y'],
    modelId: ['Bad Id', '../x', '-x', 'a'.repeat(65), 'model:toy'],
    picked: [
      {},
      { 'Bad Role': 'k' },
      Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`r${i}`, 'k'])),
      { clipcap: '' },
      { clipcap: ['k'] },
    ],
    priority: [1e9, -5],
    count: [-1, 2.5],
    tabId: [-1, 1.5],
    decoding: [{ strategy: 'evil' }, { beams: 1000 }, { maxTokens: 0 }],
    backend: ['cuda'],
    via: ['page'],
  };
  for (const k of Object.keys(valid))
    for (const w of special[k] ?? []) out.push({ what: `${k} = ${JSON.stringify(w).slice(0, 60)}`, msg: { ...base, [k]: w } });
  return out;
}

// --- the receivers: the real router (service worker) and the real offscreen listener, over one fake chrome ---

let fake: ReturnType<typeof makeChrome>;
let offscreenCalls: { type: string }[];
let osListeners: ReturnType<typeof event>['listeners'];
let bgListeners: ReturnType<typeof event>['listeners'];
let csCalls: unknown[];
let csListener: ReturnType<typeof makeListener>;

beforeAll(async () => {
  offscreenCalls = [];
  fake = makeChrome({
    handle: async (msg) => {
      offscreenCalls.push(msg);
      return { ok: true, value: null };
    },
  });
  (globalThis as unknown as { chrome: unknown }).chrome = fake;
  (globalThis as unknown as { __TEST__: boolean }).__TEST__ = false;
  await fake.storage.local.set({ settings: { packSources: [{ url: PACK, name: 'Toy', builtIn: false }] } });
  globalThis.indexedDB = new IDBFactory();
  // The offscreen document's listener, registered on its own event so the two contexts stay apart.
  const own = fake.runtime.onMessage;
  fake.runtime.onMessage = event();
  await import('../../src/offscreen/index');
  osListeners = fake.runtime.onMessage.listeners;
  fake.runtime.onMessage = own;
  const { registerRouter } = await import('../../src/background/router');
  registerRouter();
  bgListeners = fake.runtime.onMessage.listeners;
  // The content script's describe listener checks senders with the protocol's table too.
  csCalls = [];
  csListener = makeListener(['bg-cs-'], { 'bg-cs-describe': (m) => (csCalls.push(m), { opened: true }) }, senderOf);
});

function receiverOf(type: MessageType) {
  if (type.startsWith('bg-os-')) return osListeners;
  if (type.startsWith('bg-cs-')) return [csListener as (...a: unknown[]) => unknown];
  return bgListeners;
}

async function stateNow() {
  const cache = await new Promise<number>((resolve) => {
    const r = indexedDB.open('alt-text-captions');
    r.onsuccess = () => {
      const db = r.result;
      if (!db.objectStoreNames.contains('captions')) return resolve(0);
      const c = db.transaction('captions').objectStore('captions').count();
      c.onsuccess = () => resolve(c.result);
    };
  });
  const status = (await dispatch(osListeners, { type: 'bg-os-status' }, senders.worker)) as { value: { queued: number; state: string } };
  return {
    offscreenCalls: offscreenCalls.length,
    creates: fake.state.creates,
    local: JSON.stringify(fake.storage.local.data()),
    session: JSON.stringify(fake.storage.session.data()),
    cache,
    queued: status.value.queued,
    engine: status.value.state,
    csCalls: csCalls.length,
    polluted: ({} as Record<string, unknown>).polluted,
  };
}

describe('every message is validated by sender and shape', () => {
  let before: Awaited<ReturnType<typeof stateNow>>;
  beforeEach(async () => {
    before = await stateNow();
  });

  it('every request type in the protocol has a validation case, a key list, a sender rule and a validator', () => {
    expect(TYPES.sort()).toEqual((Object.keys(VALIDATORS) as MessageType[]).sort());
    expect(TYPES).toEqual((Object.keys(SENDER_OF) as MessageType[]).sort());
    expect(TYPES).toEqual((Object.keys(KEYS) as MessageType[]).sort());
    for (const t of TYPES) expect(VALIDATORS[t]({ type: t, ...CASES[t].valid }), `${t}: the good example`).toBe(true);
  });

  it.each(TYPES)('%s: wrong senders get ForbiddenSenderError, and nothing changes', async (type) => {
    const wrong = (Object.keys(senders) as SenderName[]).filter(
      (s) => !CASES[type].ok.includes(s) && !(type.startsWith('cs-bg-') && s === 'optionsInTab'),
    );
    expect(wrong.length).toBeGreaterThanOrEqual(3);
    for (const s of wrong) {
      const reply = await dispatch(receiverOf(type), { type, ...CASES[type].valid }, senders[s] as unknown as chrome.runtime.MessageSender);
      expect(reply, `${type} from ${s}`).toMatchObject({ ok: false, error: { name: 'ForbiddenSenderError' } });
      expect(senderOf(type, senders[s] as unknown as chrome.runtime.MessageSender), `${type} from ${s}`).toBe(false);
    }
    for (const s of CASES[type].ok)
      expect(senderOf(type, senders[s] as unknown as chrome.runtime.MessageSender), `${type} from ${s}`).toBe(true);
    expect(await stateNow()).toEqual(before);
  });

  it.each(TYPES)('%s: malformed payloads get BadMessageError, and nothing changes', async (type) => {
    const cases = malformed(type);
    expect(cases.length).toBeGreaterThanOrEqual(4);
    const sender = senders[CASES[type].ok[0]] as unknown as chrome.runtime.MessageSender;
    for (const { what, msg } of cases) {
      expect(VALIDATORS[type](msg), `${type} with ${what}`).toBe(false);
      const reply = await dispatch(receiverOf(type), msg, sender);
      expect(reply, `${type} with ${what}`).toMatchObject({ ok: false, error: { name: 'BadMessageError', message: `Malformed ${type}` } });
    }
    expect(await stateNow()).toEqual(before);
  });

  it('unknown types of a known prefix are refused by name; other prefixes are left to their own listener', async () => {
    for (const type of ['cs-bg-nope', 'ui-bg-__proto__', 'bg-os-constructor', 'cs-bg-toString']) {
      expect(
        await dispatch(receiverOf(type as MessageType), { type }, senders.worker as unknown as chrome.runtime.MessageSender),
      ).toMatchObject({ ok: false, error: { name: 'BadMessageError' } });
    }
    expect(
      await dispatch(bgListeners, { type: 'bg-os-status' }, senders.worker as unknown as chrome.runtime.MessageSender),
    ).toBeUndefined();
    expect(await dispatch(bgListeners, null, senders.worker as unknown as chrome.runtime.MessageSender)).toBeUndefined();
    expect(await dispatch(bgListeners, 'cs-bg-caption', senders.contentScript as unknown as chrome.runtime.MessageSender)).toBeUndefined();
    expect(await dispatch(bgListeners, { type: 42 }, senders.contentScript as unknown as chrome.runtime.MessageSender)).toBeUndefined();
    expect(await stateNow()).toEqual(before);
  });
});
