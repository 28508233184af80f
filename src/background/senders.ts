/** Who may send what: checked by the router before any dispatch. The table is SENDER_OF in the protocol module. */
import { senderOf } from '../shared/messages';

export function extensionOrigin(): string {
  return chrome.runtime.getURL('');
}

/** A content script of ours, running in a tab. */
export function isContentScript(sender: chrome.runtime.MessageSender): boolean {
  return senderOf('cs-bg-status', sender);
}

/** One of our own pages (popup, options, caption page). */
export function isExtensionPage(sender: chrome.runtime.MessageSender): boolean {
  return senderOf('ui-bg-status', sender);
}

/** The router answers only cs-bg- and ui-bg- requests, each from its own kind of sender. */
export function senderAllowed(type: string, sender: chrome.runtime.MessageSender): boolean {
  if (!type.startsWith('cs-bg-') && !type.startsWith('ui-bg-')) return false;
  return senderOf(type, sender);
}
