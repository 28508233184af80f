/**
 * "Describe this image": the context menu on images and the keyboard command both ask the tab's content script to
 * open its panel. Screen-reader users rarely right-click, so the command works on the focused or hovered image.
 */
import { toWire } from '../shared/errors';
import { unwrap, type Request } from '../shared/messages';

export const MENU_ID = 'describe-image';
export const COMMAND = 'describe-image';

async function toTab(tabId: number, msg: Request<'bg-cs-describe'>, frameId?: number): Promise<boolean> {
  try {
    const raw: unknown = await chrome.tabs.sendMessage(tabId, msg, frameId === undefined ? undefined : { frameId });
    return unwrap('bg-cs-describe', raw).opened;
  } catch (err) {
    console.warn('[alt-text] describe: the page did not answer:', toWire(err).message);
    return false;
  }
}

export async function onMenuClick(info: chrome.contextMenus.OnClickData, tab?: chrome.tabs.Tab): Promise<boolean> {
  if (info.menuItemId !== MENU_ID || tab?.id === undefined) return false;
  return toTab(tab.id, { type: 'bg-cs-describe', via: 'menu', srcUrl: info.srcUrl }, info.frameId);
}

export async function onCommand(command: string, tab?: chrome.tabs.Tab): Promise<boolean> {
  if (command !== COMMAND) return false;
  const target = tab?.id !== undefined ? tab : (await chrome.tabs.query({ active: true, lastFocusedWindow: true }))[0];
  if (target?.id === undefined) return false;
  return toTab(target.id, { type: 'bg-cs-describe', via: 'command' });
}

export function registerDescribe(): void {
  chrome.runtime.onInstalled.addListener(() => {
    chrome.contextMenus.removeAll(() => {
      chrome.contextMenus.create({ id: MENU_ID, title: chrome.i18n.getMessage('menuDescribe') || 'Describe this image', contexts: ['image'] });
    });
  });
  chrome.contextMenus.onClicked.addListener((info, tab) => void onMenuClick(info, tab));
  chrome.commands.onCommand.addListener((command, tab) => void onCommand(command, tab));
}
