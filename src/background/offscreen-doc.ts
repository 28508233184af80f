/**
 * Lifecycle of the offscreen document that hosts the model (engine-page.ts; in Firefox, a frame of the event page):
 * created on demand, creation serialised (two racing creates throw "Only a single offscreen document may be
 * created"), and recreated when it was closed. Requests to it are retried once it is back, so closing it mid-queue
 * loses nothing.
 */
import browser from 'webextension-polyfill';
import { OffscreenUnavailableError, isTransportError } from '../shared/errors';
import { unwrap, type MessageType, type ReplyValue, type Request } from '../shared/messages';
import { enginePage } from './engine-page';

let creating: Promise<void> | null = null;
let created = 0;

/** How many times this worker created the document (for tests and diagnostics). */
export function offscreenCreations(): number {
  return created;
}

const exists = () => enginePage.exists();

export async function ensureOffscreen(): Promise<void> {
  while (creating) await creating;
  if (await exists()) return;
  if (creating) return ensureOffscreen();
  creating = enginePage
    .create()
    .then(() => {
      created += 1;
    })
    .catch((err: unknown) => {
      if (err instanceof Error && /single offscreen/i.test(err.message)) return;
      throw err;
    })
    .finally(() => {
      creating = null;
    });
  await creating;
}

export async function closeOffscreen(): Promise<void> {
  while (creating) await creating;
  if (await exists()) await enginePage.close();
}

/**
 * Close the document even when getContexts no longer lists it (navigated away, renderer gone): Chrome still holds
 * it, and would refuse to create another ("Only a single offscreen document may be created").
 */
async function forceCloseOffscreen(): Promise<void> {
  while (creating) await creating;
  await enginePage.close();
}

export async function offscreenExists(): Promise<boolean> {
  while (creating) await creating;
  return exists();
}

/** Send a bg-os request, (re)creating the document as needed; transport failures are retried a few times. */
export async function toOffscreen<K extends MessageType>(msg: Request<K>, attempts = 3): Promise<ReplyValue<K>> {
  let last: unknown;
  for (let i = 0; i < attempts; i += 1) {
    await ensureOffscreen();
    try {
      return unwrap(msg.type as K, await browser.runtime.sendMessage(msg));
    } catch (err) {
      if (!isTransportError(err)) throw err;
      last = err;
      // Twice unreachable though it "exists": its renderer crashed or hangs. Close it, so the next try recreates it.
      if (i >= 1) await forceCloseOffscreen();
      else await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new OffscreenUnavailableError(
    `The model's document could not be reached (${last instanceof Error ? last.message : String(last)}). Reload the extension.`,
  );
}
