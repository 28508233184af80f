/** Run a numpy snippet over binary files: the reference values of the converter's tests are numpy's, computed in the run. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PYTHON = '/usr/bin/python3';

/**
 * Write each input to a file, run `code` with `ins` (list of paths) and `out` (a path) bound, and return the bytes
 * it wrote to `out`.
 */
export function numpy(code: string, inputs: Uint8Array[]): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'converter-np-'));
  try {
    const ins = inputs.map((b, i) => {
      const p = join(dir, `in${i}.bin`);
      writeFileSync(p, b);
      return p;
    });
    const out = join(dir, 'out.bin');
    const prelude = 'import sys, warnings, numpy as np\nwarnings.simplefilter("ignore")\nins = sys.argv[1:-1]\nout = sys.argv[-1]\n';
    execFileSync(PYTHON, ['-c', prelude + code, ...ins, out], { stdio: ['ignore', 'inherit', 'inherit'] });
    return new Uint8Array(readFileSync(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
