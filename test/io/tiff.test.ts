import fs from 'node:fs';
import zlib from 'node:zlib';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TiffStack, writeTiffFloat32, writeTiffRows, writeTiffStack } from '../../src/io/tiff.js';
import { expectInputError, expectSameValues, rng, tempDir } from './helpers.js';

const dir = tempDir('tiff');
const file = (name: string) => path.join(dir, name);

// Sizes chosen so pages have several strips (64 KiB each) and the last one is short.
const W = 300;
const H = 250;
const E = 4;

function cubeU16(seed: number): Uint16Array {
  const r = rng(seed);
  return Uint16Array.from({ length: W * H * E }, () => Math.floor(r() * 65536));
}
function cubeF32(seed: number): Float32Array {
  const r = rng(seed);
  const c = Float32Array.from({ length: W * H * E }, () => r() * 4 - 1);
  c[5] = NaN; // NaN pixels (masked maps) must survive
  c[6] = -0.5e-30;
  return c;
}

/** The rows [y0, y0+rows) of every page of an [E][H][W] cube, energy-major. */
function slice(cube: ArrayLike<number>, nE: number, h: number, w: number, y0: number, rows: number): Float32Array {
  const out = new Float32Array(nE * rows * w);
  for (let e = 0; e < nE; e++) for (let i = 0; i < rows * w; i++) out[e * rows * w + i] = cube[e * h * w + y0 * w + i];
  return out;
}

// --- a tiny editor for the classic little-endian TIFFs our writer makes, to damage them on purpose
function ifds(buf: Buffer): number[] {
  const out: number[] = [];
  for (let at = buf.readUInt32LE(4); at !== 0; at = buf.readUInt32LE(at + 2 + buf.readUInt16LE(at) * 12)) out.push(at);
  return out;
}
function entryAt(buf: Buffer, page: number, tag: number): number {
  const ifd = ifds(buf)[page];
  for (let i = 0; i < buf.readUInt16LE(ifd); i++) if (buf.readUInt16LE(ifd + 2 + i * 12) === tag) return ifd + 2 + i * 12;
  throw new Error(`tag ${tag} not in page ${page}`);
}
function setInline(buf: Buffer, page: number, tag: number, value: number): void {
  const at = entryAt(buf, page, tag);
  if (buf.readUInt16LE(at + 2) === 3) buf.writeUInt16LE(value, at + 8);
  else buf.writeUInt32LE(value, at + 8);
}

