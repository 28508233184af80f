/**
 * "Describe this image": the context menu on images and the keyboard command both ask the tab's content script to
 * open its panel. Screen-reader users rarely right-click, so the command works on the focused or hovered image.
 */
import browser, { type Menus, type Tabs } from 'webextension-polyfill';
import { toWire } from '../shared/errors';
import { unwrap, type Request } from '../shared/messages';

const MENU_ID = 'describe-image';
const COMMAND = 'describe-image';

async function toTab(tabId: number, msg: Request<'bg-cs-describe'>, frameId?: number): Promise<boolean> {
  try {
    const raw: unknown = await browser.tabs.sendMessage(tabId, msg, frameId === undefined ? undefined : { frameId });
    return unwrap('bg-cs-describe', raw).opened;
  } catch (err) {
    console.warn('[alt-text] describe: the page did not answer:', toWire(err).message);
    return false;
  }
}

export async function onMenuClick(info: Menus.OnClickData, tab?: Tabs.Tab): Promise<boolean> {
  if (info.menuItemId !== MENU_ID || tab?.id === undefined) return false;
  return toTab(tab.id, { type: 'bg-cs-describe', via: 'menu', srcUrl: info.srcUrl }, info.frameId);
}

export async function onCommand(command: string, tab?: Tabs.Tab): Promise<boolean> {
  if (command !== COMMAND) return false;
  const target = tab?.id !== undefined ? tab : (await browser.tabs.query({ active: true, lastFocusedWindow: true }))[0];
  if (target?.id === undefined) return false;
  return toTab(target.id, { type: 'bg-cs-describe', via: 'command' });
}

export function registerDescribe(): void {
  // contextMenus: Firefox has it too, as an alias of its own `menus` (which adds menus beyond the page's).
  browser.runtime.onInstalled.addListener(() => {
    browser.contextMenus
      .removeAll()
      .then(() => {
        browser.contextMenus.create({
          id: MENU_ID,
          title: browser.i18n.getMessage('menuDescribe') || 'Describe this image',
          contexts: ['image'],
        });
      })
      .catch((err: unknown) => console.warn('[alt-text] context menu:', toWire(err).message));
  });
  browser.contextMenus.onClicked.addListener((info, tab) => void onMenuClick(info, tab));
  browser.commands.onCommand.addListener((command, tab) => void onCommand(command, tab));
}
