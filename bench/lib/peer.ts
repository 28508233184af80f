/**
 * The peer: a distilvit-style VisionEncoderDecoder (ViT-B/16 + 6-layer distilGPT-2 with cross-attention, the
 * architecture of the model Firefox uses for PDF alt text) captioning through transformers.js's own image-to-text
 * pipeline, on the same onnxruntime-web build and thread count as our engine.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-web';

// transformers.js must run on the same onnxruntime-web (wasm) as our engine, not onnxruntime-node: it honours this
// global, which has to be set before it is first imported.
(globalThis as Record<symbol, unknown>)[Symbol.for('onnxruntime')] = ort;

export interface Peer {
  dtype: string;
  /** caption one image file with exactly `tokens` new tokens; returns the milliseconds it took */
  caption(path: string, tokens: number): Promise<number>;
  dispose(): Promise<void>;
}

export const peerAvailable = (dir: string, dtype: 'fp32' | 'q8') =>
  existsSync(join(dir, 'config.json')) &&
  existsSync(join(dir, 'onnx', dtype === 'q8' ? 'encoder_model_quantized.onnx' : 'encoder_model.onnx'));

export async function loadPeer(dir: string, dtype: 'fp32' | 'q8', spin = false): Promise<Peer> {
  const tf = await import('@huggingface/transformers');
  tf.env.allowRemoteModels = false;
  tf.env.localModelPath = dirname(dir);
  const pipe = await tf.pipeline('image-to-text', basename(dir), {
    dtype,
    // 'auto' lists the devices of the injected ORT, i.e. none: ORT then uses its default backend, wasm.
    device: 'auto',
    local_files_only: true,
    session_options: { graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: spin ? '1' : '0' } } } },
  } as never);
  return {
    dtype,
    async caption(path, tokens) {
      const t = performance.now();
      await (pipe as unknown as (p: string, o: object) => Promise<unknown>)(path, {
        max_new_tokens: tokens,
        min_new_tokens: tokens,
        do_sample: false,
        num_beams: 1,
      });
      return performance.now() - t;
    },
    dispose: async () => void (await (pipe as unknown as { dispose(): Promise<unknown> }).dispose()),
  };
}
