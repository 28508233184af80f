/**
 * The one message protocol. Every message that crosses contexts is declared here, tagged by `type`; the prefix says
 * the direction:
 *   cs-bg-  content script -> service worker      ui-bg-  extension page (popup, options, caption page) -> service worker
 *   bg-os-  service worker -> offscreen document  bg-cs-  service worker -> content script (one tab/frame)
 *   os-bg-  offscreen document -> everyone: an EVENT, no reply (progress and status)
 *
 * Every request gets exactly one reply, `{ok: true, value} | {ok: false, error}`; reply types come from `Protocol`,
 * never written again at call sites.
 */
import browser, { type Runtime } from 'webextension-polyfill';
import { TransportError, fromWire, toWire, type WireError } from './errors';
import { LIMITS, inRange, inRealRange } from './limits';
import { MODEL_ID, type BackendChoice, type Strategy } from './settings';

export type ImageSource =
  /** An http(s) or data: URL; the extension fetches it (it has host access; the page's canvas would be tainted). */
  | { kind: 'url'; url: string }
  /** Bytes the content script read itself (blob: URLs belong to the page), as a data: URL. */
  | { kind: 'bytes'; dataUrl: string };

export interface Decoding {
  strategy: Strategy;
  beams: number;
  maxTokens: number;
  /**
   * Beam re-ranking by CLIP's text tower: rank = score / length + rerankWeight * clipScore (docs/pack-format.md).
   * Absent: the pack's own `text.rerankWeight`; 0: plain beam search. Ignored by packs without a text tower.
   */
  rerankWeight?: number;
}

/** A caption as the engine host answers it (bg-os-caption); the engine's own, fuller result is EngineCaption. */
export interface Caption {
  text: string;
  packId: string;
  backend: string;
  /** mean log-probability per token, from beam search; greedy decoding leaves it out (decoding.ts: scores) */
  confidence?: number;
  /** CLIPScore of the caption against the image (w * max(cos, 0)); absent when the pack has no text tower */
  clipScore?: number;
  /** true when clipScore is below the pack's gateThreshold: the caption is likely wrong (never absent with clipScore) */
  uncertain?: boolean;
}

/** A caption as the worker answers it: with whether its caption cache served it. */
export interface CaptionResult extends Caption {
  /** Served from the caption cache. */
  cached: boolean;
}

type ModelState = 'no-pack' | 'idle' | 'downloading' | 'loading' | 'ready' | 'error';

export interface ModelStatus {
  state: ModelState;
  packUrl: string;
  packId: string;
  packName: string;
  /** Download progress in bytes, while downloading. */
  progress: { done: number; total: number } | null;
  backend: string | null;
  backendReason: string;
  /** Images waiting in the offscreen queue (including the one running). */
  queued: number;
  error: WireError | null;
}

/** A model the catalogue offers, as the pages show it (src/shared/catalogue.json, summarised by the installer). */
export interface CatalogueModel {
  id: string;
  name: string;
  description: string;
  /** What the user downloads, in bytes. */
  downloadBytes: number;
  /** The pack's size once converted, in bytes. */
  diskBytes: number;
  default: boolean;
  /** Input roles the user must pick a file for (catalogue `fetch: "user-file"`), each with where to get it. */
  userFiles: { role: string; hint: string }[];
}

export type InstallPhase = 'not-installed' | 'queued' | 'downloading' | 'verifying' | 'converting' | 'paused' | 'ready' | 'failed';

/** One catalogue model's install, as the installer reports it. */
export interface InstallState {
  id: string;
  phase: InstallPhase;
  /** Bytes done and to do in the current phase. */
  bytes: number;
  total: number;
  /** Bytes per second, recently. */
  rate: number;
  /** Seconds left at the current rate; null when unknown. */
  etaSeconds: number | null;
  error: WireError | null;
  /** The pack-store entry of the installed pack (ready), or null. */
  storeId: string | null;
  /** Input roles still waiting for a file the user picks. */
  needsFiles: string[];
  /**
   * What the running job asks, or the last one asked: also build CLIP's text tower (check captions against the
   * picture). Optional: states from before it existed say nothing (read as off).
   */
  text?: boolean;
  /** The installed (ready) pack carries CLIP's text tower, so its captions are checked. Absent: read as off. */
  readyText?: boolean;
}

