/**
 * CXI ptychography reconstructions written by h5py (complex64 transmission T): the
 * absorption stack -ln|T| and the phase stack arg T equal numpy's (computed from the same
 * complex64 values in float64, rounded to float32), whether the file holds a stack or there
 * is one file per energy; edge maps of the absorption stack equal those of the .npy.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from './helpers.js';
import { openStack } from '../../src/stack/source.js';

const PYTHON = '/usr/bin/python3';
const dir = tempDir('cxi');
const f = (n: string) => path.join(dir, n);

beforeAll(() => {
  execFileSync(PYTHON, ['-c', `
import sys, os, numpy as np, h5py
out = sys.argv[1]
rng = np.random.default_rng(5)
H, W = 9, 13
E = np.concatenate([np.arange(5440.0, 5470.0, 3.0), np.arange(5470.0, 5495.0, 0.5), np.arange(5495.0, 5560.0, 5.0)])
J = E * 1.602176634e-19
yy, xx = np.mgrid[0:H, 0:W]
e0 = 5478 + 3 * (xx / (W - 1) - 0.5)
mu = 0.1 + (0.4 + 0.5 * yy / (H - 1)) * 0.5 * (1 + np.tanh((E[:, None, None] - e0[None]) / 1.5)) + rng.normal(0, 0.002, (len(E), H, W))
phi = -0.3 * mu + 0.05 * xx[None] / W
T = (np.exp(-mu) * np.exp(1j * phi)).astype(np.complex64)
def write(name, data, energy):
    with h5py.File(os.path.join(out, name), 'w') as h:
        h.attrs['cxi_version'] = 150
        e = h.create_group('entry_1')
        img = e.create_group('image_1')
        img.create_dataset('data', data=data)
        img.create_dataset('x_pixel_size', data=20e-9)
        img.create_dataset('y_pixel_size', data=20e-9)
        e.create_dataset('instrument_1/source_1/energy', data=energy)
write('stack.cxi', T, J)
os.mkdir(os.path.join(out, 'series'))
for k in range(len(E)):
    write(os.path.join('series', 'scan_%03d.cxi' % ((k * 29) % len(E))), T[k], J[k])
T128 = T.astype(np.complex128)
np.save(os.path.join(out, 'absorption.npy'), (-np.log(np.abs(T128))).astype(np.float32))
np.save(os.path.join(out, 'phase.npy'), np.angle(T128).astype(np.float32))
np.save(os.path.join(out, 'energies.npy'), J / 1.602176634e-19)
with h5py.File(os.path.join(out, 'real.cxi'), 'w') as h:
    h.create_dataset('entry_1/image_1/data', data=np.abs(T))
`, dir]);
});

async function readAll(spec: string): Promise<{ data: Float32Array; energies?: Float64Array; px?: { x: number; y: number } }> {
  const s = await openStack(spec);
  try {
    const data = new Float32Array(s.nE * s.height * s.width);
    await s.readRows(0, s.height, data);
    return { data, energies: s.energies, px: s.pixelSizeUm };
  } finally {
    s.close();
  }
}

/** [E,H,W] float32 .npy data in the same order as readRows of all rows. */
function npy(name: string): Float32Array {
  const b = fs.readFileSync(f(name));
  const headerLen = b.readUInt16LE(8);
  return new Float32Array(b.buffer.slice(b.byteOffset + 10 + headerLen, b.byteOffset + b.length));
}

describe('CXI reconstructions', () => {
  test('absorption (-ln|T|) and phase (arg T) of a stacked file equal numpy, bit for bit; energies from J; pixel size', async () => {
    const a = await readAll(f('stack.cxi'));
    expect(Buffer.compare(Buffer.from(a.data.buffer), Buffer.from(npy('absorption.npy').buffer))).toBe(0);
    expect(a.energies![0]).toBeCloseTo(5440, 9);
    expect(a.px!.x).toBeCloseTo(0.02, 12);
    const p = await readAll(`${f('stack.cxi')}#phase`);
    expect(Buffer.compare(Buffer.from(p.data.buffer), Buffer.from(npy('phase.npy').buffer))).toBe(0);
  });

  test('one file per energy (a glob, sorted by energy) gives the same stacks', async () => {
    const a = await readAll(path.join(f('series'), 'scan_*.cxi'));
    expect(Buffer.compare(Buffer.from(a.data.buffer), Buffer.from(npy('absorption.npy').buffer))).toBe(0);
    const p = await readAll(`${path.join(f('series'), 'scan_*.cxi')}#phase`);
    expect(Buffer.compare(Buffer.from(p.data.buffer), Buffer.from(npy('phase.npy').buffer))).toBe(0);
  });

  test('edge maps of the absorption stack equal those of the same stack as .npy; info names the layout', async () => {
    const run = async (args: string[], out: string) => {
      const r = await runCli(['edge', ...args, '--backend', 'cpu', '--threads', '1', '--e0', '5478', '--pre=-30,-10', '--post', '10,end', '--out', out]);
      expect(r.code, r.err).toBe(0);
    };
    await run([f('stack.cxi')], f('out-cxi'));
    await run([f('absorption.npy'), '--energies', f('energies.npy')], f('out-npy'));
    for (const m of ['e0_half', 'edge_step', 'status']) {
      expect(fs.readFileSync(path.join(f('out-cxi'), `${m}.npy`)).equals(fs.readFileSync(path.join(f('out-npy'), `${m}.npy`))), m).toBe(true);
    }
    const i = await runCli(['info', `${f('stack.cxi')}#phase`]);
    expect(i.out).toContain('layout: CXI ptychography (phase)');
  });

  test('a CXI file whose data is not complex is one clear error', async () => {
    const r = await runCli(['info', f('real.cxi')]);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/real\.cxi#\/entry_1\/image_1\/data: is 32-bit float, not a complex reconstruction/);
  });
});
