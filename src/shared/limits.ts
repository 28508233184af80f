/**
 * The one limits table: every bound that a validator enforces (settings' validate(), the message validators, the
 * engine's option checks) or that the engine applies to an image. Each entry says why it has its value. Plain
 * TypeScript, so the engine (which runs in Node too) imports it as well.
 */

/** An inclusive range of integers. */
export interface IntRange {
  readonly min: number;
  readonly max: number;
}

export function inRange(v: unknown, r: IntRange): boolean {
  return Number.isInteger(v) && (v as number) >= r.min && (v as number) <= r.max;
}

/** An inclusive range of finite numbers, fractions included (a weight, not a count). */
export function inRealRange(v: unknown, r: IntRange): boolean {
  return typeof v === 'number' && Number.isFinite(v) && v >= r.min && v <= r.max;
}

const MiB = 2 ** 20;

type DeepReadonly<T> = { readonly [K in keyof T]: T[K] extends object ? DeepReadonly<T[K]> : T[K] };

/** Object.freeze, all the way down; the values keep their types (number, not the literal). */
function deepFreeze<T extends object>(o: T): DeepReadonly<T> {
  for (const v of Object.values(o)) if (typeof v === 'object' && v !== null) deepFreeze(v as object);
  return Object.freeze(o);
}