export interface ModelsView {
  catalogue: CatalogueModel[];
  states: InstallState[];
}

/** Priority: lower runs first. */
export const PRIORITY = { describe: 0, visible: 1, rest: 2 } as const;

/** Every request: what it carries and what its reply's value is. */
export interface Protocol {
  'cs-bg-caption': { req: { requestId: string; source: ImageSource; priority: number }; res: CaptionResult };
  'cs-bg-cancel': { req: { requestIds: string[] }; res: null };
  /** count: images we labelled; unsure: images left unlabelled because the model was unsure (absent from older scripts) */
  'cs-bg-label-count': { req: { count: number; unsure?: number }; res: null };
  'cs-bg-status': { req: { _?: never }; res: ModelStatus };

  'ui-bg-status': { req: { _?: never }; res: ModelStatus };
  'ui-bg-tab-info': { req: { tabId: number }; res: { count: number; unsure: number } };
  'ui-bg-caption': {
    req: { requestId: string; source: ImageSource; packUrl?: string; decoding?: Partial<Decoding> };
    res: CaptionResult;
  };
  'ui-bg-load-pack': { req: { packUrl: string }; res: ModelStatus };
  'ui-bg-clear-cache': { req: { packs: boolean }; res: { captions: number; packs: number } };
  /** The catalogue and every model's install state. */
  'ui-bg-models': { req: { _?: never }; res: ModelsView };
  /** Download and set up a catalogue model; `picked` maps input roles to files the page stashed (stashPickedFile). */
  /** text: also fetch and convert CLIP's text tower (check captions against the picture); absent = off */
  'ui-bg-model-install': { req: { modelId: string; picked?: Record<string, string>; text?: boolean }; res: ModelsView };
  'ui-bg-model-pause': { req: { modelId: string }; res: ModelsView };
  'ui-bg-model-resume': { req: { modelId: string }; res: ModelsView };
  /** Stop an install and delete what it downloaded; an installed older version stays. */
  'ui-bg-model-cancel': { req: { modelId: string }; res: ModelsView };
  /** Delete an installed model. */
  'ui-bg-model-remove': { req: { modelId: string }; res: ModelsView };

  'bg-os-caption': {
    req: {
      requestId: string;
      key: string;
      source: ImageSource;
      priority: number;
      packUrl: string;
      decoding: Decoding;
      backend: BackendChoice;
    };
    res: Caption;
  };
  'bg-os-cancel': { req: { requestIds: string[] }; res: null };
  'bg-os-status': { req: { _?: never }; res: ModelStatus };
  'bg-os-load': { req: { packUrl: string; backend: BackendChoice }; res: ModelStatus };
  /** Forget remembered captions; with `packs`, also drop the queue and delete downloaded packs. */
  'bg-os-clear': { req: { packs: boolean }; res: { packs: number } };
  'bg-os-models': { req: { _?: never }; res: ModelsView };
  'bg-os-model-install': { req: { modelId: string; picked?: Record<string, string>; text?: boolean }; res: ModelsView };
  'bg-os-model-pause': { req: { modelId: string }; res: ModelsView };
  'bg-os-model-resume': { req: { modelId: string }; res: ModelsView };
  'bg-os-model-cancel': { req: { modelId: string }; res: ModelsView };
  'bg-os-model-remove': { req: { modelId: string }; res: ModelsView };

  'bg-cs-describe': { req: { via: 'menu' | 'command'; srcUrl?: string }; res: { opened: boolean } };
}

export type MessageType = keyof Protocol;
export type Request<K extends MessageType = MessageType> = K extends MessageType ? { type: K } & Protocol[K]['req'] : never;
export type ReplyValue<K extends MessageType> = Protocol[K]['res'];
type Reply<K extends MessageType> = { ok: true; value: ReplyValue<K> } | { ok: false; error: WireError };

