/**
 * Requests from a content script to the service worker. The worker can be stopped at any time; a request whose
 * reply never came is sent again (the worker's cache and the offscreen queue make that cheap), so none is lost.
 */
import { isTransportError } from '../shared/errors';
import { send, type MessageType, type ReplyValue, type Request } from '../shared/messages';

export function contextAlive(): boolean {
  // After the extension is reloaded or removed, this script is orphaned; chrome.runtime.id goes away.
  return typeof chrome !== 'undefined' && !!chrome.runtime?.id;
}

export async function request<K extends MessageType>(msg: Request<K>, signal?: AbortSignal, attempts = 6): Promise<ReplyValue<K>> {
  let delay = 100;
  for (let i = 1; ; i += 1) {
    if (signal?.aborted) throw signal.reason;
    try {
      return await send(msg);
    } catch (err) {
      if (i >= attempts || !isTransportError(err) || !contextAlive()) throw err;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }
}
