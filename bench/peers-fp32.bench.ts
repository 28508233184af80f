// npm run bench:peers, fp32: our pipeline against the distilvit-style peer at fp32 (see lib/peers-run.ts).
import { it } from 'vitest';
import { runPrecision } from './lib/peers-run';

it('peers: fp32', () => runPrecision('fp32'), 1_800_000);
