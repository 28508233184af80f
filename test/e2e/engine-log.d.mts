export interface EngineLogLine {
  /** Epoch ms. */
  t: number;
  text: string;
}
export function collectEngineLog(cdpUrl: string, extensionId: string): Promise<{ lines(): EngineLogLine[]; stop(): Promise<void> }>;
export function timeline(lines: EngineLogLine[], since: number): { at: number; text: string }[];
