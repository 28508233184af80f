// npm run bench:peers, fp16: our pipeline alone (the peer has no fp16-storage form) (see lib/peers-run.ts).
import { it } from 'vitest';
import { runPrecision } from './lib/peers-run';

it('peers: fp16', () => runPrecision('fp16'), 1_800_000);
