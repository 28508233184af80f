/** Who may send what: checked by the router before any dispatch. */

export function extensionOrigin(): string {
  return chrome.runtime.getURL('');
}

/** A content script of ours, running in a tab. */
export function isContentScript(sender: chrome.runtime.MessageSender): boolean {
  return sender.id === chrome.runtime.id && sender.tab?.id !== undefined && typeof sender.frameId === 'number';
}

/** One of our own pages (popup, options, caption page). */
export function isExtensionPage(sender: chrome.runtime.MessageSender): boolean {
  return sender.id === chrome.runtime.id && typeof sender.url === 'string' && sender.url.startsWith(extensionOrigin());
}

export function senderAllowed(type: string, sender: chrome.runtime.MessageSender): boolean {
  if (type.startsWith('cs-bg-')) return isContentScript(sender);
  if (type.startsWith('ui-bg-')) return isExtensionPage(sender);
  return false;
}
