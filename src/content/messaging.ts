/**
 * Requests from a content script to the service worker. The worker can be stopped at any time; a request whose
 * reply never came is sent again (the worker's cache and the offscreen queue make that cheap), so none is lost.
 *
 * When the extension is reloaded, updated or removed, this script is orphaned: every message then fails with
 * "Extension context invalidated". That is said once, as a named reason (reload the page), and never thrown into the
 * page; the request rejects with ContextInvalidatedError, which callers treat as final.
 */
import browser from 'webextension-polyfill';
import { ContextInvalidatedError, isTransportError } from '../shared/errors';
import { send, type MessageType, type ReplyValue, type Request } from '../shared/messages';
import { logOnce } from './log';

export function contextAlive(): boolean {
  // After the extension is reloaded or removed, this script is orphaned; runtime.id goes away. The polyfill (loaded
  // while the context was alive) reads it live from the browser's own runtime object, so this still sees that.
  try {
    return !!browser.runtime?.id;
  } catch {
    return false;
  }
}

function isContextInvalidated(err: unknown): boolean {
  if (err instanceof ContextInvalidatedError) return true;
  const msg = err instanceof Error ? err.message : String(err);
  return /Extension context invalidated/i.test(msg);
}

/** The named reason, logged once per page; what a request rejects with once the extension is gone. */
function contextInvalidated(): ContextInvalidatedError {
  const err = new ContextInvalidatedError();
  logOnce('warn', 'context-invalidated', `${err.name}: ${err.message}`);
  return err;
}

export async function request<K extends MessageType>(msg: Request<K>, signal?: AbortSignal, attempts = 6): Promise<ReplyValue<K>> {
  let delay = 100;
  for (let i = 1; ; i += 1) {
    if (signal?.aborted) throw signal.reason;
    if (!contextAlive()) throw contextInvalidated();
    try {
      // sendMessage can throw synchronously in an orphaned script: inside the try, it becomes a rejection.
      return await send(msg);
    } catch (err) {
      if (isContextInvalidated(err) || !contextAlive()) throw contextInvalidated();
      if (i >= attempts || !isTransportError(err)) throw err;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }
}
