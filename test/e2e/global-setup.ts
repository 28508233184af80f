// Once per e2e run: serve the fixtures and the toy pack over loopback HTTP, and build the extension (with test hooks)
// pointed at that pack. Tests read .tmp/e2e-env.json; the server lives until teardown.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TMP, buildExtension, startServer, toyHeldout, toyTemplateCatalogueEnv } from './harness.mjs';
import { buildFixtures } from './fixtures.mjs';
import { buildHostileFixtures } from './fixtures-hostile.mjs';
import { writeEngineMisses } from './engine-check';

export default async function setup() {
  const packDir = join(ROOT, 'packs/toy');
  // E2E_PACK swaps the model (e.g. small-random, to debug the harness before the toy pack exists); the caption checks need toy.
  const packId = process.env.E2E_PACK ?? 'toy';
  if (!existsSync(join(ROOT, 'packs', packId, 'pack.json')))
    throw new Error(`The e2e tests need packs/${packId}: run \`npm run pack:toy\` first.`);
  if (packId === 'toy') {
    const misses = await writeEngineMisses(TMP, packDir);
    console.info(
      `e2e: the TS engine misses ${misses.length} held-out toy images in Node; fixtures use only images it and PyTorch caption correctly`,
    );
  }
  const server = await startServer({ staticDirs: { '/packs/': join(ROOT, 'packs'), '/heldout/': join(packDir, 'heldout') } });
  const fx = buildFixtures(toyHeldout(packDir), { packDir, otherOrigin: server.otherOrigin });
  Object.assign(server.routes, fx.routes);
  Object.assign(server.routes, buildHostileFixtures(toyHeldout(packDir)).routes);
  const packUrl = `${server.origin}/packs/${packId}/`;
  const extDir = await buildExtension({ outDir: join(TMP, 'ext-e2e'), packUrl, testHooks: true, env: toyTemplateCatalogueEnv() });
  mkdirSync(TMP, { recursive: true });
  writeFileSync(
    join(TMP, 'e2e-env.json'),
    JSON.stringify(
      {
        origin: server.origin,
        otherOrigin: server.otherOrigin,
        packUrl,
        extDir,
        expected: fx.expected,
        truth: fx.truth,
        untouchedIds: fx.untouchedIds,
      },
      null,
      1,
    ),
  );
  return async () => {
    await server.close();
  };
}