/** Events: broadcast, never replied to. */
export interface Events {
  'os-bg-status': { status: ModelStatus };
  /** Install progress: sent on every phase change, and at most a few times a second while bytes move. */
  'os-bg-models': { states: InstallState[] };
  /** The engine page has work (Firefox): an event keeps the event page that frames it loaded (offscreen/keep-alive.ts). */
  'os-bg-alive': { queued: number };
}
export type EventMessage<K extends keyof Events = keyof Events> = K extends keyof Events ? { type: K } & Events[K] : never;

export type Handlers<P extends string> = {
  [K in MessageType as K extends `${P}${string}` ? K : never]: (
    msg: Request<K>,
    sender: Runtime.MessageSender,
  ) => Promise<ReplyValue<K>> | ReplyValue<K>;
};

function isRequestOf<P extends string>(msg: unknown, prefix: P): msg is Request {
  return (
    typeof msg === 'object' &&
    msg !== null &&
    typeof (msg as { type?: unknown }).type === 'string' &&
    (msg as { type: string }).type.startsWith(prefix)
  );
}

// What a message may carry (sizes, ranges) is in the one limits table, src/shared/limits.ts.
const { message: ML, decoding: DL } = LIMITS;

const isStr = (v: unknown, max: number = ML.idChars): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
const opt = (v: unknown, check: (v: unknown) => boolean): boolean => v === undefined || check(v);
const isBackend = (v: unknown): boolean => v === 'auto' || v === 'wasm' || v === 'webgpu';
const isHttpUrl = (v: unknown): boolean => isStr(v, ML.urlChars) && /^https?:\/\//i.test(v);
/** A catalogue model id or pack id (settings' MODEL_ID). */
const isModelId = (v: unknown): boolean => isStr(v, ML.modelIdChars) && MODEL_ID.test(v);
/** A pack reference (settings' packRef): a pack base URL, or `model:<catalogue id>` / `folder:<imported pack id>`. */
const isPackUrl = (v: unknown): boolean => {
  if (!isStr(v, ML.urlChars)) return false;
  if (/^(https?|chrome-extension):\/\//i.test(v)) return true;
  const ref = /^(model|folder):(.*)$/s.exec(v);
  return ref !== null && isModelId(ref[2]);
};
/** Picked files: a few input roles, each naming a file a page stashed in IndexedDB. No prototype tricks. */
const isPicked = (v: unknown): boolean => {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.getPrototypeOf(v) !== Object.prototype) return false;
  const entries = Object.entries(v);
  return (
    entries.length > 0 &&
    entries.length <= ML.pickedFiles &&
    entries.every(([role, key]) => /^[a-z][a-z0-9_-]{0,31}$/.test(role) && isStr(key))
  );
};
/** A plain object with exactly these keys (optional ones may be absent), no prototype tricks. */
const shaped = (v: unknown, keys: readonly string[]): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.keys(v).every((k) => keys.includes(k));
};
const isSource = (v: unknown): boolean => {
  if (!shaped(v, ['kind', 'url', 'dataUrl'])) return false;
  if (v.kind === 'url')
    return v.dataUrl === undefined && (isHttpUrl(v.url) || (isStr(v.url, ML.dataUrlChars) && /^data:image\//i.test(v.url)));
  if (v.kind === 'bytes') return v.url === undefined && isStr(v.dataUrl, ML.dataUrlChars) && /^data:/i.test(v.dataUrl);
  return false;
};
const isDecoding = (v: unknown, partial: boolean): boolean => {
  if (!shaped(v, ['strategy', 'beams', 'maxTokens', 'rerankWeight'])) return false;
  const field = (x: unknown, c: (x: unknown) => boolean) => (partial ? opt(x, c) : c(x));
  return (
    field(v.strategy, (x) => x === 'greedy' || x === 'beam') &&
    field(v.beams, (x) => inRange(x, DL.beams)) &&
    field(v.maxTokens, (x) => inRange(x, DL.maxTokens)) &&
    opt(v.rerankWeight, (x) => inRealRange(x, DL.rerankWeight))
  );
};
const isIds = (v: unknown): boolean => Array.isArray(v) && v.length <= ML.ids && v.every((x) => isStr(x));

/** The keys each request may carry (besides `type`); anything else is refused. */
export const KEYS: { [K in MessageType]: readonly (keyof Protocol[K]['req'])[] } = {
  'cs-bg-caption': ['requestId', 'source', 'priority'],
  'cs-bg-cancel': ['requestIds'],
  'cs-bg-label-count': ['count', 'unsure'],
  'cs-bg-status': [],
  'ui-bg-status': [],
  'ui-bg-tab-info': ['tabId'],
  'ui-bg-caption': ['requestId', 'source', 'packUrl', 'decoding'],
  'ui-bg-load-pack': ['packUrl'],
  'ui-bg-clear-cache': ['packs'],
  'bg-os-caption': ['requestId', 'key', 'source', 'priority', 'packUrl', 'decoding', 'backend'],
  'bg-os-cancel': ['requestIds'],
  'bg-os-status': [],
  'bg-os-load': ['packUrl', 'backend'],
  'bg-os-clear': ['packs'],
  'bg-cs-describe': ['via', 'srcUrl'],
  'ui-bg-models': [],
  'ui-bg-model-install': ['modelId', 'picked', 'text'],
  'ui-bg-model-pause': ['modelId'],
  'ui-bg-model-resume': ['modelId'],
  'ui-bg-model-cancel': ['modelId'],
  'ui-bg-model-remove': ['modelId'],
  'bg-os-models': [],
  'bg-os-model-install': ['modelId', 'picked', 'text'],
  'bg-os-model-pause': ['modelId'],
  'bg-os-model-resume': ['modelId'],
  'bg-os-model-cancel': ['modelId'],
  'bg-os-model-remove': ['modelId'],
};

/** Shape checks of each request's fields, applied by the receiver before dispatch (after the key check). */
const FIELDS: { [K in MessageType]: (m: Record<string, unknown>) => boolean } = {
  'cs-bg-caption': (m) => isStr(m.requestId) && isSource(m.source) && inRange(m.priority, ML.priority),
  'cs-bg-cancel': (m) => isIds(m.requestIds),
  'cs-bg-label-count': (m) => inRange(m.count, ML.labelCount) && opt(m.unsure, (x) => inRange(x, ML.labelCount)),
  'cs-bg-status': () => true,
  'ui-bg-status': () => true,
  'ui-bg-tab-info': (m) => inRange(m.tabId, { min: 0, max: Number.MAX_SAFE_INTEGER }),
  'ui-bg-caption': (m) =>
    isStr(m.requestId) && isSource(m.source) && opt(m.packUrl, isPackUrl) && opt(m.decoding, (d) => isDecoding(d, true)),
  'ui-bg-load-pack': (m) => isPackUrl(m.packUrl),
  'ui-bg-clear-cache': (m) => typeof m.packs === 'boolean',
  'bg-os-caption': (m) =>
    isStr(m.requestId) &&
    isStr(m.key, ML.urlChars * 2) &&
    isSource(m.source) &&
    inRange(m.priority, ML.priority) &&
    isPackUrl(m.packUrl) &&
    isDecoding(m.decoding, false) &&
    isBackend(m.backend),
  'bg-os-cancel': (m) => isIds(m.requestIds),
  'bg-os-status': () => true,
  'bg-os-load': (m) => isPackUrl(m.packUrl) && isBackend(m.backend),
  'bg-os-clear': (m) => typeof m.packs === 'boolean',
  'bg-cs-describe': (m) => (m.via === 'menu' || m.via === 'command') && opt(m.srcUrl, (u) => isStr(u, ML.dataUrlChars)),
  'ui-bg-models': () => true,
  'ui-bg-model-install': (m) => isModelId(m.modelId) && opt(m.picked, isPicked) && opt(m.text, (x) => typeof x === 'boolean'),
  'ui-bg-model-pause': (m) => isModelId(m.modelId),
  'ui-bg-model-resume': (m) => isModelId(m.modelId),
  'ui-bg-model-cancel': (m) => isModelId(m.modelId),
  'ui-bg-model-remove': (m) => isModelId(m.modelId),
  'bg-os-models': () => true,
  'bg-os-model-install': (m) => isModelId(m.modelId) && opt(m.picked, isPicked) && opt(m.text, (x) => typeof x === 'boolean'),
  'bg-os-model-pause': (m) => isModelId(m.modelId),
  'bg-os-model-resume': (m) => isModelId(m.modelId),
  'bg-os-model-cancel': (m) => isModelId(m.modelId),
  'bg-os-model-remove': (m) => isModelId(m.modelId),
};

/** Shape checks for every request: a plain object, only its own keys, each field of the right type and size. */
export const VALIDATORS: { [K in MessageType]: (m: Record<string, unknown>) => boolean } = Object.fromEntries(
  (Object.keys(FIELDS) as MessageType[]).map((t) => [
    t,
    (m: Record<string, unknown>) => shaped(m, ['type', ...(KEYS[t] as string[])]) && FIELDS[t](m),
  ]),
) as { [K in MessageType]: (m: Record<string, unknown>) => boolean };

/** Who may send each request: our content script in a tab, one of our pages, or the service worker. */
export type SenderKind = 'content-script' | 'extension-page' | 'extension';
export const SENDER_OF: { [K in MessageType]: SenderKind } = {
  'cs-bg-caption': 'content-script',
  'cs-bg-cancel': 'content-script',
  'cs-bg-label-count': 'content-script',
  'cs-bg-status': 'content-script',
  'ui-bg-status': 'extension-page',
  'ui-bg-tab-info': 'extension-page',
  'ui-bg-caption': 'extension-page',
  'ui-bg-load-pack': 'extension-page',
  'ui-bg-clear-cache': 'extension-page',
  // The worker (or one of our pages): our own extension, never a tab.
  'bg-os-caption': 'extension',
  'bg-os-cancel': 'extension',
  'bg-os-status': 'extension',
  'bg-os-load': 'extension',
  'bg-os-clear': 'extension',
  'bg-cs-describe': 'extension',
  'ui-bg-models': 'extension-page',
  'ui-bg-model-install': 'extension-page',
  'ui-bg-model-pause': 'extension-page',
  'ui-bg-model-resume': 'extension-page',
  'ui-bg-model-cancel': 'extension-page',
  'ui-bg-model-remove': 'extension-page',
  'bg-os-models': 'extension',
  'bg-os-model-install': 'extension',
  'bg-os-model-pause': 'extension',
  'bg-os-model-resume': 'extension',
  'bg-os-model-cancel': 'extension',
  'bg-os-model-remove': 'extension',
};

/** Whether `sender` is of the kind allowed to send `type` (unknown types: never). */
export function senderOf(
  type: string,
  sender: Runtime.MessageSender,
  runtime: { id: string; getURL(p: string): string } = browser.runtime,
): boolean {
  const kind = (SENDER_OF as Record<string, SenderKind | undefined>)[type];
  if (!kind || sender.id !== runtime.id) return false;
  const ownUrl = typeof sender.url === 'string' && sender.url.startsWith(runtime.getURL(''));
  if (kind === 'content-script') return sender.tab?.id !== undefined && typeof sender.frameId === 'number';
  // Our pages, popup or a tab (the options page opens in one); a content script's url is the page's, never ours.
  if (kind === 'extension-page') return ownUrl && /\.html$/.test(new URL(sender.url!).pathname);
  return ownUrl && !sender.tab;
}

/**
 * A runtime.onMessage listener in the sendResponse form: it returns true when it will reply (now or later), false when
 * the message is not its to answer. Chrome, Firefox and the polyfill's wrapper (which also takes a returned Promise)
 * all accept that; the test fakes (test/helpers/chrome-fake.ts dispatch) call listeners the same way.
 */
export type MessageListener = (msg: unknown, sender: Runtime.MessageSender, sendResponse: (r: unknown) => void) => boolean;

/** Listen for runtime messages until `signal` aborts. */
export function addMessageListener(listener: MessageListener, signal?: AbortSignal): void {
  // @types/webextension-polyfill types a sendResponse listener as returning only `true`; `false` (no reply from this
  // listener, let another answer) is valid at run time, so the listener is passed as that type.
  const l = listener as Runtime.OnMessageListenerCallback;
  browser.runtime.onMessage.addListener(l);
  signal?.addEventListener('abort', () => browser.runtime.onMessage.removeListener(l), { once: true });
}

/**
 * Answer requests whose type starts with `prefix`: check the sender, validate, dispatch, and reply exactly once
 * (a handler that throws still replies, with the error on the wire). Messages of other prefixes are left to other
 * listeners (return false, no reply), since every extension context hears runtime messages.
 */
export function makeListener<P extends string>(
  prefixes: readonly P[],
  handlers: Handlers<P>,
  senderOk: (type: string, sender: Runtime.MessageSender) => boolean,
): MessageListener {
  return (msg, sender, sendResponse) => {
    if (!prefixes.some((p) => isRequestOf(msg, p))) return false;
    const m = msg as Request;
    const reply = (r: Reply<MessageType>) => {
      try {
        sendResponse(r);
      } catch (err) {
        // The sender went away (tab closed, worker restarted); it will ask again if it still cares. (Under the
        // polyfill sendResponse never throws: it sends later, and logs a failed delivery itself.)
        console.debug('[alt-text] reply dropped:', toWire(err).message);
      }
    };
    const handler = (handlers as Record<string, ((m: unknown, s: Runtime.MessageSender) => unknown) | undefined>)[m.type];
    // The refusals below reply at once and return false; the polyfill's wrapper sees the reply and keeps the channel.
    if (!handler) {
      reply({ ok: false, error: { name: 'BadMessageError', message: `Unknown message type ${m.type}` } });
      return false;
    }
    if (!senderOk(m.type, sender)) {
      reply({ ok: false, error: { name: 'ForbiddenSenderError', message: `${m.type} may not come from ${sender.url ?? 'this sender'}` } });
      return false;
    }
    if (!VALIDATORS[m.type](m)) {
      reply({ ok: false, error: { name: 'BadMessageError', message: `Malformed ${m.type}` } });
      return false;
    }
    Promise.resolve()
      .then(() => handler(m, sender))
      .then(
        (value) => reply({ ok: true, value: (value ?? null) as never }),
        (err: unknown) => reply({ ok: false, error: toWire(err) }),
      );
    return true;
  };
}

/** Turn a raw reply into a value or a thrown named error. An absent reply is a transport failure. */
export function unwrap<K extends MessageType>(type: K, raw: unknown): ReplyValue<K> {
  if (raw === undefined || raw === null || typeof raw !== 'object' || !('ok' in raw)) {
    throw new TransportError(`No reply to ${type}: message port closed`);
  }
  const r = raw as Reply<K>;
  if (r.ok) return r.value;
  throw fromWire(r.error);
}

/** Send a request over runtime messaging (to the service worker, or from it to the offscreen document). */
export async function send<K extends MessageType>(msg: Request<K>): Promise<ReplyValue<K>> {
  // The polyfill resolves undefined where Chrome says "message port closed" (no listener replied): unwrap names that.
  const raw: unknown = await browser.runtime.sendMessage(msg);
  return unwrap(msg.type as K, raw);
}

export function emit<K extends keyof Events>(msg: EventMessage<K>): void {
  browser.runtime.sendMessage(msg).catch(() => {
    // Nobody listening (no popup open, worker asleep): events are best effort; the status is also kept for polling.
  });
}

export function isEvent<K extends keyof Events>(msg: unknown, type: K): msg is EventMessage<K> {
  return typeof msg === 'object' && msg !== null && (msg as { type?: unknown }).type === type;
}

let counter = 0;
export function newRequestId(prefix: string): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
}
