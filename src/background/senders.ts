/** Who may send what: checked by the router before any dispatch. The table is SENDER_OF in the protocol module. */
import type { Runtime } from 'webextension-polyfill';
import { senderOf } from '../shared/messages';

/** The router answers only cs-bg- and ui-bg- requests, each from its own kind of sender. */
export function senderAllowed(type: string, sender: Runtime.MessageSender): boolean {
  if (!type.startsWith('cs-bg-') && !type.startsWith('ui-bg-')) return false;
  return senderOf(type, sender);
}
