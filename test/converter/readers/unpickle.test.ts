/**
 * The restricted unpickler on plain values (ints of every width, floats, strings, tuples, nested and shared
 * containers, memo past 256 entries) pickled by Python at protocols 2 and 4; and hostile streams written by hand.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { UnsafeCheckpointError, UnsupportedCheckpointError } from '../../../src/shared/errors';
import { unpickle, type PyValue } from '../../../src/converter/readers/unpickle';

/** Python's view of the value: dicts as objects, tuples and lists as arrays. */
function plain(v: PyValue): unknown {
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), plain(x)]));
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

const noPersistent = {
  persistentLoad: () => {
    throw new Error('no persistent ids here');
  },
};
const bytes = (...parts: Array<string | number[]>) =>
  new Uint8Array(parts.flatMap((p) => (typeof p === 'string' ? [...p].map((c) => c.charCodeAt(0)) : p)));

describe('unpickle', () => {
  it.each([2, 4])('plain values at protocol %i equal what Python pickled', (protocol) => {
    const script = `
import json, pickle
value = {"ints": [0, 1, 255, 256, 65535, 65536, -1, -129, 2 ** 31, -(2 ** 31) - 1, 2 ** 40, -(2 ** 52)],
         "floats": [0.0, -1.5, 1e-300, 3.141592653589793], "strs": ["", "\\u00fc\\u20ac\\U0001F600", "x" * 300], "none": None,
         "bools": [True, False], "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)], "nested": {"a": {"b": [[]]}},
         "shared": [[7, 8]] * 2, "many": list(range(300)), "big": [2 ** 70, -(2 ** 70), 2 ** 63 - 1]}
print(json.dumps({"hex": pickle.dumps(value, protocol=${protocol}).hex(), "value": {**value, "big": [str(b) for b in value["big"]]}}))`;
    const { hex, value } = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' })) as {
      hex: string;
      value: Record<string, unknown>;
    };
    const got = plain(unpickle(Uint8Array.from(Buffer.from(hex, 'hex')), noPersistent)) as Record<string, unknown>;
    expect((got.big as bigint[]).map(String)).toEqual(value.big);
    expect({ ...got, big: null }).toEqual({ ...value, big: null });
  });

  it('refuses a hostile global before any call, whatever the opcode that names it', () => {
    // GLOBAL 'os system', the argument tuple, REDUCE: what pickle.dumps writes for a __reduce__ to os.system
    const reduce = bytes([0x80, 0x02], 'cos\nsystem\n', 'X', [2, 0, 0, 0], 'id', [0x85], 'R.');
    expect(() => unpickle(reduce, noPersistent)).toThrow(UnsafeCheckpointError);
    expect(() => unpickle(reduce, noPersistent)).toThrow(/os\.system/);
    const stack = bytes([0x80, 0x04, 0x8c, 8], 'builtins', [0x8c, 4], 'exec', [0x93], '.');
    expect(() => unpickle(stack, noPersistent)).toThrow(/builtins\.exec/);
    // INST (protocol 0's call) names its class too
    expect(() => unpickle(bytes('(iposix\nsystem\n.'), noPersistent)).toThrow(UnsafeCheckpointError);
    // torch's own names outside the allow-list are refused too (torch.load would call them)
    expect(() => unpickle(bytes([0x80, 0x02], 'ctorch\nload\n.'), noPersistent)).toThrow(/torch\.load/);
  });

  it('refuses what it does not implement, by name', () => {
    expect(() => unpickle(bytes([0x80, 0x02, 0xff]), noPersistent)).toThrow(UnsupportedCheckpointError);
    expect(() => unpickle(bytes([0x80, 0x02], 'ctorch._utils\n_rebuild_qtensor\n.'), noPersistent)).toThrow(UnsafeCheckpointError);
    expect(() => unpickle(bytes([0x80, 0x02], 'ctorch.jit._pickle\nbuild_tensor_from_id\n', 'K', [1, 0x85], 'R.'), noPersistent)).toThrow(
      UnsupportedCheckpointError,
    );
  });
});