export const LIMITS = deepFreeze({
  decoding: {
    /**
     * Beam width. 8: ClipCap's reference searches 5 beams; each beam is one more decoder row at every step, so 8 is
     * already 8x the work of greedy. Settings allowed 1..8 while messages and the engine took up to 32; nothing can
     * set more than 8, so the message validators and the engine now refuse more too.
     */
    beams: { min: 1, max: 8 },
    /**
     * Tokens generated per caption. 67: ClipCap's reference generation length (entry_length=67), which model/ also
     * uses for goldens, and far beyond any one-sentence alt text. Settings allowed 1..67 while messages took up to
     * 1024; the engine also stops at the pack's own room (decoder.nPositions - mapper.prefixLength), whichever is less.
     */
    maxTokens: { min: 1, max: 67 },
    /**
     * Beam re-ranking's weight on CLIPScore (rank = score / length + w * clipScore). 0 turns re-ranking off. 10: a
     * clipScore spans 0..2.5 and a length-normalised log-probability a few units, so beyond 10 the language model no
     * longer has a say and the ranking is CLIP's alone.
     */
    rerankWeight: { min: 0, max: 10 },
  },
  settings: {
    /** The text before each caption, in characters. 80: a short phrase ("Appears to be: "); a screen reader reads it before every label. */
    markerChars: 80,
    /** Captions kept in the cache. 100,000 entries of a few hundred bytes (key and caption) stay within tens of MB of IndexedDB; 0 switches caching off. */
    cacheMaxEntries: { min: 0, max: 100_000 },
    /** An imported folder's name, in characters: a pack.json name is a title, never a paragraph. */
    folderNameChars: 200,
  },
  message: {
    /** A request id or a cache key part, in characters: newRequestId makes ~40; 200 leaves room and stops abuse. */
    idChars: 200,
    /** An http(s) URL or pack reference, in characters: 8192 is what common servers accept in a request line. */
    urlChars: 8192,
    /**
     * A data: URL of an image, in characters. The largest image the offscreen document fetches (image.bytes, 32 MiB)
     * is 42.7 MiB in base64; 48 MiB leaves room for the header.
     */
    dataUrlChars: 48 * MiB,
    /** Request ids in one cancel: a page's whole queue, with a wide margin. */
    ids: 10_000,
    /** Queue priority (messages.ts PRIORITY is 0..2); 100 leaves room for more levels. */
    priority: { min: 0, max: 100 },
    /** Labels one tab reports (the popup's count): far more images than any page shows. */
    labelCount: { min: 0, max: 1_000_000 },
    /** Files a page may pick for one install: one per input role of a catalogue model, which has a few. */
    pickedFiles: 8,
    /**
     * A catalogue model id or pack id, in characters (settings' MODEL_ID is built from it). Ids are short slugs
     * ("clipcap-coco"); 64 bounds what a page or a stored setting can make us keep.
     */
    modelIdChars: 64,
  },
  image: {
    /**
     * Bytes of one image the offscreen document fetches. 32 MiB: larger than any photo a page shows, and small enough
     * that a hostile page cannot make the extension hold hundreds of MB.
     */
    bytes: 32 * MiB,
    /**
     * Pixels an image is decoded to; larger ones are downscaled while decoding. 4096 x 4096 is 64 MB of RGBA, and
     * far more than the model sees (its input is a few hundred pixels square).
     */
    pixels: 4096 * 4096,
    /** Milliseconds the offscreen document waits for one image's bytes: a server that stalls must not hold up the page's queue. */
    fetchTimeoutMs: 10_000,
    /** Milliseconds one decode may take before it is given up (a decompression bomb, or a decoder stuck on hostile bytes). */
    decodeTimeoutMs: 20_000,
  },
  queue: {
    /**
     * Distinct images one frame keeps waiting for a caption (content/caption-requests.ts). 100: more than a screenful;
     * beyond it, off-screen images are turned away and offered again later, so a page of 10,000 images stays bounded.
     */
    frameQueued: 100,
    /** Requests one frame has in flight to the worker: 3 keeps the offscreen queue short, so priorities stay current. */
    frameInFlight: 3,
    /** Answers and permanent failures one frame remembers by URL, so a re-added image is not asked again. */
    frameRemembered: 1000,
    /** Jobs the offscreen inference queue holds (offscreen/inference-queue.ts): every frame's in-flight requests, with room. */
    inference: 512,
    /** Results of just-finished jobs it keeps, for requests that were on their way while their job ended. */
    inferenceRemembered: 256,
    /**
     * Images decoded together as rows of one decoder step (offscreen/inference-queue.ts). Each step reads the weights
     * once for all rows: measured on the full-size pack, the time per image and step fell 39% at 2 rows and 54% at 8.
     * 4: most of that gain, while the first label of a batch waits for at most 3 others, and one frame's in-flight
     * requests (frameInFlight) plus another frame's can fill it.
     */
    batchRows: 4,
    /**
     * Milliseconds the idle queue waits for a batch to fill before it starts with fewer rows. A batch's answers go back
     * together and the next requests arrive a few milliseconds apart (content script -> worker -> offscreen document);
     * 25 ms is a few percent of one caption on a full-size model, and nothing next to the seconds a page takes.
     */
    batchGatherMs: 25,
    /**
     * Milliseconds without a finished job after which the queue is idle, and its next job runs alone (no batch, no
     * wait): the first label on a page, or after scrolling to new images, comes as fast as one caption can.
     */
    batchIdleMs: 1000,
    /**
     * A busy page (content/page-activity.ts): at least `changes` watched mutation records within `windowMs`. The
     * storm in test/e2e/load.test makes 1,200-6,000 a second; an ordinary page makes a few a second, and an infinite
     * scroll appends in bursts that end within the window. Background (off-screen) captions wait until `quietMs` after
     * the last busy window, and while it lasts one goes out every `trickleMs`, so a page that never calms down is still
     * described, slowly.
     */
    busyPage: { windowMs: 1000, changes: 200, quietMs: 1000, trickleMs: 5000 },
    /**
     * Milliseconds between the engine page's beats to the background while it has work (offscreen/keep-alive.ts).
     * Firefox unloads an event page after 30 s with no event coming in (a reply still owed does not count), and the
     * engine page framed in it goes too, mid-load or mid-caption. 1000: far inside that window, and inside the short
     * one the Firefox e2e test sets, for one small message a second while busy.
     */
    keepAliveMs: 1000,
    /**
     * Milliseconds the engine page goes on beating after its last work. Without it Firefox unloads the model 30 s after
     * a page is labelled, and the next page waits for it to load again (a full-size pack: tens of seconds, issue 13's
     * restart). 5 minutes covers reading one page and opening the next; after that the memory (about 2 GB at full
     * size) is given back. Chrome's offscreen document keeps its model until the browser closes.
     */
    keepAliveGraceMs: 300_000,
  },
  /**
   * The engine's sandboxed frame (offscreen/engine-link-client.ts). While a call is out, the offscreen document pings
   * the frame every `pingEveryMs`; a frame that leaves a ping unanswered for longer than its limit has died (its process
   * crashed or was killed). Its thread is busy, not dead, while ORT runs one graph (up to a few seconds for a full-size
   * vision tower on a slow machine) or creates a session (up to tens of seconds: the full-size decoder took 4-10 s on
   * 2 loaded cores), so the limits sit well above those. A slow check only delays the verdict: an answer that came late
   * still counts. `crashes` within `crashWindowMs` stop the engine from being restarted (a model that cannot fit in
   * memory would otherwise be loaded again for every image) until the window has passed or the user loads it again.
   *
   * Those limits stay for a thread that hangs. A crash is seen sooner, through the frame's heartbeat
   * (sandbox/heartbeat.ts): a worker in the frame's process that does nothing but answer pings, so it is never busy,
   * and goes silent only when the process is gone (or the machine is starved for seconds on end: the worst a false
   * verdict does is start a new engine). `heartbeatSilentMs` is its limit; `heartbeatStartMs` is how long the frame
   * waits for the worker's first beat before it goes without one (a browser whose policy refuses the worker).
   */
  sandbox: {
    pingEveryMs: 1000,
    silentWhileOpeningMs: 120_000,
    silentMs: 20_000,
    heartbeatSilentMs: 5_000,
    heartbeatStartMs: 10_000,
    connectMs: 30_000,
    crashes: 3,
    crashWindowMs: 10 * 60_000,
  },
  /**
   * The pack store (captioner/idb-pack-store.ts). A complete file is sealed into one Blob, which needs room for the file
   * again beside its chunks for a moment. A store too full for that stays so for a while, and each try reads the whole
   * file once more (seconds for a full-size decoder, at every start); so after a failure it is tried again only after
   * `sealRetryMs`, or once the file is stored anew. 1 day: a user who frees space gets fast starts back the next day.
   */
  store: {
    sealRetryMs: 24 * 60 * 60_000,
  },
});