describe('TIFF round trips', () => {
  const u16 = cubeU16(7);
  const f32 = cubeF32(8);
  writeTiffStack(file('u16.tif'), u16, W, H, E);
  writeTiffStack(file('f32.tif'), f32, W, H, E);

  for (const [name, cube, dtype] of [
    ['u16.tif', u16, 'uint16'],
    ['f32.tif', f32, 'float32'],
  ] as const) {
    it(`${dtype}: whole stack and row windows equal the written cube`, async () => {
      const s = await TiffStack.open(file(name));
      try {
        expect([s.nE, s.height, s.width, s.dtype, s.path]).toEqual([E, H, W, dtype, file(name)]);
        const whole = new Float32Array(E * H * W);
        await s.readRows(0, H, whole);
        expectSameValues(whole, Float32Array.from(cube));
        // windows inside one strip, across strip boundaries, and the short last strip
        for (const [y0, rows] of [
          [0, 1],
          [3, 5],
          [200, 50],
          [217, 1],
          [100, 120],
        ]) {
          const out = new Float32Array(E * rows * W);
          await s.readRows(y0, rows, out);
          expectSameValues(out, slice(whole, E, H, W, y0, rows));
        }
      } finally {
        s.close();
      }
    });
  }

  it('single-page float32 (Fiji): 32-bit IEEE samples, read back exactly', async () => {
    const img = Float32Array.from({ length: 17 * 9 }, (_, i) => (i % 5 === 0 ? NaN : i / 3));
    const p = file('map.tif');
    writeTiffFloat32(p, img, 17, 9);
    const buf = fs.readFileSync(p);
    expect(buf.toString('latin1', 0, 2)).toBe('II');
    expect(buf.readUInt16LE(2)).toBe(42);
    expect(buf.readUInt16LE(entryAt(buf, 0, 258) + 8)).toBe(32); // BitsPerSample
    expect(buf.readUInt16LE(entryAt(buf, 0, 339) + 8)).toBe(3); // SampleFormat IEEE float
    expect(ifds(buf)).toHaveLength(1);
    const s = await TiffStack.open(p);
    try {
      expect([s.nE, s.height, s.width, s.dtype]).toEqual([1, 9, 17, 'float32']);
      const out = new Float32Array(17 * 9);
      await s.readRows(0, 9, out);
      expectSameValues(out, img);
    } finally {
      s.close();
    }
  });

  it('Deflate-compressed pages mixed with raw ones', async () => {
    // Small pages have one strip, so its offset and byte count are inline in the IFD.
    const w = 20;
    const h = 12;
    const cube = Float32Array.from({ length: w * h * 3 }, (_, i) => Math.sin(i) * 100);
    const p = file('deflate.tif');
    writeTiffStack(p, cube, w, h, 3);
    let buf = fs.readFileSync(p);
    for (const page of [0, 2]) {
      const at = buf.readUInt32LE(entryAt(buf, page, 273) + 8);
      const packed = zlib.deflateSync(buf.subarray(at, at + w * h * 4));
      const end = buf.length;
      buf = Buffer.concat([buf, packed]);
      setInline(buf, page, 273, end);
      setInline(buf, page, 279, packed.length);
      setInline(buf, page, 259, 8); // Compression: Deflate
    }
    fs.writeFileSync(p, buf);
    const s = await TiffStack.open(p);
    try {
      const out = new Float32Array(3 * 5 * w);
      await s.readRows(4, 5, out);
      expectSameValues(out, slice(cube, 3, h, w, 4, 5));
    } finally {
      s.close();
    }
  });

  it("big-endian ('MM') uncompressed pages", async () => {
    // One page, 3x2 uint16, every value inline in the IFD.
    const w = 3;
    const h = 2;
    const px = [1, 258, 65535, 0, 4096, 7];
    const entries: [number, number, number][] = [
      [256, 4, w],
      [257, 4, h],
      [258, 3, 16],
      [259, 3, 1],
      [262, 3, 1],
      [273, 4, 8],
      [277, 3, 1],
      [278, 4, h],
      [279, 4, w * h * 2],
    ];
    const ifdAt = 8 + w * h * 2;
    const buf = Buffer.alloc(ifdAt + 2 + entries.length * 12 + 4);
    buf.write('MM', 0, 'latin1');
    buf.writeUInt16BE(42, 2);
    buf.writeUInt32BE(ifdAt, 4);
    px.forEach((v, i) => buf.writeUInt16BE(v, 8 + 2 * i));
    buf.writeUInt16BE(entries.length, ifdAt);
    entries.forEach(([tag, type, value], i) => {
      const at = ifdAt + 2 + i * 12;
      buf.writeUInt16BE(tag, at);
      buf.writeUInt16BE(type, at + 2);
      buf.writeUInt32BE(1, at + 4);
      if (type === 3) buf.writeUInt16BE(value, at + 8);
      else buf.writeUInt32BE(value, at + 8);
    });
    const p = file('be.tif');
    fs.writeFileSync(p, buf);
    const s = await TiffStack.open(p);
    try {
      expect([s.nE, s.height, s.width, s.dtype]).toEqual([1, h, w, 'uint16']);
      const out = new Float32Array(w * h);
      await s.readRows(0, h, out);
      expect(Array.from(out)).toEqual(px);
    } finally {
      s.close();
    }
  });

  it('uint8 pages are accepted and read as float32', async () => {
    // Make a uint8 stack from a uint16 one by patching the tags and halving the strips.
    const w = 8;
    const h = 4;
    const p = file('u8.tif');
    writeTiffStack(p, Uint16Array.from({ length: w * h * 2 }, (_, i) => i), w, h, 2);
    const buf = fs.readFileSync(p);
    for (const page of [0, 1]) {
      setInline(buf, page, 258, 8);
      setInline(buf, page, 279, w * h); // one strip: byte count now w*h
    }
    fs.writeFileSync(p, buf);
    const s = await TiffStack.open(p);
    try {
      expect(s.dtype).toBe('uint8');
      const out = new Float32Array(2 * w * h);
      await s.readRows(0, h, out);
      // Expected: the first w*h bytes of each page's strip, as unsigned bytes.
      const expected = [0, 1].flatMap((page) => {
        const at = buf.readUInt32LE(entryAt(buf, page, 273) + 8);
        return Array.from(buf.subarray(at, at + w * h));
      });
      expect(Array.from(out)).toEqual(expected);
      expect(expected.some((v) => v > 0)).toBe(true);
    } finally {
      s.close();
    }
  });
});

