import type { BrowserContext, Worker } from 'playwright-core';
export const ROOT: string;
export const TMP: string;
export function buildExtension(o: { outDir: string; packUrl?: string; testHooks?: boolean; env?: Record<string, string> }): Promise<string>;
export function toyTemplateCatalogueEnv(): { CAPTION_CATALOGUE: string };
export function startServer(o?: { staticDirs?: Record<string, string>; routes?: Record<string, unknown>; port?: number }): Promise<{
  port: number;
  origin: string;
  otherOrigin: string;
  routes: Record<string, unknown>;
  log: { method: string; path: string; host: string; at: number }[];
  close(): Promise<void>;
}>;
export interface AuditRequest {
  context: string;
  url: string;
  method: string;
  chainStart?: string;
}
export interface AuditVerdict {
  total: number;
  counts: { own: number; inline: number; pack: number; pageImage: number };
  unexpected: AuditRequest[];
}
/** The audit's verdict on a list of requests: allowed by kind, and the ones nothing allows. */
export function auditVerdict(
  requests: AuditRequest[],
  pageImages: Set<string>,
  extensionId: string,
  audit?: { allow?: string[] },
): AuditVerdict;
export interface LaunchOptions {
  headless?: boolean;
  webgpu?: boolean;
  args?: string[];
  debugPort?: boolean;
  /** Record every request of the extension's contexts; close() throws on any that is not a page image or under `allow`. */
  audit?: { allow: string[]; name?: string } | null;
  /** Reuse this profile directory (a browser restart). */
  profile?: string | null;
}
export interface Launched {
  context: BrowserContext;
  extensionId: string;
  cdpUrl: string | null;
  profile: string;
  serviceWorker(): Worker;
  auditReport(): AuditVerdict | null;
  close(o?: { keepProfile?: boolean }): Promise<void>;
  relaunch(): Promise<Launched>;
}
export function launchWithExtension(extDir: string, o?: LaunchOptions): Promise<Launched>;
export const FUZZ_CATEGORIES: Record<string, 'label' | 'skip' | 'either'>;
export function toyHeldout(packDir?: string): { file: string; caption: string }[];
/** The OOD toy images with the engine's caption and verdict (test/e2e/engine-check.ts: `clear` of the threshold or not). */
export function toyOod(
  packDir?: string,
): { file: string; text: string; uncertain: boolean; clipScore: number | null; clear: boolean; kind: string }[];
export function sameCaption(a: string | null | undefined, b: string): boolean;
export function waitFor<T>(fn: () => Promise<T> | T, o?: { timeout?: number; interval?: number; what?: string }): Promise<T>;
export function startNetworkAudit(
  cdpUrl: string,
  extensionId: string,
): Promise<{
  requests: AuditRequest[];
  stop(): Promise<void>;
}>;
