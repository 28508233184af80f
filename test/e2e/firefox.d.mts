import type { Browser, Page } from 'puppeteer-core';
export const FIREFOX_OWN: RegExp;
export function startRecordingProxy(): Promise<{ port: number; log: string[]; close(): Promise<void> }>;
export interface FirefoxWithExtension {
  browser: Browser;
  /** moz-extension://<uuid>/ of the installed extension */
  base: string;
  /** Console errors and uncaught exceptions of the pages passed to `track`. */
  errors: string[];
  track(page: Page): Page;
  close(): Promise<void>;
}
export function launchFirefox(
  extDir: string,
  o?: { proxyPort?: number; headless?: boolean; grantSites?: boolean; prefs?: Record<string, unknown> },
): Promise<FirefoxWithExtension>;
export function firstRunPage(ff: FirefoxWithExtension, timeout?: number): Promise<Page>;
export function goToOwnPage(page: Page, url: string, timeout?: number): Promise<void>;
