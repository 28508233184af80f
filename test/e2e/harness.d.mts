import type { BrowserContext, Frame, Page, Worker } from 'playwright-core';
export const ROOT: string;
export const TMP: string;
export function buildExtension(o: { outDir: string; packUrl?: string; testHooks?: boolean }): Promise<string>;
export function startServer(o?: { staticDirs?: Record<string, string>; routes?: Record<string, unknown>; port?: number }): Promise<{
  port: number; origin: string; otherOrigin: string; routes: Record<string, unknown>; log: { method: string; path: string; host: string; at: number }[]; close(): Promise<void>;
}>;
export function launchWithExtension(extDir: string, o?: { headless?: boolean; webgpu?: boolean; args?: string[]; debugPort?: boolean }): Promise<{
  context: BrowserContext; extensionId: string; cdpUrl: string | null; serviceWorker(): Worker; close(): Promise<void>;
}>;
export function toyHeldout(packDir?: string): { file: string; caption: string }[];
export function sameCaption(a: string | null | undefined, b: string): boolean;
export function collectImages(frame: Page | Frame): Promise<{ id: string; attrs: Record<string, string>; html: string }[]>;
export function waitFor<T>(fn: () => Promise<T> | T, o?: { timeout?: number; interval?: number; what?: string }): Promise<T>;
export function startNetworkAudit(cdpUrl: string, extensionId: string): Promise<{
  requests: { context: string; url: string; method: string }[]; stop(): Promise<void>;
}>;
