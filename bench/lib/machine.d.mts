export interface LoadSample {
  load1: number;
  cores: number;
}
export interface LoadVerdict {
  before: number;
  after: number;
  cores: number;
  quiet: boolean;
  line: string;
}
export declare function loadNow(): LoadSample;
export declare function loadVerdict(before: LoadSample, after: LoadSample): LoadVerdict;
export interface Bandwidth {
  gbPerSec: number;
  mb: number;
  reps: number;
}
export declare function readBandwidth(opts?: { mb?: number; reps?: number }): Bandwidth;
