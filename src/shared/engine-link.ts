/**
 * The link between the offscreen document and the engine's sandboxed frame (src/sandbox/): a MessagePort, not runtime
 * messaging, so it is declared here rather than in messages.ts, which imports the extension API that a sandboxed page
 * does not have. messages.ts's rules hold: requests are tagged by type (os-sb- down to the frame), each gets exactly
 * one reply ({ok: true, value} | {ok: false, error} with a WireError), and events (sb-os-) get none.
 *
 * Why a frame: a manifest sandbox page runs in a process of its own. When the engine's process dies (out of memory,
 * a crash in the runtime), the offscreen document and the service worker live on, notice, and start a new frame;
 * the same crash in the offscreen document itself terminates the whole extension until the user reloads it.
 *
 * The port is private to the two ends (it is handed over once, in the connect message), so the frame's messages are
 * not validated field by field as messages.ts does for runtime messages that any extension page could send.
 */
import type { AnyPackFileKey, PackManifest } from '../captioner/pack-format';
import type { WireError } from './errors';
import type { Caption, Decoding } from './messages';
import type { BackendChoice } from './settings';

/** The page the offscreen document frames; listed under "sandbox" in manifest.json. */
export const SANDBOX_PAGE = 'src/sandbox/index.html';

/** The one window message: the offscreen document hands the frame its end of the link. */
export const CONNECT = 'os-sb-connect';

/** One image's answer in a batch. */
export type BatchCaption = { ok: true; value: Caption } | { ok: false; error: WireError };

/** What the engine in the frame answers once it is open. */
interface OpenedEngine {
  packId: string;
  packName: string;
  backend: string;
  backendReason: string;
}

export interface LinkProtocol {
  /**
   * Start ORT's runtime (fetch and compile its wasm) before the pack arrives: the offscreen document sends this as soon
   * as the frame is up, while it still reads the pack from storage, so the two overlap.
   */
  'os-sb-prepare': { req: { wasmPaths: string }; res: null };
  /**
   * Create the captioner for the pack that `manifest` describes; `wasmPaths` is the extension's ort/ folder. Sent as
   * soon as the manifest is read: the files follow one by one ('os-sb-file'), and each graph's session is made as soon
   * as its file is there, while the offscreen document still reads the next. Answered once the captioner is ready.
   */
  'os-sb-open': { req: { manifest: PackManifest; backend: BackendChoice; wasmPaths: string }; res: OpenedEngine };
  /**
   * One of the pack's files, verified (or size-checked) by the offscreen document: downloaded bytes, their buffer
   * transferred, or a stored file's Blob, which the frame reads itself (off the offscreen document's thread).
   */
  'os-sb-file': { req: { key: AnyPackFileKey; data: Uint8Array | Blob }; res: null };
  /** `urgent`: run between the decoder steps of a batch already running (captioner.ts, CaptionOptions.urgent). */
  'os-sb-caption': { req: { image: Blob; decoding: Decoding; urgent: boolean }; res: Caption };
  /** Several images as rows of one batch (greedy decoding); each gets its own caption or error. */
  'os-sb-caption-batch': { req: { images: Blob[]; decoding: Decoding }; res: BatchCaption[] };
  /** Test builds only: destroy the WebGPU device under the running engine (a GPU reset). */
  'test-sb-lose-device': { req: { _?: never }; res: { destroyed: boolean; reason?: string } };
}

export type LinkType = keyof LinkProtocol;
export type LinkRequest<K extends LinkType = LinkType> = K extends LinkType ? { type: K; callId: number } & LinkProtocol[K]['req'] : never;

/** Down the link: a request, the cancellation of one, or "are you there?". */
export type LinkDown = LinkRequest | { type: 'os-sb-abort'; callId: number } | { type: 'os-sb-ping' };

/** Up the link: a reply, an event, or the answer to a ping. */
export type LinkUp =
  | { type: 'sb-os-reply'; callId: number; reply: { ok: true; value: unknown } | { ok: false; error: WireError } }
  /** The engine switched backend at run time (the WebGPU device was lost). */
  | { type: 'sb-os-fallback'; backend: string; reason: string }
  /**
   * The engine starts (`opening` true) or ended a session's creation outside 'os-sb-open' (the text tower, made at the
   * first caption that needs it): its thread may then be silent as long as while opening.
   */
  | { type: 'sb-os-opening'; opening: boolean }
  /** The frame's heartbeat (src/sandbox/heartbeat.ts): its port comes with this message, to be pinged from now on. */
  | { type: 'sb-os-heartbeat' }
  | { type: 'sb-os-pong' };
