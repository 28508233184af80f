/**
 * How loaded the machine was while a benchmark ran. The machine is shared, so a figure taken under load says little:
 * every benchmark records the 1-minute load average before and after it, and says (prints, and writes in its results)
 * whether the run was quiet enough to quote: at most QUIET_PER_CORE runnable tasks per core when it started. The load
 * after it is recorded too, but it includes the benchmark's own work (a 2-thread run alone takes a 2-core machine to
 * about 2), so it cannot tell other work from ours.
 */
import { cpus, loadavg } from 'node:os';

/** Above this load average per core, a run's figures are not quoted (README, notes). */
const QUIET_PER_CORE = 0.5;

/** The 1-minute load average now, and the core count. */
export function loadNow() {
  return { load1: Math.round(loadavg()[0] * 100) / 100, cores: cpus().length };
}

/**
 * The verdict on a run from its load before and after: `quiet` when the machine was at most QUIET_PER_CORE per core
 * when it started, and a line to print (a warning when it was not quiet).
 */
export function loadVerdict(before, after) {
  const perCore = before.load1 / before.cores;
  const quiet = perCore <= QUIET_PER_CORE;
  const line = `load average ${before.load1} at the start (${perCore.toFixed(2)} per core on ${before.cores} cores), ${after.load1} at the end (its own work included)`;
  return {
    before: before.load1,
    after: after.load1,
    cores: before.cores,
    quiet,
    line: quiet
      ? `${line}: quiet`
      : `WARNING: ${line}, above ${QUIET_PER_CORE} per core: these figures were taken under load; do not quote them`,
  };
}

/**
 * This process's memory read bandwidth on one core, in GB/s: the best of `reps` passes of `Buffer.compare` over two
 * equal buffers of `mb` MB each (glibc's vectorised memcmp reads both, so a pass reads 2 x mb MB). One core because
 * the engine's wasm runs one thread (README, "Threads"); the buffers are far larger than any cache, so this is what a
 * decode step that reads every weight once can at best do. Node has no memory-bandwidth call, and a JS loop over a
 * typed array is bound by the loop, not by memory, so memcmp is the probe. The buffers are filled first so every page
 * is mapped before timing.
 */
export function readBandwidth({ mb = 256, reps = 5 } = {}) {
  const a = Buffer.alloc(mb * 1024 * 1024, 7);
  const b = Buffer.alloc(mb * 1024 * 1024, 7);
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t = process.hrtime.bigint();
    if (Buffer.compare(a, b) !== 0) throw new Error('readBandwidth: buffers differ');
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return { gbPerSec: Math.round(((2 * a.length) / best / 1e9) * 10) / 10, mb, reps };
}
