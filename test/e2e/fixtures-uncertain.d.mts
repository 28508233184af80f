export interface UncertainPlan {
  /** out-of-distribution images the engine marks uncertain: never labelled */
  unsure: { id: string; file: string; text: string; kind: string }[];
  /** held-out images captioned correctly and surely: labelled with their true caption */
  sure: { id: string; file: string; caption: string }[];
}
export function buildUncertainFixtures(
  heldout: { file: string; caption: string }[],
  ood: { file: string; text: string; uncertain: boolean; clipScore: number | null; clear: boolean; kind: string }[],
): {
  plan: UncertainPlan;
  routes: Record<string, (req: unknown, url: URL) => { status?: number; type?: string; body: string } | undefined>;
};