describe('TIFF errors', () => {
  const small = Uint16Array.from({ length: 6 * 5 * 3 }, (_, i) => i);
  const make = (name: string) => {
    writeTiffStack(file(name), small, 6, 5, 3);
    return fs.readFileSync(file(name));
  };

  it('missing file', async () => {
    const p = file('missing.tif');
    await expectInputError(() => TiffStack.open(p), p, 'no such file');
  });

  it('not a TIFF', async () => {
    const p = file('junk.tif');
    fs.writeFileSync(p, 'this is a text file pretending to be a TIFF');
    await expectInputError(() => TiffStack.open(p), p, 'not a TIFF file');
    const tiny = file('tiny.tif');
    fs.writeFileSync(tiny, 'II*');
    await expectInputError(() => TiffStack.open(tiny), tiny, 'not a TIFF file');
  });

  it('truncated file: a page directory is past the end', async () => {
    const buf = make('trunc.tif');
    const p = file('trunc-cut.tif');
    fs.writeFileSync(p, buf.subarray(0, ifds(buf)[2] - 10)); // cut inside page 2's data
    await expectInputError(() => TiffStack.open(p), p, /cannot read TIFF page 2: .*truncated/);
  });

  it('truncated file: strip data past the end (never read back as zeros)', async () => {
    const buf = make('strip.tif');
    setInline(buf, 1, 273, buf.length - 4); // page 1's strip starts 4 bytes before the end
    const p = file('strip-bad.tif');
    fs.writeFileSync(p, buf);
    await expectInputError(() => TiffStack.open(p), p, /cannot read TIFF page 1: strip 0 .*past the end of the file/);
  });

  it('directory loop', async () => {
    const buf = make('loop.tif');
    const last = ifds(buf)[2];
    buf.writeUInt32LE(ifds(buf)[0], last + 2 + buf.readUInt16LE(last) * 12); // page 2 -> page 0
    const p = file('loop-bad.tif');
    fs.writeFileSync(p, buf);
    await expectInputError(() => TiffStack.open(p), p, 'directory loop');
  });

  it('unsupported sample formats name the format', async () => {
    for (const [fmt, bits, name] of [
      [3, 16, 'float16'],
      [1, 64, 'uint64'],
      [4, 16, 'SampleFormat=4 with 16 bits'],
    ] as const) {
      const buf = make(`fmt-${name}.tif`);
      setInline(buf, 0, 339, fmt);
      setInline(buf, 0, 258, bits);
      const p = file(`fmt-${name}-bad.tif`);
      fs.writeFileSync(p, buf);
      await expectInputError(() => TiffStack.open(p), p, `unsupported sample format ${name} (supported: uint8, int8, uint16, int16, uint32, int32, float32, float64)`);
    }
  });

  it('pages of different sizes or formats', async () => {
    let buf = make('size.tif');
    setInline(buf, 1, 256, 4);
    let p = file('size-bad.tif');
    fs.writeFileSync(p, buf);
    await expectInputError(() => TiffStack.open(p), p, 'TIFF page 1 is 4x5, page 0 is 6x5');

    buf = make('mixed.tif');
    setInline(buf, 2, 258, 8);
    p = file('mixed-bad.tif');
    fs.writeFileSync(p, buf);
    await expectInputError(() => TiffStack.open(p), p, 'TIFF page 2 is uint8, page 0 is uint16');
  });

  it('more than one sample per pixel', async () => {
    const buf = make('rgb.tif');
    setInline(buf, 0, 277, 3);
    const p = file('rgb-bad.tif');
    fs.writeFileSync(p, buf);
    await expectInputError(() => TiffStack.open(p), p, '3 samples per pixel');
  });

  it('corrupt compressed data fails when read, naming the page', async () => {
    const buf = make('deflate.tif');
    setInline(buf, 1, 259, 8); // claims Deflate, but the strip holds raw bytes
    const p = file('deflate-bad.tif');
    fs.writeFileSync(p, buf);
    const s = await TiffStack.open(p);
    try {
      await expectInputError(() => s.readRows(0, 5, new Float32Array(3 * 5 * 6)), p, 'cannot read TIFF page 1, strip 0: damaged Deflate data');
    } finally {
      s.close();
    }
  });

  it('ImageJ stacks with a single directory are refused, not read as one image', async () => {
    const p = file('imagej.tif');
    writeTiffStack(p, small.subarray(0, 30), 6, 5, 1, { description: 'ImageJ=1.54f\nimages=3\nslices=3\n' });
    await expectInputError(() => TiffStack.open(p), p, 'ImageJ stack of 3 images');
  });

  it('a directory instead of a file', async () => {
    await expectInputError(() => TiffStack.open(dir), dir, 'is a directory');
  });

  it('writing into a missing directory', async () => {
    const p = path.join(dir, 'nope', 'x.tif');
    await expectInputError(() => writeTiffFloat32(p, new Float32Array(4), 2, 2), p, 'cannot write');
  });

  it('out-of-range row requests are programming errors (RangeError)', async () => {
    const s = await TiffStack.open(file('u16.tif'));
    try {
      await expect(s.readRows(H - 1, 2, new Float32Array(E * 2 * W))).rejects.toThrow(RangeError);
      await expect(s.readRows(0, 2, new Float32Array(10))).rejects.toThrow(RangeError);
    } finally {
      s.close();
    }
  });
});

