/** The final beams of the engine's beam search from a mapper prefix, with golden.json's decoding settings (no captioner
 * in between): what the text tower's tests score and re-rank themselves. */
import { beamDecode, type DecodeResult } from '../../../src/captioner/decoding';
import type { PackManifest } from '../../../src/captioner/pack-format';
import { KvDecoder, type Ort, type PackSessions } from '../../../src/captioner/sessions';
import type { Golden } from './packs';

export async function goldenBeams(
  ort: Ort,
  s: PackSessions,
  m: PackManifest,
  prefix: Float32Array,
  decoding: Golden['decoding'],
): Promise<DecodeResult[]> {
  const dec = new KvDecoder(ort, s.decoder, m);
  const { beams } = await beamDecode(await dec.prefill(prefix, 1), dec, {
    vocabSize: m.decoder.vocabSize,
    stop: m.tokens.stop,
    eos: m.tokens.eos,
    maxTokens: decoding.maxTokens,
    beams: decoding.beams,
    lengthNormalize: true,
  });
  dec.release();
  return beams;
}
