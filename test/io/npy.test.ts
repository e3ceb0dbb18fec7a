import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NpyFile, parseNpyHeader, readNpy, writeNpy, type NpyArray } from '../../src/io/npy.js';
import { expectInputError, rng, tempDir } from './helpers.js';

const dir = tempDir('npy');
const file = (name: string) => path.join(dir, name);

/** A .npy written by hand, for headers our writer never produces (versions 2/3, odd dtypes). */
function rawNpy(name: string, dict: string, data: Uint8Array, version = 1): string {
  const pre = version === 1 ? 10 : 12;
  let text = dict;
  while ((pre + text.length + 1) % 64 !== 0) text += ' ';
  text += '\n';
  const head = Buffer.alloc(pre);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(head);
  if (version === 1) head.writeUInt16LE(text.length, 8);
  else head.writeUInt32LE(Buffer.byteLength(text, 'utf8'), 8);
  fs.writeFileSync(file(name), Buffer.concat([head, Buffer.from(text, 'utf8'), data]));
  return file(name);
}

const bytes = (a: NpyArray) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('npy round trips', () => {
  const rand = rng(1234);
  const shape = [3, 5, 7];
  const n = 3 * 5 * 7;
  const cases: [string, NpyArray][] = [
    ['float32', Float32Array.from({ length: n }, () => rand() * 200 - 100)],
    ['float64', Float64Array.from({ length: n }, () => rand() * 1e6)],
    ['uint16', Uint16Array.from({ length: n }, () => Math.floor(rand() * 65536))],
    ['uint8', Uint8Array.from({ length: n }, () => Math.floor(rand() * 256))],
    ['int16', Int16Array.from({ length: n }, () => Math.floor(rand() * 65536) - 32768)],
    ['int32', Int32Array.from({ length: n }, () => Math.floor(rand() * 2 ** 32) - 2 ** 31)],
    ['uint32', Uint32Array.from({ length: n }, () => Math.floor(rand() * 2 ** 32))],
  ];
  for (const [dtype, data] of cases) {
    it(`${dtype}: readNpy returns the same typed array, readElements the float32 values`, () => {
      const p = file(`rt-${dtype}.npy`);
      writeNpy(p, data, shape);
      const back = readNpy(p);
      expect(back.dtype).toBe(dtype);
      expect(back.shape).toEqual(shape);
      expect(back.data.constructor).toBe(data.constructor);
      expect(Array.from(back.data)).toEqual(Array.from(data));

      const f = NpyFile.open(p);
      try {
        const out = new Float32Array(n + 3).fill(-1);
        f.readElements(11, 50, out, 2);
        for (let i = 0; i < 50; i++) expect(out[2 + i]).toBe(Math.fround(data[11 + i]));
        expect(out[1]).toBe(-1); // nothing written outside the requested range
        expect(out[52]).toBe(-1);
      } finally {
        f.close();
      }
    });
  }

  it('writes a version 1.0 header padded to 64 bytes and ending in a newline', () => {
    const p = file('hdr.npy');
    writeNpy(p, new Float32Array([1, 2, 3]), [3]);
    const buf = fs.readFileSync(p);
    const h = parseNpyHeader(buf, p);
    expect(buf[6]).toBe(1);
    expect(h.dataOffset % 64).toBe(0);
    expect(buf[h.dataOffset - 1]).toBe(0x0a);
    expect(buf.toString('latin1', 10, h.dataOffset)).toContain("'shape': (3,)");
    expect(buf.length).toBe(h.dataOffset + 12);
  });

  it('reads in many small chunks the same as in one read', () => {
    const data = Float64Array.from({ length: 1000 }, (_, i) => i * 1.5 - 300);
    const p = file('chunks.npy');
    writeNpy(p, data, [1000]);
    const f = NpyFile.open(p);
    const g = NpyFile.open(file('rt-float32.npy'));
    try {
      f.chunkBytes = 24; // 3 float64 per read
      const out = new Float32Array(997);
      f.readElements(3, 997, out, 0);
      expect(Array.from(out)).toEqual(Array.from(data.subarray(3), (v) => Math.fround(v)));

      const whole = new Float32Array(g.nElements);
      g.readElements(0, g.nElements, whole, 0);
      g.chunkBytes = 10; // not a multiple of 4: rounded down to whole elements
      const chunked = new Float32Array(g.nElements);
      g.readElements(0, g.nElements, chunked, 0);
      expect(chunked).toEqual(whole);
    } finally {
      f.close();
      g.close();
    }
  });

  it('reads past 4 GiB with positioned reads (sparse 4.8 GB file, never loaded)', () => {
    // The file is extended sparsely (truncate), so it takes no disk space.
    const shape = [3, 20000, 20000];
    const p = rawNpy('huge.npy', `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`, new Uint8Array(0));
    const dataOffset = fs.statSync(p).size;
    const n = shape[0] * shape[1] * shape[2];
    fs.truncateSync(p, dataOffset + n * 4);
    const tail = new Float32Array([1.25, -2.5, 3.75]);
    const fd = fs.openSync(p, 'r+');
    fs.writeSync(fd, bytes(tail), 0, 12, dataOffset + (n - 3) * 4);
    fs.closeSync(fd);
    const f = NpyFile.open(p);
    try {
      expect(f.nElements).toBe(n);
      const out = new Float32Array(5);
      f.readElements(n - 5, 5, out, 0);
      expect(Array.from(out)).toEqual([0, 0, 1.25, -2.5, 3.75]);
    } finally {
      f.close();
      fs.rmSync(p);
    }
  });

  it('reads format versions 2.0 and 3.0', () => {
    const data = new Float32Array([1.5, -2, 3.25, 4, 5, 6]);
    for (const v of [2, 3]) {
      const p = rawNpy(`v${v}.npy`, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", bytes(data), v);
      const back = readNpy(p);
      expect(back.shape).toEqual([2, 3]);
      expect(Array.from(back.data)).toEqual(Array.from(data));
    }
  });

  it("reads 1-byte data written with '|u1' or '<u1'", () => {
    for (const d of ['|u1', '<u1']) {
      const p = rawNpy(`u1${d[0] === '|' ? 'pipe' : 'lt'}.npy`, `{'descr': '${d}', 'fortran_order': False, 'shape': (3,), }`, new Uint8Array([9, 8, 7]));
      expect(readNpy(p)).toMatchObject({ dtype: 'uint8', shape: [3] });
    }
  });

  it('reads 0-d and empty arrays', () => {
    writeNpy(file('scalar.npy'), new Float32Array([7]), []);
    expect(readNpy(file('scalar.npy'))).toMatchObject({ shape: [], data: new Float32Array([7]) });
    writeNpy(file('empty.npy'), new Float64Array(0), [0, 4]);
    expect(readNpy(file('empty.npy'))).toMatchObject({ shape: [0, 4], dtype: 'float64' });
  });
});

describe('npy errors', () => {
  const f4 = bytes(new Float32Array(6));

  it('truncated data', async () => {
    const src = fs.readFileSync(file('rt-float32.npy'));
    const p = file('truncated.npy');
    fs.writeFileSync(p, src.subarray(0, src.length - 10));
    await expectInputError(() => NpyFile.open(p), p, `truncated .npy: expected ${105 * 4} bytes of data, found ${105 * 4 - 10}`);
    await expectInputError(() => readNpy(p), p, 'truncated .npy');
  });

  it('file shorter than its header', async () => {
    const src = fs.readFileSync(file('rt-float32.npy'));
    for (const len of [4, 9, 40]) {
      const p = file(`short${len}.npy`);
      fs.writeFileSync(p, src.subarray(0, len));
      await expectInputError(() => NpyFile.open(p), p, 'truncated .npy');
    }
    const empty = file('zero.npy');
    fs.writeFileSync(empty, '');
    await expectInputError(() => NpyFile.open(empty), empty, 'truncated .npy');
  });

  it('extra bytes after the data', async () => {
    const p = file('extra.npy');
    fs.writeFileSync(p, Buffer.concat([fs.readFileSync(file('rt-float32.npy')), Buffer.alloc(8)]));
    await expectInputError(() => NpyFile.open(p), p, `expected ${105 * 4} bytes of data, found ${105 * 4 + 8}`);
  });

  it('unsupported dtypes name the dtype and the supported ones', async () => {
    for (const d of ['<c8', '>f4', '>u2', '<i8', '|b1', '|O', '<f2']) {
      const p = rawNpy(`dt${d.replace(/[<>|]/, 'x')}.npy`, `{'descr': '${d}', 'fortran_order': False, 'shape': (6,), }`, f4);
      const e = await expectInputError(() => NpyFile.open(p), p, `unsupported dtype '${d}'`);
      expect(e.message).toContain('supported: float32');
      expect(e.message).toContain('uint16');
    }
    const p = rawNpy('struct.npy', "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", f4);
    await expectInputError(() => NpyFile.open(p), p, 'unsupported dtype: structured');
  });

  it('fortran order', async () => {
    const p = rawNpy('fortran.npy', "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f4);
    await expectInputError(() => NpyFile.open(p), p, 'fortran_order=True is not supported');
  });

  it('not a .npy file, unknown version, damaged header', async () => {
    const junk = file('junk.npy');
    fs.writeFileSync(junk, 'hello, this is not numpy at all');
    await expectInputError(() => NpyFile.open(junk), junk, 'not a .npy file');
    const v9 = rawNpy('v9.npy', "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", f4, 1);
    const buf = fs.readFileSync(v9);
    buf[6] = 9;
    fs.writeFileSync(v9, buf);
    await expectInputError(() => NpyFile.open(v9), v9, 'unsupported .npy format version 9.0');
    const huge = rawNpy('hugeheader.npy', "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", f4, 2);
    const hb = fs.readFileSync(huge);
    hb.writeUInt32LE(0xfffffff0, 8);
    fs.writeFileSync(huge, hb);
    await expectInputError(() => NpyFile.open(huge), huge, 'header length');
    const noShape = rawNpy('noshape.npy', "{'descr': '<f4', 'fortran_order': False, }", f4);
    await expectInputError(() => NpyFile.open(noShape), noShape, "corrupt .npy header (no 'shape')");
    const badShape = rawNpy('badshape.npy', "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", f4);
    await expectInputError(() => NpyFile.open(badShape), badShape, "bad shape entry '-3'");
  });

  it('missing file and directory', async () => {
    const p = file('nope.npy');
    await expectInputError(() => NpyFile.open(p), p, 'no such file');
    await expectInputError(() => readNpy(dir), dir, 'is a directory');
  });

  it('writing into a missing directory', async () => {
    const p = path.join(dir, 'no', 'such', 'dir.npy');
    await expectInputError(() => writeNpy(p, new Float32Array(1), [1]), p, 'cannot write');
  });

  it('out-of-range reads are programming errors (RangeError)', () => {
    const f = NpyFile.open(file('rt-float32.npy'));
    try {
      expect(() => f.readElements(100, 10, new Float32Array(10), 0)).toThrow(RangeError);
      expect(() => f.readElements(0, 10, new Float32Array(5), 0)).toThrow(RangeError);
    } finally {
      f.close();
    }
  });
});

describe('npy headers are Python literals, read as numpy reads them', () => {
  const six = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
  const open = (name: string, dict: string) => {
    const f = NpyFile.open(rawNpy(name, dict, six));
    try {
      return { dtype: f.dtype, shape: f.shape };
    } finally {
      f.close();
    }
  };

  it('a key given twice: the last value wins (descr, shape)', () => {
    // numpy: ast.literal_eval builds the dict, so the later 'descr' replaces the earlier one.
    expect(open('dup-descr.npy', "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), 'descr': '<f4'}")).toEqual({ dtype: 'float32', shape: [6] });
    expect(open('dup-shape.npy', "{'descr': '<f4', 'shape': (3,), 'fortran_order': False, 'shape': (2, 3)}")).toEqual({ dtype: 'float32', shape: [2, 3] });
  });

  it('Python spellings: double quotes, keys in any order, Python 2 longs, no trailing comma, joined strings, escapes', () => {
    expect(open('dq.npy', '{"shape": (2L, 3L), "fortran_order": False, "descr": "<f4"}')).toEqual({ dtype: 'float32', shape: [2, 3] });
    expect(open('join.npy', "{'descr': '<' 'f4', 'fortran_order': False, 'shape': (6,)}")).toEqual({ dtype: 'float32', shape: [6] });
    expect(open('esc.npy', "{'descr': '\\x3cf4', 'fortran_order': False, 'shape': ( 6 , )}")).toEqual({ dtype: 'float32', shape: [6] });
  });

  it('a string that merely contains a key name does not fool the parser', async () => {
    // A regex for 'descr' would find the text inside the other key's string first.
    const p = rawNpy('trick.npy', "{'shape': (6,), 'fortran_order': False, 'descr': '<f4', 'x': \"'descr': '<f8'\"}", six);
    await expectInputError(() => NpyFile.open(p), p, "unexpected key 'x'");
  });

  it('wrong types and malformed literals are named', async () => {
    for (const [name, dict, problem] of [
      ['float-shape.npy', "{'descr': '<f4', 'fortran_order': False, 'shape': (6.0,)}", "bad shape entry '6' (expected a non-negative integer)"],
      ['list-shape.npy', "{'descr': '<f4', 'fortran_order': False, 'shape': [6]}", "'shape' is not a tuple"],
      ['str-fortran.npy', "{'descr': '<f4', 'fortran_order': 'False', 'shape': (6,)}", "'fortran_order' is not True or False"],
      ['int-descr.npy', "{'descr': 4, 'fortran_order': False, 'shape': (6,)}", "'descr' is not a string"],
      ['struct.npy', "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}", 'unsupported dtype: structured array'],
      ['not-dict.npy', "('descr', '<f4')", 'not a dict'],
      ['unclosed.npy', "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)", "expected ',' or '}'"],
      ['unterminated.npy', "{'descr': '<f4, 'fortran_order': False, 'shape': (6,)}", 'corrupt .npy header'],
      ['deep.npy', `{'descr': '<f4', 'fortran_order': False, 'shape': ${'('.repeat(200)}6${')'.repeat(200)}}`, 'nesting too deep'],
      ['huge-dim.npy', "{'descr': '<f4', 'fortran_order': False, 'shape': (123456789012345678901234567890,)}", 'is too large'],
      ['call.npy', "{'descr': '<f4', 'fortran_order': False, 'shape': tuple([6])}", 'corrupt .npy header'],
    ] as const) {
      const p = rawNpy(name, dict, six);
      await expectInputError(() => NpyFile.open(p), p, problem);
    }
  });
});
