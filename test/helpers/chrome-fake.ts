/**
 * A small hand-written fake of the chrome.* APIs the service worker uses: enough to run its handlers in Node. The code
 * reads it as `browser.*` (test/helpers/browser-global.ts); like the polyfill's, its methods return promises.
 * The offscreen document is a function that answers runtime messages while it "exists".
 */
import type { Runtime } from 'webextension-polyfill';

type Listener = (...args: unknown[]) => unknown;

export function event() {
  const ls: Listener[] = [];
  return {
    addListener: (l: Listener) => void ls.push(l),
    removeListener: (l: Listener) => void ls.splice(ls.indexOf(l), 1),
    hasListener: (l: Listener) => ls.includes(l),
    listeners: ls,
    fire: (...args: unknown[]) => ls.map((l) => l(...args)),
  };
}

function area(name: string, onChanged: ReturnType<typeof event>) {
  let data: Record<string, unknown> = {};
  return {
    data: () => data,
    async get(key?: string | string[] | null) {
      if (key == null) return structuredClone(data);
      const keys = Array.isArray(key) ? key : [key];
      return Object.fromEntries(keys.filter((k) => k in data).map((k) => [k, structuredClone(data[k])]));
    },
    async set(items: Record<string, unknown>) {
      const changes: Record<string, { oldValue?: unknown; newValue?: unknown }> = {};
      for (const [k, v] of Object.entries(items)) {
        changes[k] = { oldValue: data[k], newValue: structuredClone(v) };
        data[k] = structuredClone(v);
      }
      onChanged.fire(changes, name);
    },
    async clear() {
      data = {};
    },
    onChanged: event(),
  };
}

export interface OffscreenFake {
  /** Answers a bg-os- message like the offscreen document's listener would (a Reply object), or throws. */
  handle: (msg: { type: string; [k: string]: unknown }) => Promise<unknown>;
}

export function makeChrome(offscreen: OffscreenFake) {
  const onChanged = event();
  const state = {
    offscreenOpen: false,
    creates: 0,
    sent: [] as unknown[],
    tabMessages: [] as unknown[],
    tabsCreated: [] as { url?: string }[],
  };
  const chromeFake = {
    state,
    runtime: {
      id: 'fake-ext-id',
      getURL: (p: string) => `chrome-extension://fake-ext-id/${p}`,
      onMessage: event(),
      onInstalled: event(),
      onStartup: event(),
      async getContexts() {
        return state.offscreenOpen ? [{ contextType: 'OFFSCREEN_DOCUMENT' }] : [];
      },
      async sendMessage(msg: { type: string }) {
        state.sent.push(msg);
        if (!msg.type.startsWith('bg-os-')) return undefined;
        if (!state.offscreenOpen) throw new Error('Could not establish connection. Receiving end does not exist.');
        return offscreen.handle(msg);
      },
    },
    offscreen: {
      async createDocument() {
        // Like Chrome: a second create while one exists throws.
        await new Promise((r) => setTimeout(r, 5));
        if (state.offscreenOpen) throw new Error('Only a single offscreen document may be created.');
        state.creates += 1;
        state.offscreenOpen = true;
      },
      async closeDocument() {
        state.offscreenOpen = false;
      },
    },
    storage: { local: area('local', onChanged), session: area('session', onChanged), onChanged },
    tabs: {
      onRemoved: event(),
      async create(o: { url?: string }) {
        state.tabsCreated.push(o);
        return { id: 100 + state.tabsCreated.length, url: o.url };
      },
      async query() {
        return [{ id: 7 }];
      },
      async sendMessage(tabId: number, msg: unknown, opts?: unknown) {
        state.tabMessages.push({ tabId, msg, opts });
        return { ok: true, value: { opened: true } };
      },
    },
    contextMenus: { create: () => undefined, removeAll: async () => undefined, onClicked: event() },
    commands: { onCommand: event() },
    i18n: { getMessage: () => '' },
  };
  return chromeFake;
}

/** Call a registered runtime.onMessage listener like Chrome does, and resolve with its one reply. */
export function dispatch(listeners: Listener[], msg: unknown, sender: Runtime.MessageSender): Promise<unknown> {
  return new Promise((resolve) => {
    let replies = 0;
    let handled = false;
    for (const l of listeners) {
      const r = l(msg, sender, (resp: unknown) => {
        replies += 1;
        if (replies > 1) throw new Error('replied twice');
        resolve(resp);
      });
      if (r === true) handled = true;
    }
    if (!handled && replies === 0) resolve(undefined);
  });
}
