/**
 * Compressed, tiled and non-uint16 TIFF pages: every codec, predictor, layout and sample
 * format decodes to the values written (files built by test/helpers/tiff-builder.ts with
 * node:zlib and its own LZW/PackBits encoders), row windows in any order, each compressed
 * byte read once while tiles walk down a page, and damaged or hostile files refused by name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { TiffStack } from '../../src/io/tiff.js';
import { buildTiff, compress, type Sample, type TiffPageSpec } from '../helpers/tiff-builder.js';
import { expectInputError, expectSameValues, rng, tempDir } from './helpers.js';

const dir = tempDir('tiff-decode');
const file = (name: string) => path.join(dir, name);

const W = 37;
const H = 29;
const E = 3;

/** Values that fit every sample type, with runs (so RLE/LZW have work) and noise. */
function values(sample: Sample, seed: number): number[] {
  const r = rng(seed);
  const range: Record<Sample, [number, number]> = {
    uint8: [0, 255],
    int8: [-128, 127],
    uint16: [0, 65535],
    int16: [-32768, 32767],
    uint32: [0, 2 ** 24], // exact in float32
    int32: [-(2 ** 24), 2 ** 24],
    float32: [-1e3, 1e3],
    float64: [-1e3, 1e3],
  };
  const [lo, hi] = range[sample];
  const float = sample.startsWith('float');
  return Array.from({ length: W * H }, (_, i) => {
    if (i % 11 < 4) return float ? 0.5 : lo + 3; // runs
    const v = lo + r() * (hi - lo);
    return float ? Math.fround(v) : Math.round(v);
  });
}

function slice(pages: number[][], y0: number, rows: number): Float32Array {
  const out = new Float32Array(pages.length * rows * W);
  pages.forEach((p, e) => out.set(p.slice(y0 * W, (y0 + rows) * W), e * rows * W));
  return out;
}

async function expectReads(p: string, pages: number[][], dtype: string): Promise<void> {
  const s = await TiffStack.open(p);
  try {
    expect([s.nE, s.height, s.width, s.dtype]).toEqual([pages.length, H, W, dtype]);
    // forwards in tiles of 4 rows, then whole, then windows that go back up the image
    for (let y = 0; y < H; y += 4) {
      const rows = Math.min(4, H - y);
      const out = new Float32Array(pages.length * rows * W);
      await s.readRows(y, rows, out);
      expectSameValues(out, slice(pages, y, rows));
    }
    for (const [y0, rows] of [[0, H], [20, 3], [2, 9], [28, 1], [0, 1]]) {
      const out = new Float32Array(pages.length * rows * W);
      await s.readRows(y0, rows, out);
      expectSameValues(out, slice(pages, y0, rows));
    }
  } finally {
    s.close();
  }
}

const CODECS = [
  [1, 'none'],
  [5, 'LZW'],
  [8, 'Deflate'],
  [32773, 'PackBits'],
] as const;
const LAYOUTS: [string, Partial<TiffPageSpec>][] = [
  ['one strip per page', {}],
  ['strips of 6 rows', { rowsPerStrip: 6 }],
  ['tiles of 16x16', { tile: { width: 16, height: 16 } }],
];

describe('TIFF decoding: codecs x layouts x predictors x sample formats', () => {
  for (const [compression, codec] of CODECS) {
    for (const [layout, extra] of LAYOUTS) {
      for (const [sample, predictor, bigEndian] of [
        ['uint16', 1, false],
        ['uint16', 2, true],
        ['float32', 3, false],
        ['float32', 3, true],
        ['int32', 2, false],
        ['uint8', 2, false],
        ['int16', 1, true],
        ['float64', 1, false],
      ] as const) {
        it(`${codec}, ${layout}, ${sample}, predictor ${predictor}${bigEndian ? ', big-endian' : ''}`, async () => {
          const pages = Array.from({ length: E }, (_, e) => values(sample, 100 * e + compression));
          const name = `${codec}-${layout.replace(/\W+/g, '_')}-${sample}-${predictor}-${bigEndian ? 'be' : 'le'}.tif`;
          fs.writeFileSync(file(name), buildTiff({
            bigEndian,
            pages: pages.map((v) => ({ width: W, height: H, values: v, sample, compression, predictor, ...extra })),
          }));
          await expectReads(file(name), pages, sample);
        });
      }
    }
  }

  it('LZW over a long page fills and clears the code table', async () => {
    const w = 300;
    const h = 200;
    const r = rng(5);
    const v = Array.from({ length: w * h }, () => Math.floor(r() * 65536));
    const p = file('lzw-long.tif');
    fs.writeFileSync(p, buildTiff({ pages: [{ width: w, height: h, values: v, sample: 'uint16', compression: 5 }] }));
    const s = await TiffStack.open(p);
    try {
      const out = new Float32Array(w * h);
      await s.readRows(0, h, out);
      expectSameValues(out, v);
    } finally {
      s.close();
    }
  });
});

