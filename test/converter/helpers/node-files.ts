/** Files on disk as the converter's inputs and outputs in Node: a RandomAccess over a file, a PackSink into a folder. */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { PackSink } from '../../../src/converter/convert';
import { parseTemplate, type Template } from '../../../src/converter/template';
import type { RandomAccess } from '../../../src/converter/readers/random-access';

/** Reads parts of a file without loading it (a full-size ClipCap checkpoint is 600 MB). */
export function fileSource(path: string): RandomAccess & { close(): void } {
  const fd = openSync(path, 'r');
  const size = fstatSync(fd).size;
  return {
    size,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > size) throw new RangeError(`read [${offset}, +${length}) of a ${size}-byte file`);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) done += readSync(fd, out, done, length - done, offset + done);
      return out;
    },
    close: () => closeSync(fd),
  };
}

/** Writes each file into `dir` as it is appended, so nothing is held in memory. */
export class DirSink implements PackSink {
  private fds = new Map<string, { fd: number; size: number }>();
  constructor(readonly dir: string) {}
  async append(path: string, offset: number, data: Uint8Array): Promise<void> {
    let f = this.fds.get(path);
    if (!f) {
      const p = join(this.dir, path);
      mkdirSync(dirname(p), { recursive: true });
      f = { fd: openSync(p, 'w'), size: 0 };
      this.fds.set(path, f);
    }
    if (offset !== f.size) throw new Error(`append to ${path} at ${offset}, but it has ${f.size} bytes`);
    let done = 0;
    while (done < data.byteLength) done += writeSync(f.fd, data, done, data.byteLength - done);
    f.size += data.byteLength;
  }
  close(): void {
    for (const f of this.fds.values()) closeSync(f.fd);
    this.fds.clear();
  }
}

export interface TemplateDir {
  dir: string;
  template: Template;
  skeleton(path: string): Promise<Uint8Array>;
  tokenizer: Uint8Array;
}

export function readTemplateDir(dir: string): TemplateDir {
  return {
    dir,
    template: parseTemplate(readFileSync(join(dir, 'template.json'), 'utf8')),
    skeleton: async (p) => new Uint8Array(readFileSync(join(dir, p))),
    tokenizer: new Uint8Array(readFileSync(join(dir, 'tokenizer.json'))),
  };
}

/** Which of `paths` (relative to `root`) do not exist. */
export const missingOf = (root: string, paths: string[]) => paths.filter((p) => !existsSync(join(root, p)));
