/**
 * HDF5 stacks against an independent writer: files in the FXI, APS data exchange and NeXus
 * NXstxm layouts (and a plain file with one 3-D dataset) written by h5py
 * (test/helpers/h5_layouts.py), read through h5wasm, must give maps byte-identical to the
 * same data given as .npy (with the flat and dark fields as .npy, averaged by numpy). Bad
 * files give one clear error line, exit code 2, and no output folder.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from './helpers.js';
import { openStack } from '../../src/stack/source.js';
import { readNpy } from '../../src/io/npy.js';
import { Hdf5Stack, SLICE_BYTES } from '../../src/io/hdf5.js';

const PYTHON = '/usr/bin/python3';
const dir = tempDir('hdf5');

beforeAll(() => {
  execFileSync(PYTHON, [path.join(__dirname, '../helpers/h5_layouts.py'), dir], { stdio: 'pipe' });
});

const f = (name: string) => path.join(dir, name);

/** Every .npy and .tif file of two output folders, byte for byte. */
function expectSameMaps(a: string, b: string): void {
  const files = fs.readdirSync(a).filter((n) => n.endsWith('.npy') || n.endsWith('.tif')).sort();
  expect(files.length).toBeGreaterThan(10);
  expect(fs.readdirSync(b).filter((n) => n.endsWith('.npy') || n.endsWith('.tif')).sort()).toEqual(files);
  for (const n of files) expect(Buffer.compare(fs.readFileSync(path.join(a, n)), fs.readFileSync(path.join(b, n))), n).toBe(0);
}

async function edge(args: string[], out: string) {
  const r = await runCli(['edge', ...args, '--backend', 'cpu', '--threads', '1', '--mask-sigma', '3', '--out', out]);
  expect(r.code, r.err).toBe(0);
  return JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
}

