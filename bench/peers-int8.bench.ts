// npm run bench:peers, int8: our pipeline against the distilvit-style peer at int8 (q8) (see lib/peers-run.ts).
import { it } from 'vitest';
import { runPrecision } from './lib/peers-run';

it('peers: int8', () => runPrecision('int8'), 1_800_000);