describe('writeTiffRows (a map written from blocks of rows, never held whole)', () => {
  it('gives the bytes writeTiffStack gives, with blocks that cross page boundaries, and refuses blocks out of order', () => {
    const pages = 3, w = 37, h = 29;
    const data = Float32Array.from({ length: pages * w * h }, (_, i) => Math.sin(i) * 1e3);
    const opts = { description: 'ImageJ=1.54f\nimages=3\n', resolution: { x: 2.5, y: 4 } };
    writeTiffStack(file('whole.tif'), data, w, h, pages, opts);
    for (const rows of [1, 7, 29, 30, 87]) {
      writeTiffRows(file(`rows${rows}.tif`), 'float32', w, h, pages, (visit) => {
        const buf = new Float32Array(rows * w); // reused: a block is valid only during its visit
        for (let y = 0; y < pages * h; y += rows) {
          const n = Math.min(rows, pages * h - y);
          buf.set(data.subarray(y * w, (y + n) * w));
          visit(buf.subarray(0, n * w), y);
        }
      }, opts);
      expect(fs.readFileSync(file(`rows${rows}.tif`)).equals(fs.readFileSync(file('whole.tif'))), `blocks of ${rows} rows`).toBe(true);
    }
    expect(() => writeTiffRows(file('bad.tif'), 'float32', w, h, 1, (visit) => visit(data.subarray(w, 2 * w), 1))).toThrow(RangeError);
    expect(() => writeTiffRows(file('short.tif'), 'float32', w, h, 1, (visit) => visit(data.subarray(0, w), 0))).toThrow(/1 rows given, 29 needed/);
  });
});
