/**
 * Captions for content scripts and extension pages: look in the cache, else ask the offscreen document, then cache.
 * The offscreen queue de-duplicates by key, so the same image is captioned once even when asked again after a
 * worker restart.
 */
import { NoPackError } from '../shared/errors';
import type { CaptionResult, Decoding, ImageSource } from '../shared/messages';
import { activeModel, decodingKey, packRef, type Settings } from '../shared/settings';
import { sha256Hex, type CaptionCache } from './caption-cache';
import { toOffscreen } from './offscreen-doc';

async function imageKey(source: ImageSource): Promise<string> {
  if (source.kind === 'url' && /^https?:/i.test(source.url)) return source.url;
  return `sha256:${await sha256Hex(source.kind === 'url' ? source.url : source.dataUrl)}`;
}

export async function captionImage(
  cache: CaptionCache,
  settings: Settings,
  req: { requestId: string; source: ImageSource; priority: number; packUrl?: string; decoding?: Partial<Decoding> },
): Promise<CaptionResult> {
  // A pack reference (settings.ts packRef): a URL pack keeps its URL, so its cache keys are what they always were.
  const model = activeModel(settings);
  const packUrl = req.packUrl ?? (model ? packRef(model) : null);
  if (!packUrl) throw new NoPackError();
  const decoding: Decoding = {
    strategy: req.decoding?.strategy ?? settings.strategy,
    beams: req.decoding?.beams ?? settings.beams,
    maxTokens: req.decoding?.maxTokens ?? settings.maxTokens,
  };
  // Sent only when chosen: without it the engine uses the pack's own measured weight.
  const rerankWeight = req.decoding?.rerankWeight ?? settings.rerankWeight;
  if (rerankWeight !== null) decoding.rerankWeight = rerankWeight;
  const key = `${packUrl}|${decodingKey(decoding)}|${await imageKey(req.source)}`;
  const hit = await cache.get(key);
  if (hit) return { ...hit, cached: true };
  const generation = cache.generation;
  const value = await toOffscreen({
    type: 'bg-os-caption',
    requestId: req.requestId,
    key,
    source: req.source,
    priority: req.priority,
    packUrl,
    decoding,
    backend: settings.backend,
  });
  // Captions were forgotten meanwhile (a new pack of this model, or "Clear cached captions"): this one may be the old
  // pack's, so it is answered but not kept.
  if (cache.generation === generation) await cache.put(key, value);
  return { ...value, cached: false };
}
