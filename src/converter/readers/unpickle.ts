/**
 * A restricted unpickler for the pickles inside PyTorch checkpoints and TorchScript archives (`data.pkl`).
 *
 * Why hand-written: a pickle is a program. Python's unpickler calls whatever global the stream names, so a
 * checkpoint can run `os.system` when loaded; no npm package reads PyTorch checkpoints safely in a browser. This one
 * interprets only the opcodes torch 1.x/2.x emit (protocol 2, plus FRAME/MEMOIZE/STACK_GLOBAL of protocol 4) and
 * knows only an allow-list of globals, each mapped to a pure function here that builds plain data. Any other global
 * is refused with UnsafeCheckpointError the moment the stream names it; nothing is ever executed or imported.
 *
 * Values: null, booleans, numbers (bigint beyond 2^53), strings, Uint8Array, arrays (lists and tuples), Map (dicts
 * and OrderedDicts), and the classes below (TorchScript objects, storages, tensors).
 */
import { CorruptCheckpointError, UnsafeCheckpointError, UnsupportedCheckpointError } from '../../shared/errors';
import type { DType } from './types';

export type PyValue =
  null | boolean | number | bigint | string | Uint8Array | PyValue[] | Map<PyValue, PyValue> | PyGlobal | PyObject | StorageRef | TensorRef;

/** An allow-listed global, as the stream named it. Calling it (REDUCE, NEWOBJ) runs only the pure builder here. */
export class PyGlobal {
  constructor(
    readonly qualname: string,
    readonly kind: 'function' | 'storage' | 'class' | 'constant',
    readonly storageDtype?: DType,
  ) {}
}

/** An instance of a TorchScript class (`__torch__.*`): BUILD's state dict becomes its attributes. */
export class PyObject {
  attrs = new Map<PyValue, PyValue>();
  /** a BUILD state that is not a dict (a class with __setstate__), kept as it came */
  state: PyValue = null;
  constructor(readonly cls: string) {}
}

/** Persistent id ('storage', StorageClass, key, location, numel): the bytes of zip entry `<root>/data/<key>`. */
export class StorageRef {
  constructor(
    readonly dtype: DType,
    readonly key: string,
    readonly location: string,
    readonly numel: number,
  ) {}
}

export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly strides: number[],
  ) {}
}

// The storage classes torch names in persistent ids, and the dtype of their elements.
const STORAGES: Record<string, DType> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ByteStorage: 'uint8',
  CharStorage: 'int8',
  BoolStorage: 'bool',
};

const FUNCTIONS = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch.jit._pickle.restore_type_tag',
  'torch.jit._pickle.build_intlist',
  'torch.jit._pickle.build_doublelist',
  'torch.jit._pickle.build_boollist',
  'torch.jit._pickle.build_tensorlist',
  'torch.jit._pickle.build_tensor_from_id',
]);

// dtype objects (torch.float16 …) may sit in a checkpoint's metadata; they are inert constants.
const CONSTANTS = new Set(
  ['float32', 'float16', 'bfloat16', 'float64', 'int64', 'int32', 'uint8', 'int8', 'bool'].map((d) => `torch.${d}`),
);

