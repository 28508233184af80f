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
