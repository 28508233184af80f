/**
 * Turn a pack reference (settings' packRef: a URL, `model:<id>` or `folder:<id>`) into where the engine reads the
 * pack from, a PackLocation: the web, or an entry of the pack store. A catalogue model that is not installed is a
 * NoPackError that names it, so the content script labels nothing and the popup says why.
 */
import type { PackLocation } from '../captioner/pack-loader';
import { NoPackError } from '../shared/errors';
import type { CatalogueModel } from '../shared/messages';
import { parsePackRef } from '../shared/settings';

/** What a reference can name: never picked files, which are imported into the store first and named by their id. */
export type ResolvedPack = Exclude<PackLocation, { kind: 'files' }>;

export async function resolvePack(
  ref: string,
  readyStoreId: (modelId: string) => Promise<string | null>,
  catalogue: readonly CatalogueModel[],
): Promise<ResolvedPack> {
  const parsed = parsePackRef(ref);
  if (!parsed)
    throw new NoPackError(
      `"${ref.slice(0, 100)}" is not a model this extension knows. Open the set-up page from the popup and choose a model.`,
    );
  if (parsed.kind === 'url') return { kind: 'url', url: parsed.url };
  if (parsed.kind === 'folder') return { kind: 'stored', storeId: parsed.id };
  const storeId = await readyStoreId(parsed.id);
  if (storeId) return { kind: 'stored', storeId };
  const name = catalogue.find((m) => m.id === parsed.id)?.name ?? parsed.id;
  throw new NoPackError(`${name} is not set up yet. Open the set-up page from the popup and choose "Download and set up".`);
}

/** What identifies the loaded engine: a reinstalled model (new store entry) must be loaded afresh. */
export function packKey(p: ResolvedPack): string {
  return p.kind === 'url' ? `url|${p.url}` : `store|${p.storeId}`;
}
