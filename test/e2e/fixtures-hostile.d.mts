type Held = { file: string; caption: string };
export const INJECT_CAPTION: string;
export function hostilePlan(heldout: Held[]): { plain: Held; forged: Held; authored: Held; stripped: Held; inject: Held; churn: Held[] };
export function buildHostileFixtures(heldout: Held[]): {
  plan: ReturnType<typeof hostilePlan>;
  routes: Record<string, (req: unknown, url: URL) => { status?: number; type?: string; body: string } | undefined>;
};
