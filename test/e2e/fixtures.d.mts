export function buildFixtures(
  heldout: { file: string; caption: string }[],
  o: { packDir: string; otherOrigin: string; ood?: string[] },
): {
  expected: Record<string, string>;
  truth: Record<string, string>;
  untouchedIds: string[];
  routes: Record<string, (req: unknown, url: URL) => { status?: number; type?: string; body: string } | undefined>;
};
