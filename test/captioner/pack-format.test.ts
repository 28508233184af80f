/**
 * pack.json's "precision" (docs/pack-format.md): the five the toolkit exports are accepted, anything else is a named
 * PackFormatError that says which value was wrong.
 */
import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/captioner/pack-format';
import { PackFormatError } from '../../src/shared/errors';
import { usePackServer } from './helpers/pack-server';
import { writeSyntheticPack } from './helpers/synthetic-pack';

const packs = usePackServer('pack-format-');

describe('pack.json precision', () => {
  const withPrecision = (precision: unknown) => ({ ...writeSyntheticPack(packs.root, 'precision').manifest, precision });

  it.each(['fp32', 'fp16', 'int8', 'q4', 'q8'])('accepts %s', (p) => {
    expect(parseManifest(withPrecision(p)).precision).toBe(p);
  });

  it.each([['q3'], ['FP32'], [''], [null], [16]])('refuses %j by name', (p) => {
    expect(() => parseManifest(withPrecision(p))).toThrow(PackFormatError);
    expect(() => parseManifest(withPrecision(p))).toThrow(`unknown "precision" ${JSON.stringify(p)}`);
  });
});