describe('TIFF decoding cost and bounds', () => {
  it('a one-strip Deflate page is decoded once while tiles of rows walk down it', async () => {
    const w = 64;
    const h = 120;
    const pages = Array.from({ length: 4 }, (_, e) => Array.from({ length: w * h }, (_, i) => (i * (e + 3)) % 1000));
    const p = file('one-strip.tif');
    const buf = buildTiff({ pages: pages.map((v) => ({ width: w, height: h, values: v, compression: 8 })) });
    fs.writeFileSync(p, buf);
    const s = await TiffStack.open(p);
    const spy = vi.spyOn(fs, 'readSync');
    try {
      const rows = 5;
      for (let y = 0; y < h; y += rows) {
        const out = new Float32Array(4 * rows * w);
        await s.readRows(y, rows, out);
        for (let e = 0; e < 4; e++) expectSameValues(out.subarray(e * rows * w, (e + 1) * rows * w), pages[e].slice(y * w, (y + rows) * w));
      }
      const bytesRead = spy.mock.calls.reduce((n, c) => n + Number((c as unknown[])[3]), 0);
      // Every compressed byte once (24 tiles of rows; decoding per tile would read 24x as much).
      expect(bytesRead).toBeLessThan(buf.length);
    } finally {
      spy.mockRestore();
      s.close();
    }
  });

  it('a page declaring 20000x20000 pixels from a few bytes (bomb) decodes nothing up front and stops at its real data', async () => {
    const p = file('bomb.tif');
    // The strip claims 20000 rows of 20000 uint8 pixels; its Deflate data holds far fewer.
    const zeros = new Uint8Array(20000 * 10);
    const { deflateSync } = await import('node:zlib');
    const payload = new Uint8Array(deflateSync(zeros));
    fs.writeFileSync(p, buildTiff({ pages: [0, 1].map(() => ({ width: 20000, height: 20000, sample: 'uint8' as const, compression: 8, blocks: [payload] })) }));
    expect(fs.statSync(p).size).toBeLessThan(2000);
    const before = process.memoryUsage().arrayBuffers;
    const s = await TiffStack.open(p);
    try {
      expect([s.nE, s.height, s.width]).toEqual([2, 20000, 20000]);
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 2 ** 20);
      const out = new Float32Array(2 * 10 * 20000);
      await s.readRows(0, 10, out);
      expect(out.every((v) => v === 0)).toBe(true);
      await expectInputError(() => s.readRows(10, 1, new Float32Array(2 * 20000)), p, 'cannot read TIFF page 0, strip 0: the compressed data ends after 200000 of 400000000 bytes: truncated or corrupt');
    } finally {
      s.close();
    }
  });

  it('truncated compressed strips are errors naming page and strip', async () => {
    const v = values('uint16', 9);
    for (const [compression, codec] of CODECS.slice(1)) {
      const p = file(`short-${codec}.tif`);
      const packed = compress(new Uint8Array(new Uint16Array(v).buffer), compression);
      fs.writeFileSync(p, buildTiff({ pages: [{ width: W, height: H, sample: 'uint16', compression, blocks: [packed.subarray(0, Math.floor(packed.length / 3))] }] }));
      const s = await TiffStack.open(p);
      try {
        await expectInputError(() => s.readRows(0, H, new Float32Array(W * H)), p, /^\S+: cannot read TIFF page 0, strip 0: the compressed data ends after \d+ of 2146 bytes: truncated or corrupt$/);
      } finally {
        s.close();
      }
    }
  });

  it('damaged LZW codes are an error naming page and strip', async () => {
    const p = file('lzw-bad.tif');
    // clear code, then code 300 (not yet defined)
    const bits = '100000000' + '100101100' + '100000001';
    const bytes = new Uint8Array(4);
    for (let i = 0; i < bits.length; i++) if (bits[i] === '1') bytes[i >> 3] |= 0x80 >> (i & 7);
    fs.writeFileSync(p, buildTiff({ pages: [{ width: 8, height: 4, sample: 'uint8', compression: 5, blocks: [bytes] }] }));
    const s = await TiffStack.open(p);
    try {
      await expectInputError(() => s.readRows(0, 4, new Float32Array(32)), p, 'cannot read TIFF page 0, strip 0: damaged LZW data (code 300 right after a clear code)');
    } finally {
      s.close();
    }
  });
});

