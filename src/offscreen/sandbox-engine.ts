/**
 * The engine in its sandboxed frame, as the engine host uses it: one frame per open engine, framed in the offscreen
 * document, sent the pack's manifest and then its files one by one as they are read (bytes transferred, or a stored
 * file's Blob for the frame to read; none kept here), and
 * removed when the engine is disposed or has died.
 * src/shared/engine-link.ts says why the engine runs in a frame of its own.
 */
import type { AnyPackFileKey, PackManifest } from '../captioner/pack-format';
import { EngineCrashedError } from '../shared/errors';
import { CONNECT, SANDBOX_PAGE, type BatchCaption } from '../shared/engine-link';
import { LIMITS } from '../shared/limits';
import type { Caption, Decoding } from '../shared/messages';
import type { BackendChoice } from '../shared/settings';
import { EngineLinkClient } from './engine-link-client';

/** A running captioner, as the engine host uses it. */
export interface Engine {
  packId: string;
  packName: string;
  readonly backend: string;
  readonly backendReason: string;
  /** Its frame stopped answering: it cannot caption any more, and a new engine must be opened. */
  readonly crashed: boolean;
  /** `urgent`: between the decoder steps of a batch already running, not after it ("Describe this image"). */
  caption(image: Blob, decoding: Decoding, signal: AbortSignal, urgent?: boolean): Promise<Caption>;
  /** Several images as rows of one batch; each gets its caption or its error. */
  captionBatch(images: Blob[], decoding: Decoding, signal: AbortSignal): Promise<BatchCaption[]>;
  /** Test builds: destroy the WebGPU device under it. */
  loseDevice(): Promise<{ destroyed: boolean; reason?: string }>;
  dispose(): Promise<void>;
}

export interface EngineEvents {
  /** The engine switched backend at run time (e.g. the WebGPU device was lost). */
  onFallback(backend: string, reason: string): void;
  /** Its frame died; calls that were out have failed with `err`. */
  onCrash(err: EngineCrashedError): void;
}

interface FrameEnd {
  port: MessagePort;
  remove(): void;
}

/** Frame the sandbox page in this document, and hand it its end of a new channel once it has loaded. */
async function openFrame(pageUrl: string, doc: Document = document): Promise<FrameEnd> {
  const frame = doc.createElement('iframe');
  frame.hidden = true;
  // Cross-origin isolation reaches the frame only if its document allows it; '*', because the framed document's origin
  // is opaque (a sandboxed page), which the default allowlist (the src's origin) does not match.
  frame.allow = 'cross-origin-isolated *';
  frame.src = pageUrl;
  const ms = LIMITS.sandbox.connectMs;
  const loaded = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new EngineCrashedError(`The captioning engine's frame did not load within ${ms / 1000} s.`)), ms);
    frame.addEventListener(
      'load',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
  doc.body.append(frame);
  try {
    await loaded;
  } catch (err) {
    frame.remove();
    throw err;
  }
  const channel = new MessageChannel();
  // '*': a sandboxed page's origin is opaque ("null"), so no target origin names it. The message carries only the port.
  frame.contentWindow?.postMessage({ type: CONNECT }, '*', [channel.port2]);
  return { port: channel.port1, remove: () => frame.remove() };
}

/**
 * The file's bytes in a buffer of their own, to transfer: a view on part of a larger buffer (a test's fake store, a
 * Node Buffer) is copied, so that moving it cannot empty the other files that share that buffer.
 */
function ownBuffer(data: Uint8Array): Uint8Array<ArrayBuffer> {
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
  return whole ? (data as Uint8Array<ArrayBuffer>) : new Uint8Array(data);
}

/** An engine frame being started: open a pack in it as soon as its manifest is read, send its files, or give it up. */
export interface StartingEngine {
  /** Start the captioner for this manifest; resolves once every graph it needs to caption has arrived and is made. */
  open(manifest: PackManifest, backend: BackendChoice): Promise<Engine>;
  /**
   * One of the pack's files, checked: bytes move to the frame (`data` is left empty here); a stored file's Blob goes
   * as a handle, and the frame reads it.
   */
  send(key: AnyPackFileKey, data: Uint8Array | Blob): void;
  dispose(): Promise<void>;
}

/**
 * Start an engine frame: framed now, with ORT's runtime started in it at once ('os-sb-prepare'), so that both overlap
 * with reading the pack. `extensionUrl` turns a path of the extension into its URL (browser.runtime.getURL): the
 * frame's page, and ORT's runtime files, which the frame loads itself.
 */
export function startSandboxEngine(events: EngineEvents, extensionUrl: (path: string) => string): StartingEngine {
  const wasmPaths = extensionUrl('ort/');
  let crashed = false;
  let current = { backend: '', reason: '' };
  const started = openFrame(extensionUrl(SANDBOX_PAGE)).then((frame) => {
    const link = new EngineLinkClient(frame.port, {
      onFallback: (b, reason) => {
        current = { backend: b, reason };
        events.onFallback(b, reason);
      },
      onDead: (err) => {
        crashed = true;
        frame.remove();
        events.onCrash(err);
      },
    });
    // Its failure (a frame that died already) shows again at 'os-sb-open'.
    link.call('os-sb-prepare', { wasmPaths }).catch(() => undefined);
    return { frame, link };
  });
  started.catch(() => {
    // Reported by open().
  });
  const dispose = async () => {
    const { frame, link } = await started.catch(() => ({ frame: null, link: null }));
    link?.close();
    frame?.remove();
  };
  return {
    dispose,
    send(key, data) {
      // A stored file's Blob goes as a handle, which the frame reads; bytes move (transferred, not copied).
      const file = data instanceof Blob ? data : ownBuffer(data);
      const transfer = file instanceof Blob ? [] : [file.buffer];
      // In the order they were read (callbacks on one promise run in order; a port delivers in order), before or after
      // the open: the frame keeps each file until the captioner asks for it. A failure (the frame is gone) is the
      // open call's failure too, which the caller awaits.
      started.then(({ link }) => link.call('os-sb-file', { key, data: file }, { transfer })).catch(() => undefined);
    },
    async open(manifest, backend) {
      try {
        const { link } = await started;
        const opened = await link.call('os-sb-open', { manifest, backend, wasmPaths });
        current = { backend: opened.backend, reason: opened.backendReason };
        return {
          packId: opened.packId,
          packName: opened.packName,
          get backend() {
            return current.backend;
          },
          get backendReason() {
            return current.reason;
          },
          get crashed() {
            return crashed;
          },
          caption: (image, decoding, signal, urgent = false) => link.call('os-sb-caption', { image, decoding, urgent }, { signal }),
          captionBatch: (images, decoding, signal) => link.call('os-sb-caption-batch', { images, decoding }, { signal }),
          loseDevice: () => (__TEST__ ? link.call('test-sb-lose-device', {}) : Promise.resolve({ destroyed: false })),
          dispose,
        };
      } catch (err) {
        await dispose();
        throw err;
      }
    },
  };
}
