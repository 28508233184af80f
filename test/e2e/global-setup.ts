// Once per e2e run: serve the fixtures and the toy pack over loopback HTTP, and build the extension (with test hooks)
// pointed at that pack. Tests read .tmp/e2e-env.json; the server lives until teardown.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT, TMP, buildExtension, startServer, toyHeldout, toyOod, toyTemplateCatalogueEnv } from './harness.mjs';
import { buildFixtures } from './fixtures.mjs';
import { buildHostileFixtures } from './fixtures-hostile.mjs';
import { buildUncertainFixtures } from './fixtures-uncertain.mjs';
import { writeEngineCheck } from './engine-check';

export default async function setup() {
  // E2E_TOY_DIR: a toy pack built somewhere else (a candidate build, before it replaces packs/toy), served in its place.
  const toyDir = process.env.E2E_TOY_DIR ? resolve(process.env.E2E_TOY_DIR) : null;
  const packDir = toyDir ?? join(ROOT, 'packs/toy');
  // E2E_PACK swaps the model (e.g. small-random, to debug the harness before the toy pack exists); the caption checks need toy.
  const packId = process.env.E2E_PACK ?? 'toy';
  if (!existsSync(packId === 'toy' ? join(packDir, 'pack.json') : join(ROOT, 'packs', packId, 'pack.json')))
    throw new Error(`The e2e tests need packs/${packId}: run \`npm run pack:toy\` first.`);
  if (packId === 'toy') {
    const check = await writeEngineCheck(TMP, packDir);
    const gated = check.ood.filter((o) => o.uncertain).length;
    console.info(
      `e2e: the TS engine gets ${check.wrong.length} held-out toy images wrong in Node and CLIP marks ${check.uncertain.length} uncertain; fixtures use only images it and PyTorch caption correctly and surely` +
        (check.textTower
          ? `; it marks ${gated} of ${check.ood.length} out-of-distribution images uncertain`
          : ' (the pack has no text tower)'),
    );
  }
  const server = await startServer({
    staticDirs: {
      ...(toyDir ? { '/packs/toy/': toyDir } : {}),
      '/packs/': join(ROOT, 'packs'),
      '/heldout/': join(packDir, 'heldout'),
      '/ood/': join(packDir, 'ood'),
    },
  });
  const fx = buildFixtures(toyHeldout(packDir), { packDir, otherOrigin: server.otherOrigin });
  Object.assign(server.routes, fx.routes);
  Object.assign(server.routes, buildHostileFixtures(toyHeldout(packDir)).routes);
  const uncertain = buildUncertainFixtures(toyHeldout(packDir), toyOod(packDir));
  Object.assign(server.routes, uncertain.routes);
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
        uncertain: uncertain.plan,
      },
      null,
      1,
    ),
  );
  return async () => {
    await server.close();
  };
}
