/** Summary statistics and formatting shared by the benchmarks. */
export interface Stat {
  median: number;
  min: number;
  max: number;
  p10: number;
  p90: number;
  n: number;
}

export function stat(xs: number[]): Stat {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.round(p * (s.length - 1))))];
  return { median: q(0.5), min: s[0], max: s[s.length - 1], p10: q(0.1), p90: q(0.9), n: s.length };
}

export const fmt = (x: Stat, unit = 'ms') => `${x.median.toFixed(1)} ${unit} (p10 ${x.p10.toFixed(1)}, p90 ${x.p90.toFixed(1)}, n=${x.n})`;

export const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;