describe('HDF5 layouts written by h5py give the same maps as .npy', () => {
  test('FXI: img_xanes (gzip, chunked), 2 flat and 3 dark frames averaged, X_eng in keV, pixel size text', async () => {
    const s = await edge([f('fxi.h5')], f('out-fxi-h5'));
    // The same pixel size, so that the TIFFs' ImageJ metadata (µm calibration) match too.
    const px = ['--pixel-size', String(s.inputs.read.pixel_size_um.x)];
    await edge([f('fxi_stack.npy'), '--energies', f('fxi_energies.npy'), '--flat', f('fxi_flat.npy'), '--dark', f('fxi_dark.npy'), ...px], f('out-fxi-npy'));
    expectSameMaps(f('out-fxi-h5'), f('out-fxi-npy'));
    const read = s.inputs.read;
    expect(read.format).toBe('hdf5');
    expect(read.layout.name).toBe('fxi');
    expect(read.layout.datasets).toMatchObject({ data: '/img_xanes', flat: '/img_bkg', dark: '/img_dark' });
    expect(read.flat_frames).toBe(2);
    expect(read.dark_frames).toBe(3);
    expect(read.pixel_size_um.x).toBeCloseTo(0.0213, 12);
    expect(s.inputs.energy_range_eV).toEqual([8233, 8463]);
  });

  test('FXI with --no-flat reads raw counts (same as the .npy without flat/dark)', async () => {
    const s = await edge([f('fxi.h5'), '--no-flat'], f('out-fxi-noflat'));
    await edge([f('fxi_stack.npy'), '--energies', f('fxi_energies.npy'), '--pixel-size', String(s.inputs.read.pixel_size_um.x)], f('out-fxi-raw'));
    expectSameMaps(f('out-fxi-noflat'), f('out-fxi-raw'));
  });

  test('APS data exchange: float32, one white per energy, one dark broadcast, energy @units eV', async () => {
    const s = await edge([f('aps.h5')], f('out-aps-h5'));
    await edge([f('aps_stack.npy'), '--energies', f('aps_energies.npy'), '--flat', f('aps_flat.npy'), '--dark', f('aps_dark.npy'), '--pixel-size', String(s.inputs.read.pixel_size_um.x)], f('out-aps-npy'));
    expectSameMaps(f('out-aps-h5'), f('out-aps-npy'));
    expect(s.inputs.read.layout.name).toBe('aps-dxchange');
    expect(s.inputs.read.flat_frames).toBe(s.inputs.shape.energies); // one per energy
    expect(s.inputs.read.pixel_size_um.x).toBeCloseTo(0.65, 12);
  });

  test('NeXus NXstxm: NXdata @signal/@axes, float64 optical density, energy in J', async () => {
    const s = await edge([f('nxstxm.h5')], f('out-nx-h5'));
    await edge([f('nxstxm_stack.npy'), '--energies', f('nxstxm_energies.npy'), '--pixel-size', String(s.inputs.read.pixel_size_um.x)], f('out-nx-npy'));
    expectSameMaps(f('out-nx-h5'), f('out-nx-npy'));
    expect(s.inputs.read.layout.name).toBe('nexus');
    expect(s.inputs.read.layout.datasets.data).toBe('/entry1/counter0/data');
    expect(s.inputs.read.pixel_size_um.x).toBeCloseTo(0.04, 12);
  });

  test('file.h5#/path with int32 data and --energies; the only 3-D dataset is found without the path', async () => {
    await edge([`${f('plain.h5')}#/scan/stack`, '--energies', f('plain_energies.npy')], f('out-plain-path'));
    await edge([f('plain.h5'), '--energies', f('plain_energies.npy')], f('out-plain-auto'));
    await edge([f('plain_stack.npy'), '--energies', f('plain_energies.npy')], f('out-plain-npy'));
    expectSameMaps(f('out-plain-path'), f('out-plain-npy'));
    expectSameMaps(f('out-plain-auto'), f('out-plain-npy'));
  });

  test('rows read in small hyperslabs equal the .npy rows at every tile boundary', async () => {
    const h = await openStack(f('fxi.h5'));
    const n = await openStack(f('fxi_stack.npy'));
    try {
      const { nE, width: W, height: H } = h;
      for (const rows of [1, 3, 5, 7, H]) {
        const a = new Float32Array(nE * rows * W), b = new Float32Array(nE * rows * W);
        for (let y0 = 0; y0 < H; y0 += rows) {
          const r = Math.min(rows, H - y0);
          await h.readRows(y0, r, a);
          await n.readRows(y0, r, b);
          expect(Buffer.compare(Buffer.from(a.buffer, 0, nE * r * W * 4), Buffer.from(b.buffer, 0, nE * r * W * 4)), `rows ${y0}+${r}`).toBe(0);
        }
      }
    } finally {
      h.close();
      n.close();
    }
  });

  test('chunks of several rows: the band cache gives the same float32 rows as numpy, each chunk read once', async () => {
    // Band bytes: energies x chunk rows x width x (2 bytes for 16-bit, 1 for 8-bit, else 4: float32).
    const bandBytes: Record<string, number> = { u16: 6 * 5 * 9 * 2, f64: 6 * 4 * 9 * 4, i64: 6 * 7 * 9 * 4, i8: 6 * 6 * 9 * 1, vol: 6 * 4 * 5 * 4 };
    for (const name of ['u16', 'f64', 'i64', 'i8', 'vol']) {
      const truth = readNpy(f(`banded_${name}.npy`));
      const want = truth.data as Float32Array;
      const [nE, H, W] = truth.shape;
      for (const cache of [true, false]) {
        const h = await openStack(`${f('banded.h5')}#/${name}`);
        try {
          expect(h).toBeInstanceOf(Hdf5Stack);
          const s = h as Hdf5Stack;
          expect(s.bandRows, name).toBeGreaterThan(1);
          s.useBandCache(cache);
          expect(s.bandCacheBytes(), name).toBe(bandBytes[name]);
          expect(s.readerBytes()).toBe(2 * SLICE_BYTES + 2 * s.chunkBytes() + 2 ** 20);
          // Count the rows each hyperslab read asks HDF5 for.
          const ds = (s as unknown as { ds: { slice: (r: [number, number][]) => unknown } }).ds;
          const slice = ds.slice.bind(ds);
          // Count the rows (times energies) each hyperslab read asks HDF5 for, and whether it
          // starts and ends on a band of chunks (then no chunk is decompressed twice).
          const Y = s.volume ? s.volume[1] : H;
          let rowsRead = 0, unaligned = 0;
          ds.slice = (r) => {
            const [a, b] = r[r.length - 2];
            rowsRead += (b - a) * (r[0][1] - r[0][0]);
            if (a % s.bandRows !== 0 || (b % s.bandRows !== 0 && b !== Y)) unaligned++;
            return slice(r);
          };
          for (const rows of [1, 2, 3, 8, H]) {
            rowsRead = unaligned = 0;
            const got = new Float32Array(nE * rows * W);
            for (let y0 = 0; y0 < H; y0 += rows) {
              const r = Math.min(rows, H - y0);
              await s.readRows(y0, r, got);
              for (let e = 0; e < nE; e++) {
                const a = got.subarray(e * r * W, (e + 1) * r * W);
                const b = want.subarray((e * H + y0) * W, (e * H + y0 + r) * W);
                expect(Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)), `${name} cache ${cache} rows ${y0}+${r} energy ${e}`).toBe(0);
              }
            }
            // With the cache: whole bands only, each once. Without: tiles cut through chunks.
            if (cache) {
              expect(unaligned, `${name} tiles of ${rows}`).toBe(0);
              expect(rowsRead, `${name} tiles of ${rows}`).toBe(nE * H);
            } else if (rows === 1) {
              expect(unaligned).toBeGreaterThan(0);
            }
          }
        } finally {
          h.close();
        }
      }
    }
  });

  test('xanes info prints the detected layout, datasets, energies and pixel size', async () => {
    const r = await runCli(['info', f('fxi.h5')]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('layout: FXI (NSLS-II 18-ID)');
    expect(r.out).toMatch(/flat\s+\/img_bkg/);
    expect(r.out).toMatch(/dark\s+\/img_dark/);
    expect(r.out).toContain('energies 8233.00 .. 8463.00 eV');
    expect(r.out).toContain('pixel size 0.0213 µm');
    expect(r.out).toContain('2 frame(s), averaged');
    const n = await runCli(['info', f('nxstxm.h5')]);
    expect(n.out).toContain('layout: NeXus NXdata');
    expect(n.out).toContain('pixel size 0.04 µm');
  });
});

