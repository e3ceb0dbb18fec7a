import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkEnergyCount, readEnergies } from '../../src/io/energies.js';
import { writeNpy } from '../../src/io/npy.js';
import { expectInputError, tempDir } from './helpers.js';

const dir = tempDir('energies');
function text(name: string, body: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, body);
  return p;
}

describe('readEnergies: accepted inputs', () => {
  it('one value per line, with comments, blank lines and CRLF', () => {
    const p = text('plain.txt', '# Ni K-edge scan\r\n\r\n8300.0\r\n8310.5\r\n  8333  \r\n# fine steps\r\n8334e0\r\n');
    const e = readEnergies(p);
    expect(e).toBeInstanceOf(Float64Array);
    expect(Array.from(e)).toEqual([8300, 8310.5, 8333, 8334]);
  });

  it('first column of a CSV with a header row, and of a whitespace table', () => {
    const csv = text('table.csv', 'energy,mu,i0\n7100.5,0.1,5\n7101.25,0.2,6\n7102,0.3,7\n');
    expect(Array.from(readEnergies(csv))).toEqual([7100.5, 7101.25, 7102]);
    const ws = text('table.dat', '  530.1\t12  13\n530.2   14 15\n530.35 16 17\n');
    expect(Array.from(readEnergies(ws))).toEqual([530.1, 530.2, 530.35]);
  });

  it("unit 'keV' multiplies by 1000", () => {
    const p = text('kev.txt', '8.333\n8.334\n8.3355\n');
    const e = readEnergies(p, { unit: 'keV' });
    expect(e[0]).toBeCloseTo(8333, 9);
    expect(e[1]).toBeCloseTo(8334, 9);
    expect(e[2]).toBeCloseTo(8335.5, 9);
    expect(Array.from(readEnergies(p, { unit: 'eV' }))).toEqual([8.333, 8.334, 8.3355]);
  });

  it('1-D .npy, float64 and float32', () => {
    const grid = Float64Array.from({ length: 50 }, (_, i) => 8300 + i * 0.7);
    const p64 = path.join(dir, 'grid64.npy');
    writeNpy(p64, grid, [50]);
    expect(readEnergies(p64)).toEqual(grid);
    const p32 = path.join(dir, 'grid32.npy');
    writeNpy(p32, Float32Array.from(grid), [50]);
    expect(Array.from(readEnergies(p32, { unit: 'eV' }))).toEqual(Array.from(Float32Array.from(grid)));
    const kev = readEnergies(p64, { unit: 'keV' });
    expect(kev[49]).toBeCloseTo(grid[49] * 1000, 6);
  });
});

describe('readEnergies: errors name the file, the line and the values', () => {
  it('non-numeric value', async () => {
    const p = text('abc.txt', '# header\n8300\n8301\n8302\n8303\n8304\nabc\n8306\n');
    await expectInputError(() => readEnergies(p), p, "line 7: 'abc' is not a number");
    const hex = text('hex.txt', '8300\n0x20D0\n');
    await expectInputError(() => readEnergies(hex), hex, "line 2: '0x20D0' is not a number");
    const csv = text('bad.csv', 'energy,mu\n8300,1\n83O1,2\n');
    await expectInputError(() => readEnergies(csv), csv, "line 3: '83O1' is not a number");
  });

  it('NaN and Infinity', async () => {
    for (const bad of ['NaN', 'nan', 'Infinity', '-inf']) {
      const p = text(`nonfinite-${bad}.txt`, `8300\n8301\n${bad}\n`);
      await expectInputError(() => readEnergies(p), p, `line 3: '${bad}' is not a finite number`);
    }
    const big = text('overflow.txt', '8300\n1e400\n');
    await expectInputError(() => readEnergies(big), big, "line 2: '1e400' is not a finite number");
    const npy = path.join(dir, 'nan.npy');
    writeNpy(npy, new Float64Array([1, NaN, 3]), [3]);
    await expectInputError(() => readEnergies(npy), npy, 'index 1: NaN is not a finite number');
  });

  it('empty file, or only comments', async () => {
    const empty = text('empty.txt', '');
    await expectInputError(() => readEnergies(empty), empty, 'no energies found');
    const comments = text('comments.txt', '# nothing here\n\n   \n# still nothing\n');
    await expectInputError(() => readEnergies(comments), comments, 'no energies found');
    const npy = path.join(dir, 'empty.npy');
    writeNpy(npy, new Float64Array(0), [0]);
    await expectInputError(() => readEnergies(npy), npy, 'no energies');
  });

  it('not strictly increasing: the line and both values', async () => {
    const lines = ['8330.0', '8331.0', '8332.0', '8333.0', '8334.0', '8335.0', '8336.0', '8337.0', '8338.0', '8339.0', '8341.0', '8340.0'];
    const p = text('order.txt', lines.join('\n') + '\n');
    await expectInputError(() => readEnergies(p), p, 'energies not strictly increasing at line 12: 8340.0 after 8341.0');
    const dup = text('dup.txt', '# c\n100\n101\n101\n');
    await expectInputError(() => readEnergies(dup), dup, 'energies not strictly increasing at line 4: 101 after 101');
    const npy = path.join(dir, 'order.npy');
    writeNpy(npy, new Float64Array([1, 2, 3, 2.5]), [4]);
    await expectInputError(() => readEnergies(npy), npy, 'energies not strictly increasing at index 3: 2.5 after 3');
  });

  it('.npy that is not 1-D', async () => {
    const p = path.join(dir, 'grid2d.npy');
    writeNpy(p, new Float64Array(6), [2, 3]);
    await expectInputError(() => readEnergies(p), p, 'expected a 1-D array of energies, got shape (2, 3)');
  });

  it('missing file, binary file, unknown unit', async () => {
    const p = path.join(dir, 'missing.txt');
    await expectInputError(() => readEnergies(p), p, 'no such file');
    const bin = text('binary.txt', '8300\n\0\0\x01');
    await expectInputError(() => readEnergies(bin), bin, 'binary file');
    const ok = text('ok.txt', '1\n2\n');
    await expectInputError(() => readEnergies(ok, { unit: 'meV' as 'eV' }), ok, "unknown energy unit 'meV'");
  });
});

describe('checkEnergyCount', () => {
  it('passes when counts agree, names both files when not', async () => {
    expect(() => checkEnergyCount(new Float64Array(101), 101, 'e.txt', 'stack.tif')).not.toThrow();
    await expectInputError(() => checkEnergyCount(new Float64Array(100), 101, 'e.txt', 'stack.tif'), 'e.txt', 'energy count 100 != stack depth 101 (stack.tif)');
  });
});
