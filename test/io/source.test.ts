import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeNpy } from '../../src/io/npy.js';
import { writeTiffStack } from '../../src/io/tiff.js';
import { MemoryStack, openStack, type StackSource } from '../../src/stack/source.js';
import { expectInputError, expectSameValues, rng, tempDir } from './helpers.js';

const dir = tempDir('source');
const file = (name: string) => path.join(dir, name);

const E = 6;
const H = 37;
const W = 23;
const r = rng(99);
const cube = Float32Array.from({ length: E * H * W }, () => r() * 3000);
const cubeU16 = Uint16Array.from(cube, (v) => Math.round(v));

/** Rows [y0, y0+rows) of every energy of a [E][H][W] cube, energy-major. */
function slice(c: ArrayLike<number>, y0: number, rows: number): Float32Array {
  const out = new Float32Array(E * rows * W);
  for (let e = 0; e < E; e++) for (let i = 0; i < rows * W; i++) out[e * rows * W + i] = c[e * H * W + y0 * W + i];
  return out;
}

/** The whole stack through readRows in tiles of `tile` rows, reassembled into [E][H][W]. */
async function readTiled(s: StackSource, tile: number): Promise<Float32Array> {
  const whole = new Float32Array(s.nE * s.height * s.width);
  for (let y0 = 0; y0 < s.height; y0 += tile) {
    const rows = Math.min(tile, s.height - y0);
    const out = new Float32Array(s.nE * rows * s.width);
    await s.readRows(y0, rows, out);
    for (let e = 0; e < s.nE; e++) whole.set(out.subarray(e * rows * s.width, (e + 1) * rows * s.width), e * s.height * s.width + y0 * s.width);
  }
  return whole;
}

describe('stack sources', () => {
  writeNpy(file('f32.npy'), cube, [E, H, W]);
  writeNpy(file('f64.npy'), Float64Array.from(cube), [E, H, W]);
  writeNpy(file('u16.npy'), cubeU16, [E, H, W]);
  writeTiffStack(file('f32.tif'), cube, W, H, E);
  writeTiffStack(file('u16.TIFF'), cubeU16, W, H, E);

  const cases: [string, string, ArrayLike<number>][] = [
    ['f32.npy', 'float32', cube],
    ['f64.npy', 'float64', cube],
    ['u16.npy', 'uint16', cubeU16],
    ['f32.tif', 'float32', cube],
    ['u16.TIFF', 'uint16', cubeU16],
  ];
  for (const [name, dtype, expected] of cases) {
    it(`${name}: shape, dtype, and sub-ranges equal slices of the whole cube`, async () => {
      const s = await openStack(file(name));
      try {
        expect([s.path, s.nE, s.height, s.width, s.dtype]).toEqual([file(name), E, H, W, dtype]);
        const whole = new Float32Array(E * H * W);
        await s.readRows(0, H, whole);
        expectSameValues(whole, Float32Array.from(expected));
        for (const [y0, rows] of [
          [0, 1],
          [5, 7],
          [H - 3, 3],
          [17, 0],
        ]) {
          const out = new Float32Array(E * rows * W);
          await s.readRows(y0, rows, out);
          expectSameValues(out, slice(whole, y0, rows));
        }
        expectSameValues(await readTiled(s, 8), whole); // tiles with a short last one
      } finally {
        s.close();
      }
    });
  }

  it('MemoryStack serves the same rows', async () => {
    const m = new MemoryStack(cube, E, H, W);
    expect([m.path, m.nE, m.height, m.width, m.dtype]).toEqual(['<memory>', E, H, W, 'float32']);
    const out = new Float32Array(E * 4 * W);
    await m.readRows(30, 4, out);
    expectSameValues(out, slice(cube, 30, 4));
    expectSameValues(await readTiled(m, 10), cube);
    expect(() => new MemoryStack(cube, E, H, W + 1)).toThrow(RangeError);
  });

  it('out-of-range row requests are programming errors (RangeError)', async () => {
    const s = await openStack(file('f32.npy'));
    try {
      await expect(s.readRows(H - 2, 3, new Float32Array(E * 3 * W))).rejects.toThrow(RangeError);
      await expect(s.readRows(-1, 1, new Float32Array(E * W))).rejects.toThrow(RangeError);
      await expect(s.readRows(0, 2, new Float32Array(E * W))).rejects.toThrow(RangeError);
    } finally {
      s.close();
    }
  });
});

describe('openStack errors', () => {
  it('2-D and 5-D arrays are not stacks (4-D is a volume [E,Z,Y,X])', async () => {
    const p2 = file('image.npy');
    writeNpy(p2, new Float32Array(12), [3, 4]);
    await expectInputError(() => openStack(p2), p2, 'expected a 3-D array [E,H,W] or a 4-D volume [E,Z,Y,X], got shape (3, 4)');
    const p5 = file('hyper.npy');
    writeNpy(p5, new Float32Array(48), [2, 3, 2, 2, 2]);
    await expectInputError(() => openStack(p5), p5, 'expected a 3-D array [E,H,W] or a 4-D volume [E,Z,Y,X], got shape (2, 3, 2, 2, 2)');
  });

  it('empty stack', async () => {
    const p = file('empty.npy');
    writeNpy(p, new Float32Array(0), [0, 4, 5]);
    await expectInputError(() => openStack(p), p, 'empty stack');
  });

  it('missing file, unknown extension', async () => {
    const missing = file('missing.npy');
    await expectInputError(() => openStack(missing), missing, 'no such file');
    const missingTif = file('missing.tif');
    await expectInputError(() => openStack(missingTif), missingTif, 'no such file');
    const h5 = file('stack.h5');
    fs.writeFileSync(h5, 'HDF');
    await expectInputError(() => openStack(h5), h5, 'not an HDF5 file (no HDF5 signature)');
    const xyz = file('stack.xyz');
    fs.writeFileSync(xyz, 'xyz');
    await expectInputError(() => openStack(xyz), xyz, "unknown stack format '.xyz' (supported: .npy, .tif, .tiff");
    const bare = file('stack');
    fs.writeFileSync(bare, 'x');
    await expectInputError(() => openStack(bare), bare, "unknown stack format '(no extension)'");
  });

  it('problems inside the file come through as InputError', async () => {
    const trunc = file('trunc.npy');
    fs.writeFileSync(trunc, fs.readFileSync(file('f32.npy')).subarray(0, 500));
    await expectInputError(() => openStack(trunc), trunc, 'truncated .npy');
    const notTiff = file('fake.tif');
    fs.writeFileSync(notTiff, 'not a tiff at all');
    await expectInputError(() => openStack(notTiff), notTiff, 'not a TIFF file');
  });
});