describe('bad HDF5 files: one clear error line, exit 2, nothing written', () => {
  const cases: [string, string[], RegExp][] = [
    ['no 3-D dataset (lists what it has)', [f('bad_no3d.h5'), '--energies', f('fxi_energies.npy')], /bad_no3d\.h5: no 3-D numeric dataset .*\/energy \[\d+\] float64; \/image \[4,5\] float32/],
    ['a dataset path that does not exist', [`${f('fxi.h5')}#/img_nope`, '--energies', f('fxi_energies.npy')], /fxi\.h5#\/img_nope: no such dataset; the file has .*\/img_xanes \[/],
    ['a non-numeric dataset', [`${f('bad_strings.h5')}#/stack`, '--energies', f('fxi_energies.npy')], /bad_strings\.h5#\/stack: is string, not a numeric image stack/],
    ['energies of the wrong length', [f('bad_energies.h5')], /bad_energies\.h5#\/X_eng: 68 energies, but \/img_xanes has 69 images/],
    ['a truncated file', [f('bad_truncated.h5')], /bad_truncated\.h5: truncated file: \d+ of \d+ bytes present/],
  ];
  for (const [what, args, re] of cases) {
    test(what, async () => {
      const out = f(`out-bad-${what.replace(/\W+/g, '-')}`);
      const r = await runCli(['edge', ...args, '--backend', 'cpu', '--out', out]);
      expect(r.code).toBe(2);
      const lines = r.err.trim().split('\n');
      expect(lines, r.err).toHaveLength(1);
      expect(lines[0]).toMatch(re);
      expect(fs.existsSync(out)).toBe(false);
      expect(fs.readdirSync(dir).some((n) => n.includes('.partial-'))).toBe(false);
    });
  }
});

test('the float32 maps are real maps, not NaN everywhere', () => {
  const e0 = readNpy(path.join(dir, 'out-fxi-h5', 'e0_half.npy')).data as Float32Array;
  const finite = Array.from(e0).filter(Number.isFinite);
  expect(finite.length).toBeGreaterThan(e0.length / 2);
  const mean = finite.reduce((a, b) => a + b, 0) / finite.length;
  expect(Math.abs(mean - 8340)).toBeLessThan(2);
});
