/**
 * 4-D stacks [E,Z,Y,X] (spectro-tomography) run as Z·Y·X voxels and give volumes [Z,Y,X]
 * in every output format (.npy, Z-page TIFF, results.h5 with z/y/x axes), with the same
 * values as the same voxels run as a 2-D image of Z·Y rows; a 4-D HDF5 dataset written by
 * h5py gives the same volumes. TIFF maps carry ImageJ metadata that tifffile (an
 * independent reader) reads: unit, spacing, min/max, resolution in pixels per µm.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from './helpers.js';
import { makeNiTxmStack } from '../../src/synth/ni-txm.js';
import { writeNpy, readNpy } from '../../src/io/npy.js';

const PYTHON = '/usr/bin/python3';
const dir = tempDir('volume');
const f = (n: string) => path.join(dir, n);
const Z = 3, Y = 8, X = 10;
let nE = 0;

beforeAll(() => {
  const s = makeNiTxmStack({ width: X, height: Z * Y, seed: 11, noise: true });
  nE = s.energies.length;
  const a = new Float32Array(s.sample.length);
  for (let j = 0; j < a.length; j++) a[j] = -Math.log((s.sample[j] - s.dark[j]) / (s.flat[j] - s.dark[j]));
  // The same bytes as [E, Z·Y, X] and as [E, Z, Y, X] (C order: rows of a slice follow each other).
  writeNpy(f('flat2d.npy'), a, [nE, Z * Y, X]);
  writeNpy(f('vol.npy'), a, [nE, Z, Y, X]);
  fs.writeFileSync(f('energies.txt'), Array.from(s.energies).join('\n'));
  execFileSync(PYTHON, ['-c', `
import numpy as np, h5py, sys
a = np.load(sys.argv[1])
with h5py.File(sys.argv[2], 'w') as h:
    h.create_dataset('recon/mu', data=a, chunks=(4, 1, 8, 10), compression='gzip')
`, f('vol.npy'), f('vol.h5')]);
});

async function edge(args: string[], out: string) {
  const r = await runCli(['edge', ...args, '--energies', f('energies.txt'), '--e0', '8343', '--backend', 'cpu', '--threads', '1', '--out', out]);
  expect(r.code, r.err).toBe(0);
}

describe('4-D stacks', () => {
  test('volumes in .npy, TIFF (one page per slice) and results.h5, equal to the 2-D run of the same voxels', async () => {
    await edge([f('vol.npy'), '--pixel-size', '0.5'], f('out-vol'));
    await edge([f('flat2d.npy')], f('out-2d'));
    for (const m of ['e0_half', 'edge_step', 'status']) {
      const v = readNpy(path.join(f('out-vol'), `${m}.npy`));
      const t = readNpy(path.join(f('out-2d'), `${m}.npy`));
      expect(v.shape, m).toEqual([Z, Y, X]);
      expect(t.shape).toEqual([Z * Y, X]);
      expect(Buffer.compare(Buffer.from(v.data.buffer), Buffer.from(t.data.buffer)), m).toBe(0);
    }
    const py = `
import sys, json, warnings, numpy as np, h5py, tifffile
warnings.simplefilter('error')
with tifffile.TiffFile(sys.argv[1]) as t:
    ij = t.imagej_metadata
    arr = t.asarray()
    xres = t.pages[0].tags['XResolution'].value
with h5py.File(sys.argv[2]) as h:
    g = h['entry/edge']
    out = {'tif_shape': list(arr.shape), 'ij': {k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in ij.items()},
           'xres': xres[0] / xres[1], 'h5_shape': list(g['e0_half'].shape), 'axes': [str(a) for a in g.attrs['axes']],
           'z': g['z'][()].tolist(), 'z_units': g['z'].attrs['units'],
           'equal': bool(np.array_equal(arr, np.load(sys.argv[3]), equal_nan=True))}
print(json.dumps(out))`;
    const o = JSON.parse(execFileSync(PYTHON, ['-W', 'error', '-c', py, path.join(f('out-vol'), 'e0_half.tif'), path.join(f('out-vol'), 'results.h5'), path.join(f('out-vol'), 'e0_half.npy')], { encoding: 'utf8' }));
    expect(o.tif_shape).toEqual([Z, Y, X]);
    expect(o.equal).toBe(true);
    expect(o.ij).toMatchObject({ images: Z, slices: Z, unit: 'micron', spacing: 0.5 });
    expect(o.xres).toBeCloseTo(2, 9); // pixels per µm
    expect(o.h5_shape).toEqual([Z, Y, X]);
    expect(o.axes).toEqual(['z', 'y', 'x']);
    expect(o.z).toEqual([0, 0.5, 1]);
    expect(o.z_units).toBe('um');
  });

  test('a 4-D HDF5 dataset (h5py, chunked, gzip) gives the same volumes as the 4-D .npy', async () => {
    await edge([`${f('vol.h5')}#/recon/mu`, '--pixel-size', '0.5'], f('out-vol-h5'));
    for (const m of ['e0_half', 'e0_deriv', 'edge_step', 'noise', 'status']) {
      expect(fs.readFileSync(path.join(f('out-vol-h5'), `${m}.npy`)).equals(fs.readFileSync(path.join(f('out-vol'), `${m}.npy`))), m).toBe(true);
    }
    const r = await runCli(['info', `${f('vol.h5')}#/recon/mu`]);
    expect(r.out).toContain(`shape [E,Z,Y,X] = [${nE}, ${Z}, ${Y}, ${X}]`);
  });
});

describe('TIFF maps carry ImageJ metadata', () => {
  test('2-D map: min/max of the finite values, unit micron and resolution from the pixel size; none without it', async () => {
    await edge([f('flat2d.npy'), '--pixel-size', '0.0213'], f('out-px'));
    const py = `
import sys, json, numpy as np, tifffile
res = []
for p in sys.argv[1:]:
    with tifffile.TiffFile(p) as t:
        ij = t.imagej_metadata or {}
        a = t.asarray()
        x = t.pages[0].tags['XResolution'].value
        res.append({'ij': {k: v for k, v in ij.items() if isinstance(v, (int, float, str))}, 'xres': x[0] / x[1],
                    'min': float(np.nanmin(a)), 'max': float(np.nanmax(a))})
print(json.dumps(res))`;
    const [withPx, without] = JSON.parse(execFileSync(PYTHON, ['-W', 'error', '-c', py, path.join(f('out-px'), 'e0_half.tif'), path.join(f('out-2d'), 'e0_half.tif')], { encoding: 'utf8' }));
    expect(withPx.ij.unit).toBe('micron');
    expect(withPx.xres).toBeCloseTo(1 / 0.0213, 3);
    expect(withPx.ij.min).toBe(withPx.min);
    expect(withPx.ij.max).toBe(withPx.max);
    expect(without.ij.unit).toBeUndefined();
    expect(without.ij.min).toBe(without.min);
  });
});