/** The allow-list. Everything else is refused by name, before anything could use it. */
function resolveGlobal(module: string, name: string): PyGlobal {
  const qualname = `${module}.${name}`;
  if (module === 'torch' && name in STORAGES) return new PyGlobal(qualname, 'storage', STORAGES[name]);
  if (FUNCTIONS.has(qualname)) return new PyGlobal(qualname, 'function');
  if (CONSTANTS.has(qualname)) return new PyGlobal(qualname, 'constant');
  // TorchScript's own classes (modules, and C++-bound __torch__.torch.classes.*): data containers here, never code.
  if ((module === '__torch__' || module.startsWith('__torch__.')) && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
    return new PyGlobal(qualname, 'class');
  throw new UnsafeCheckpointError(qualname);
}

const isInt = (v: PyValue): v is number => typeof v === 'number' && Number.isSafeInteger(v);

function intTuple(v: PyValue, what: string): number[] {
  if (!Array.isArray(v) || !v.every(isInt)) throw new CorruptCheckpointError(`a tensor's ${what} is not a tuple of integers`);
  return v;
}

/** REDUCE / NEWOBJ: the pure builder for an allow-listed callable. */
function call(fn: PyValue, args: PyValue, newobj: boolean): PyValue {
  if (!(fn instanceof PyGlobal)) throw new CorruptCheckpointError('the pickle calls something that is not a known global');
  if (!Array.isArray(args)) throw new CorruptCheckpointError(`${fn.qualname} is called without an argument tuple`);
  switch (fn.kind === 'class' ? 'class' : fn.qualname) {
    case 'class':
      return new PyObject(fn.qualname);
    case 'collections.OrderedDict':
      if (args.length !== 0) throw new UnsupportedCheckpointError('an OrderedDict built from arguments');
      return new Map();
    case 'torch._utils._rebuild_tensor':
    case 'torch._utils._rebuild_tensor_v2': {
      const [storage, offset, size, stride] = args;
      if (!(storage instanceof StorageRef) || !isInt(offset))
        throw new CorruptCheckpointError(`${fn.qualname} has a bad storage or offset`);
      const shape = intTuple(size, 'size');
      const strides = intTuple(stride, 'stride');
      if (shape.length !== strides.length) throw new CorruptCheckpointError('a tensor has as many strides as dimensions');
      return new TensorRef(storage, offset, shape, strides);
    }
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
    case 'torch.jit._pickle.restore_type_tag':
    case 'torch.jit._pickle.build_intlist':
    case 'torch.jit._pickle.build_doublelist':
    case 'torch.jit._pickle.build_boollist':
    case 'torch.jit._pickle.build_tensorlist':
      return args[0] ?? null; // the wrapped value as it is: a parameter is its tensor, a typed list its list
    default:
      // build_tensor_from_id reads a tensor table that only RPC/legacy pickles carry; storages and dtypes are not callable.
      throw new UnsupportedCheckpointError(`${newobj ? 'creating' : 'calling'} ${fn.qualname}`);
  }
}

const OP = {
  MARK: 0x28,
  STOP: 0x2e,
  POP: 0x30,
  POP_MARK: 0x31,
  DUP: 0x32,
  BINFLOAT: 0x47,
  BININT: 0x4a,
  BININT1: 0x4b,
  BININT2: 0x4d,
  NONE: 0x4e,
  BINPERSID: 0x51,
  REDUCE: 0x52,
  BINSTRING: 0x54,
  SHORT_BINSTRING: 0x55,
  BINUNICODE: 0x58,
  EMPTY_LIST: 0x5d,
  APPEND: 0x61,
  BUILD: 0x62,
  GLOBAL: 0x63,
  DICT: 0x64,
  APPENDS: 0x65,
  BINGET: 0x68,
  LONG_BINGET: 0x6a,
  LIST: 0x6c,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  SETITEM: 0x73,
  TUPLE: 0x74,
  SETITEMS: 0x75,
  EMPTY_DICT: 0x7d,
  EMPTY_TUPLE: 0x29,
  BINBYTES: 0x42,
  SHORT_BINBYTES: 0x43,
  PROTO: 0x80,
  NEWOBJ: 0x81,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a,
  LONG4: 0x8b,
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINBYTES8: 0x8e,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
  FRAME: 0x95,
  INST: 0x69,
} as const;

export interface UnpickleOptions {
  /** BINPERSID: turn a persistent id (a tuple) into a value; torch uses it for storages */
  persistentLoad(pid: PyValue): PyValue;
}

export function unpickle(data: Uint8Array, options: UnpickleOptions): PyValue {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pos = 0;
  let stack: PyValue[] = [];
  const marks: PyValue[][] = [];
  const memo = new Map<number, PyValue>();

  const need = (n: number) => {
    if (pos + n > data.length) throw new CorruptCheckpointError(`the pickle ends early (at byte ${pos}, ${n} more wanted)`);
    const at = pos;
    pos += n;
    return at;
  };
  const pop = (): PyValue => {
    if (stack.length === 0) throw new CorruptCheckpointError(`the pickle pops an empty stack at byte ${pos}`);
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length === 0) throw new CorruptCheckpointError(`the pickle reads an empty stack at byte ${pos}`);
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    const items = stack;
    const prev = marks.pop();
    if (!prev) throw new CorruptCheckpointError(`the pickle closes a mark it never opened (byte ${pos})`);
    stack = prev;
    return items;
  };
  const str = (n: number) => {
    const at = need(n);
    try {
      return utf8.decode(data.subarray(at, at + n));
    } catch (e) {
      throw new CorruptCheckpointError(`a pickle string at byte ${at} is not UTF-8`, { cause: e });
    }
  };
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) throw new CorruptCheckpointError('a pickle GLOBAL has no end of line');
    const s = String.fromCharCode(...data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const long = (n: number): number | bigint => {
    const at = need(n);
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[at + i]);
    if (data[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const size64 = () => {
    const at = need(8);
    const n = view.getBigUint64(at, true);
    if (n > BigInt(data.length)) throw new CorruptCheckpointError('a pickle length runs past its end');
    return Number(n);
  };
  const setItems = (target: PyValue, items: PyValue[]) => {
    if (items.length % 2) throw new CorruptCheckpointError('a pickle dict has a key without a value');
    const map = target instanceof Map ? target : target instanceof PyObject ? target.attrs : null;
    if (!map) throw new CorruptCheckpointError('the pickle sets items on something that is not a dict');
    for (let i = 0; i < items.length; i += 2) map.set(items[i], items[i + 1]);
  };
  const append = (target: PyValue, items: PyValue[]) => {
    if (!Array.isArray(target)) throw new CorruptCheckpointError('the pickle appends to something that is not a list');
    for (const it of items) target.push(it);
  };

  for (;;) {
    const op = data[need(1)];
    switch (op) {
      case OP.PROTO:
        if (data[need(1)] > 5) throw new UnsupportedCheckpointError(`pickle protocol ${data[pos - 1]}`);
        break;
      case OP.FRAME:
        need(8); // a framing hint for buffered readers; the whole pickle is in memory already
        break;
      case OP.STOP:
        if (stack.length !== 1 || marks.length) throw new CorruptCheckpointError('the pickle stops with a malformed stack');
        return stack[0];
      case OP.MARK:
        marks.push(stack);
        stack = [];
        break;
      case OP.POP:
        pop();
        break;
      case OP.POP_MARK:
        popMark();
        break;
      case OP.DUP:
        stack.push(top());
        break;
      case OP.NONE:
        stack.push(null);
        break;
      case OP.NEWTRUE:
        stack.push(true);
        break;
      case OP.NEWFALSE:
        stack.push(false);
        break;
      case OP.BININT:
        stack.push(view.getInt32(need(4), true));
        break;
      case OP.BININT1:
        stack.push(data[need(1)]);
        break;
      case OP.BININT2:
        stack.push(view.getUint16(need(2), true));
        break;
      case OP.LONG1:
        stack.push(long(data[need(1)]));
        break;
      case OP.LONG4: {
        const n = view.getInt32(need(4), true);
        if (n < 0 || n > 64) throw new UnsupportedCheckpointError(`a ${n}-byte integer in the pickle`);
        stack.push(long(n));
        break;
      }
      case OP.BINFLOAT:
        stack.push(view.getFloat64(need(8), false)); // pickle floats are big-endian
        break;
      case OP.BINUNICODE:
        stack.push(str(view.getUint32(need(4), true)));
        break;
      case OP.SHORT_BINUNICODE:
        stack.push(str(data[need(1)]));
        break;
      case OP.BINUNICODE8:
        stack.push(str(size64()));
        break;
      case OP.SHORT_BINSTRING:
      case OP.BINSTRING: {
        const n = op === OP.SHORT_BINSTRING ? data[need(1)] : view.getInt32(need(4), true);
        if (n < 0) throw new CorruptCheckpointError('a negative string length in the pickle');
        const at = need(n);
        stack.push(Array.from(data.subarray(at, at + n), (c) => String.fromCharCode(c)).join(''));
        break;
      }
      case OP.SHORT_BINBYTES:
      case OP.BINBYTES:
      case OP.BINBYTES8: {
        const n = op === OP.SHORT_BINBYTES ? data[need(1)] : op === OP.BINBYTES ? view.getUint32(need(4), true) : size64();
        const at = need(n);
        stack.push(data.slice(at, at + n));
        break;
      }
      case OP.EMPTY_LIST:
        stack.push([]);
        break;
      case OP.EMPTY_TUPLE:
        stack.push([]);
        break;
      case OP.EMPTY_DICT:
        stack.push(new Map());
        break;
      case OP.LIST:
      case OP.TUPLE: {
        const items = popMark(); // before `stack.push`: popMark swaps `stack` back to the outer one
        stack.push(items);
        break;
      }
      case OP.DICT: {
        const d = new Map<PyValue, PyValue>();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case OP.TUPLE1:
        stack.push([pop()]);
        break;
      case OP.TUPLE2: {
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case OP.TUPLE3: {
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case OP.APPEND: {
        const v = pop();
        append(top(), [v]);
        break;
      }
      case OP.APPENDS: {
        const items = popMark();
        append(top(), items);
        break;
      }
      case OP.SETITEM: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case OP.SETITEMS: {
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case OP.BINPUT:
        memo.set(data[need(1)], top());
        break;
      case OP.LONG_BINPUT:
        memo.set(view.getUint32(need(4), true), top());
        break;
      case OP.MEMOIZE:
        memo.set(memo.size, top());
        break;
      case OP.BINGET:
      case OP.LONG_BINGET: {
        const i = op === OP.BINGET ? data[need(1)] : view.getUint32(need(4), true);
        if (!memo.has(i)) throw new CorruptCheckpointError(`the pickle reads memo ${i}, which was never stored`);
        stack.push(memo.get(i) as PyValue);
        break;
      }
      case OP.GLOBAL: {
        const module = line();
        stack.push(resolveGlobal(module, line()));
        break;
      }
      case OP.STACK_GLOBAL: {
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new CorruptCheckpointError('STACK_GLOBAL without two strings');
        stack.push(resolveGlobal(module, name));
        break;
      }
      case OP.INST: {
        // protocol 0's "call a class": check the name like GLOBAL (so a hostile one is named), then refuse the form.
        const module = line();
        resolveGlobal(module, line());
        throw new UnsupportedCheckpointError('pickle opcode INST');
      }
      case OP.REDUCE: {
        const args = pop();
        stack.push(call(pop(), args, false));
        break;
      }
      case OP.NEWOBJ: {
        const args = pop();
        stack.push(call(pop(), args, true));
        break;
      }
      case OP.BUILD: {
        const state = pop();
        const obj = top();
        if (obj instanceof PyObject) {
          if (state instanceof Map) for (const [k, v] of state) obj.attrs.set(k, v);
          else obj.state = state;
        } else if (!(obj instanceof TensorRef || obj instanceof Map)) {
          // tensors and OrderedDicts may carry a (python attribute) state that says nothing about their bytes
          throw new CorruptCheckpointError('the pickle sets the state of a value that has none');
        }
        break;
      }
      case OP.BINPERSID:
        stack.push(options.persistentLoad(pop()));
        break;
      default:
        throw new UnsupportedCheckpointError(`pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${pos - 1}`);
    }
  }
}
