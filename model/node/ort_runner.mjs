// A long-lived onnxruntime-node process for the Python toolkit: Python has no onnxruntime here, so parity tests
// and the precision report run the exported graphs through this. One JSON request per stdin line, one reply per
// stdout line: {op:"load", path} -> {id}; {op:"run", id, feeds:{name:{dtype,shape,b64}}} -> {outputs:{...}};
// {op:"free", id}. Errors reply {error:{name,message}} and the process keeps serving.
import * as ort from 'onnxruntime-node';
import readline from 'node:readline';

const sessions = new Map();
let nextId = 1;
const TYPED = { float32: Float32Array, int64: BigInt64Array, int32: Int32Array, float64: Float64Array };

function decode({ dtype, shape, b64 }) {
  const buf = Buffer.from(b64, 'base64');
  const Ctor = TYPED[dtype];
  if (!Ctor) throw new TypeError(`unsupported dtype ${dtype}`);
  const copy = new Uint8Array(buf.byteLength);
  copy.set(buf);
  return new ort.Tensor(dtype, new Ctor(copy.buffer), shape);
}

function encode(t) {
  const d = t.data;
  return { dtype: t.type, shape: t.dims, b64: Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64') };
}

async function handle(req) {
  if (req.op === 'load') {
    const opts = { executionProviders: ['cpu'], intraOpNumThreads: req.threads ?? 2, graphOptimizationLevel: 'all' };
    const s = await ort.InferenceSession.create(req.path, opts);
    const id = nextId++;
    sessions.set(id, s);
    return { id, inputs: s.inputNames, outputs: s.outputNames };
  }
  if (req.op === 'run') {
    const s = sessions.get(req.id);
    if (!s) throw new Error(`no session ${req.id}`);
    const feeds = Object.fromEntries(Object.entries(req.feeds).map(([k, v]) => [k, decode(v)]));
    const out = await s.run(feeds);
    return { outputs: Object.fromEntries(Object.entries(out).map(([k, v]) => [k, encode(v)])) };
  }
  if (req.op === 'free') {
    await sessions.get(req.id)?.release();
    sessions.delete(req.id);
    return {};
  }
  throw new Error(`unknown op ${req.op}`);
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  let reply;
  try {
    reply = await handle(JSON.parse(line));
  } catch (e) {
    reply = { error: { name: e?.name ?? 'Error', message: String(e?.message ?? e) } };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
}
