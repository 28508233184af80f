// Once per e2e run: serve the fixtures and the toy pack over loopback HTTP, and build the extension (with test hooks)
// pointed at that pack. Tests read .tmp/e2e-env.json; the server lives until teardown.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TMP, buildExtension, startServer, toyHeldout } from './harness.mjs';
import { buildFixtures } from './fixtures.mjs';
import { buildHostileFixtures } from './fixtures-hostile.mjs';
import { writeEngineMisses } from './engine-check';

export default async function setup() {
  const packDir = join(ROOT, 'packs/toy');
  // E2E_PACK swaps the model (e.g. small-random, to debug the harness before the toy pack exists); the caption checks need toy.
  const packId = process.env.E2E_PACK ?? 'toy';
  if (!existsSync(join(ROOT, 'packs', packId, 'pack.json'))) throw new Error(`The e2e tests need packs/${packId}: run \`npm run pack:toy\` first.`);
  if (packId === 'toy') {
    const misses = await writeEngineMisses(TMP, packDir);
    console.info(`e2e: the TS engine misses ${misses.length} held-out toy images in Node; fixtures use only images it and PyTorch caption correctly`);
  }
  const server = await startServer({ staticDirs: { '/packs/': join(ROOT, 'packs'), '/heldout/': join(packDir, 'heldout') } });
  const fx = buildFixtures(toyHeldout(packDir), { packDir, otherOrigin: server.otherOrigin });
  Object.assign(server.routes, fx.routes);
  Object.assign(server.routes, buildHostileFixtures(toyHeldout(packDir)).routes);
  const packUrl = `${server.origin}/packs/${packId}/`;
  // The build ships the graph template of every catalogue model; the full-size ones exist only after
  // `bash scripts/packs.sh --release`. This build uses a pack address, so its catalogue only has to list models: the
  // bundled one, on the toy template (no test installs from it; install.test.ts builds its own).
  const catalogue = JSON.parse(readFileSync(join(ROOT, 'src/shared/catalogue.json'), 'utf8')) as { models: { template: string }[] };
  for (const m of catalogue.models) m.template = 'toy-fp32';
  mkdirSync(TMP, { recursive: true });
  const catalogueFile = join(TMP, 'e2e-catalogue.json');
  writeFileSync(catalogueFile, JSON.stringify(catalogue));
  const extDir = await buildExtension({ outDir: join(TMP, 'ext-e2e'), packUrl, testHooks: true, env: { CAPTION_CATALOGUE: catalogueFile } });
  mkdirSync(TMP, { recursive: true });
  writeFileSync(
    join(TMP, 'e2e-env.json'),
    JSON.stringify({ origin: server.origin, otherOrigin: server.otherOrigin, packUrl, extDir, expected: fx.expected, truth: fx.truth, untouchedIds: fx.untouchedIds }, null, 1),
  );
  return async () => {
    await server.close();
  };
}
