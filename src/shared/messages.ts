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
import { fromWire, toWire, type WireError } from './errors';
import type { BackendChoice, Strategy } from './settings';

export type ImageSource =
  /** An http(s) or data: URL; the extension fetches it (it has host access; the page's canvas would be tainted). */
  | { kind: 'url'; url: string }
  /** Bytes the content script read itself (blob: URLs belong to the page), as a data: URL. */
  | { kind: 'bytes'; dataUrl: string };

export interface Decoding {
  strategy: Strategy;
  beams: number;
  maxTokens: number;
}

export interface CaptionResult {
  text: string;
  packId: string;
  backend: string;
  confidence: number;
  /** Served from the caption cache. */
  cached: boolean;
}

export type ModelState = 'no-pack' | 'idle' | 'downloading' | 'loading' | 'ready' | 'error';

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

/** Priority: lower runs first. */
export const PRIORITY = { describe: 0, visible: 1, rest: 2 } as const;

/** Every request: what it carries and what its reply's value is. */
export interface Protocol {
  'cs-bg-caption': { req: { requestId: string; source: ImageSource; priority: number }; res: CaptionResult };
  'cs-bg-cancel': { req: { requestIds: string[] }; res: null };
  'cs-bg-label-count': { req: { count: number }; res: null };
  'cs-bg-status': { req: { _?: never }; res: ModelStatus };

  'ui-bg-status': { req: { _?: never }; res: ModelStatus };
  'ui-bg-tab-info': { req: { tabId: number }; res: { count: number } };
  'ui-bg-caption': {
    req: { requestId: string; source: ImageSource; packUrl?: string; decoding?: Partial<Decoding> };
    res: CaptionResult;
  };
  'ui-bg-load-pack': { req: { packUrl: string }; res: ModelStatus };
  'ui-bg-clear-cache': { req: { packs: boolean }; res: { captions: number; packs: number } };

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
    res: Omit<CaptionResult, 'cached'>;
  };
  'bg-os-cancel': { req: { requestIds: string[] }; res: null };
  'bg-os-status': { req: { _?: never }; res: ModelStatus };
  'bg-os-load': { req: { packUrl: string; backend: BackendChoice }; res: ModelStatus };
  'bg-os-clear-packs': { req: { _?: never }; res: { packs: number } };

  'bg-cs-describe': { req: { via: 'menu' | 'command'; srcUrl?: string }; res: { opened: boolean } };
}

export type MessageType = keyof Protocol;
export type Request<K extends MessageType = MessageType> = K extends MessageType ? { type: K } & Protocol[K]['req'] : never;
export type ReplyValue<K extends MessageType> = Protocol[K]['res'];
export type Reply<K extends MessageType> = { ok: true; value: ReplyValue<K> } | { ok: false; error: WireError };

/** Events: broadcast, never replied to. */
export interface Events {
  'os-bg-status': { status: ModelStatus };
}
export type EventMessage<K extends keyof Events = keyof Events> = K extends keyof Events ? { type: K } & Events[K] : never;

export type Handlers<P extends string> = {
  [K in MessageType as K extends `${P}${string}` ? K : never]: (
    msg: Request<K>,
    sender: chrome.runtime.MessageSender,
  ) => Promise<ReplyValue<K>> | ReplyValue<K>;
};

export function isRequestOf<P extends string>(msg: unknown, prefix: P): msg is Request {
  return typeof msg === 'object' && msg !== null && typeof (msg as { type?: unknown }).type === 'string' && (msg as { type: string }).type.startsWith(prefix);
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isSource = (v: unknown): boolean => {
  const s = v as ImageSource;
  if (typeof s !== 'object' || s === null) return false;
  if (s.kind === 'url') return isStr(s.url) && /^(https?:|data:image\/)/i.test(s.url);
  if (s.kind === 'bytes') return isStr(s.dataUrl) && /^data:/i.test(s.dataUrl);
  return false;
};
const isIds = (v: unknown): boolean => Array.isArray(v) && v.length <= 10_000 && v.every(isStr);

/** Shape checks for every request, applied by the receiver before dispatch. */
export const VALIDATORS: { [K in MessageType]: (m: Record<string, unknown>) => boolean } = {
  'cs-bg-caption': (m) => isStr(m.requestId) && isSource(m.source) && isNum(m.priority),
  'cs-bg-cancel': (m) => isIds(m.requestIds),
  'cs-bg-label-count': (m) => isNum(m.count) && (m.count as number) >= 0,
  'cs-bg-status': () => true,
  'ui-bg-status': () => true,
  'ui-bg-tab-info': (m) => isNum(m.tabId),
  'ui-bg-caption': (m) => isStr(m.requestId) && isSource(m.source) && (m.packUrl === undefined || isStr(m.packUrl)),
  'ui-bg-load-pack': (m) => isStr(m.packUrl),
  'ui-bg-clear-cache': (m) => typeof m.packs === 'boolean',
  'bg-os-caption': (m) => isStr(m.requestId) && isStr(m.key) && isSource(m.source) && isNum(m.priority) && isStr(m.packUrl),
  'bg-os-cancel': (m) => isIds(m.requestIds),
  'bg-os-status': () => true,
  'bg-os-load': (m) => isStr(m.packUrl),
  'bg-os-clear-packs': () => true,
  'bg-cs-describe': (m) => m.via === 'menu' || m.via === 'command',
};

export type SenderCheck = (sender: chrome.runtime.MessageSender) => boolean;

/**
 * Answer requests whose type starts with `prefix`: check the sender, validate, dispatch, and reply exactly once
 * (a handler that throws still replies, with the error on the wire). Messages of other prefixes are left to other
 * listeners (return false, no reply), since every extension context hears runtime messages.
 */
export function makeListener<P extends string>(
  prefixes: readonly P[],
  handlers: Handlers<P>,
  senderOk: (type: string, sender: chrome.runtime.MessageSender) => boolean,
) {
  return (msg: unknown, sender: chrome.runtime.MessageSender, sendResponse: (r: unknown) => void): boolean => {
    if (!prefixes.some((p) => isRequestOf(msg, p))) return false;
    const m = msg as Request;
    const reply = (r: Reply<MessageType>) => {
      try {
        sendResponse(r);
      } catch (err) {
        // The sender went away (tab closed, worker restarted); it will ask again if it still cares.
        console.debug('[alt-text] reply dropped:', toWire(err).message);
      }
    };
    const handler = (handlers as Record<string, ((m: unknown, s: chrome.runtime.MessageSender) => unknown) | undefined>)[m.type];
    if (!handler) {
      reply({ ok: false, error: { name: 'BadMessageError', message: `Unknown message type ${m.type}` } });
      return false;
    }
    if (!senderOk(m.type, sender)) {
      reply({ ok: false, error: { name: 'ForbiddenSenderError', message: `${m.type} may not come from ${sender.url ?? 'this sender'}` } });
      return false;
    }
    if (!VALIDATORS[m.type](m as unknown as Record<string, unknown>)) {
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
    const e = new Error(`No reply to ${type}: message port closed`);
    e.name = 'TransportError';
    throw e;
  }
  const r = raw as Reply<K>;
  if (r.ok) return r.value;
  throw fromWire(r.error);
}

/** Send a request over chrome.runtime (to the service worker, or from it to the offscreen document). */
export async function send<K extends MessageType>(msg: Request<K>): Promise<ReplyValue<K>> {
  const raw: unknown = await chrome.runtime.sendMessage(msg);
  return unwrap(msg.type as K, raw);
}

export function emit<K extends keyof Events>(msg: EventMessage<K>): void {
  chrome.runtime.sendMessage(msg).catch(() => {
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