describe('TIFF images that are not greyscale stacks', () => {
  const page = (over: Partial<TiffPageSpec>): TiffPageSpec => ({ width: 8, height: 4, values: new Array(32).fill(1), sample: 'uint8', ...over });

  it('1-bit (bilevel) images say so, not "uint0" or "uint1"', async () => {
    const p = file('bilevel.tif');
    fs.writeFileSync(p, buildTiff({ pages: [page({ tags: { 258: [1], 339: [] }, blocks: [new Uint8Array(4)] })] }));
    const e = await expectInputError(() => TiffStack.open(p), p, 'TIFF page 0 is a 1-bit (bilevel, black and white) image');
    expect(e.message).not.toMatch(/uint[01]\b/);
  });

  it('RGB, palette and CMYK images are refused by name', async () => {
    for (const [photometric, spp, what] of [
      [2, 3, 'an RGB colour image (3 samples per pixel)'],
      [3, 1, 'a palette-colour image'],
      [5, 4, 'a CMYK colour image (4 samples per pixel)'],
    ] as const) {
      const p = file(`colour-${photometric}.tif`);
      fs.writeFileSync(p, buildTiff({ pages: [page({ tags: { 262: [photometric], 277: [spp] }, blocks: [new Uint8Array(32 * spp)] })] }));
      await expectInputError(() => TiffStack.open(p), p, `TIFF page 0 is ${what}: expected greyscale intensities`);
    }
  });

  it('greyscale with 2 samples per pixel (grey + alpha) is refused', async () => {
    const p = file('grey-alpha.tif');
    fs.writeFileSync(p, buildTiff({ pages: [page({ tags: { 277: [2] }, blocks: [new Uint8Array(64)] })] }));
    await expectInputError(() => TiffStack.open(p), p, 'TIFF page 0 has 2 samples per pixel');
  });

  it('JPEG and other compressions are refused by name when opened', async () => {
    for (const [code, name] of [[7, 'JPEG'], [50000, 'Zstandard'], [4, 'CCITT Group 4 fax'], [12345, 'code 12345']] as const) {
      const p = file(`comp-${code}.tif`);
      fs.writeFileSync(p, buildTiff({ pages: [page({ tags: { 259: [code] }, blocks: [new Uint8Array(10)] })] }));
      await expectInputError(() => TiffStack.open(p), p, `cannot read TIFF page 0: unsupported compression ${name} (supported: none, LZW, Deflate, PackBits)`);
    }
  });

  it('a looping directory chain through a later page is refused', async () => {
    const p = file('loop3.tif');
    fs.writeFileSync(p, buildTiff({ pages: [page({}), page({}), page({})], loopTo: 1 }));
    await expectInputError(() => TiffStack.open(p), p, 'corrupt TIFF: page 3 points back to an earlier page (directory loop)');
  });

  it('a page that points at itself is refused', async () => {
    const p = file('self.tif');
    fs.writeFileSync(p, buildTiff({ pages: [page({})], loopTo: 0 }));
    await expectInputError(() => TiffStack.open(p), p, 'directory loop');
  });
});
