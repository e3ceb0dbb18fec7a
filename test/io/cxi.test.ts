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
# PyNX's layout (pynx.ptycho save_obj_probe_cxi): the object in /entry_1/result_1 as a virtual
# dataset [1,H,W] of its layers, data_type "electron density", data_space "real", pixel size
# beside it, /entry_last and /entry_1/object soft links, energy in J with @units.
def pynx(name, obj, energy, layers=1):
    with h5py.File(os.path.join(out, name), 'w') as h:
        h.create_dataset('cxi_version', data=150)
        e = h.create_group('entry_1')
        h['entry_last'] = h5py.SoftLink('/entry_1')
        r = e.create_group('result_1')
        e['object'] = h5py.SoftLink('/entry_1/result_1')
        lay = h5py.VirtualLayout(shape=(layers,) + obj.shape, dtype=obj.dtype)
        for i in range(layers):
            ds = r.create_dataset('Object-layer%02d' % i, data=obj, chunks=True, shuffle=True, compression='gzip')
            lay[i] = h5py.VirtualSource('.', ds.name, ds.shape, ds.dtype)
        r.create_virtual_dataset('data', lay)
        r.create_dataset('data_type', data='electron density')
        r.create_dataset('data_space', data='real')
        r.create_dataset('x_pixel_size', data=20e-9)
        r.create_dataset('y_pixel_size', data=20e-9)
        d1 = e.create_group('data_1')
        d1['data'] = h5py.SoftLink('/entry_1/result_1/data')
        s1 = e.create_group('instrument_1/source_1')
        s1.create_dataset('energy', data=energy)
        s1['energy'].attrs['units'] = 'J'
os.mkdir(os.path.join(out, 'pynx'))
for k in range(len(E)):
    pynx(os.path.join('pynx', 'obj_%03d.cxi' % k), T[k], J[k])
pynx('multislice.cxi', T[0], J[0], layers=2)
def image(name, data, fields={}, attrs={}):
    with h5py.File(os.path.join(out, name), 'w') as h:
        img = h.create_group('entry_1/image_1')
        d = img.create_dataset('data', data=data)
        for k, v in fields.items(): img.create_dataset(k, data=v)
        for k, v in attrs.items(): d.attrs[k] = v
        h.create_dataset('entry_1/instrument_1/source_1/energy', data=J)
amp = np.abs(T).astype(np.float32)
image('amplitude.cxi', amp, {'data_type': 'amplitude', 'data_space': 'real'})
np.save(os.path.join(out, 'absorption_amp.npy'), (-np.log(amp.astype(np.float64))).astype(np.float32))
inten = (amp.astype(np.float64) ** 2).astype(np.float32)
image('intensity.cxi', inten, attrs={'data_type': 'intensity'})
np.save(os.path.join(out, 'absorption_int.npy'), (-0.5 * np.log(inten.astype(np.float64))).astype(np.float32))
image('phase_only.cxi', np.angle(T128).astype(np.float32), {'data_type': 'phase'})
# Stored with the origin at the corner (odd H and W: ifftshift and fftshift differ).
image('shifted.cxi', np.fft.ifftshift(T, axes=(-2, -1)), {'is_fft_shifted': 1})
image('frames.cxi', np.abs(T) ** 2, {'data_type': 'intensity', 'data_space': 'diffraction'})
image('density.cxi', amp, {'data_type': 'electron density'})
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

  test('PyNX files (object in result_1 as a [1,H,W] virtual dataset, entry_last) read as one image per energy', async () => {
    const a = await readAll(path.join(f('pynx'), 'obj_*.cxi'));
    expect(Buffer.compare(Buffer.from(a.data.buffer), Buffer.from(npy('absorption.npy').buffer))).toBe(0);
    expect(a.energies![0]).toBeCloseTo(5440, 9);
    expect(a.px!.x).toBeCloseTo(0.02, 12);
    const p = await readAll(`${path.join(f('pynx'), 'obj_*.cxi')}#phase`);
    expect(Buffer.compare(Buffer.from(p.data.buffer), Buffer.from(npy('phase.npy').buffer))).toBe(0);
    const i = await runCli(['info', path.join(f('pynx'), 'obj_000.cxi')]);
    expect(i.out).toContain("data_type 'electron density'");
  });

  test('real data in the convention its data_type states: amplitude, intensity (attribute), phase', async () => {
    const amp = await readAll(f('amplitude.cxi'));
    expect(Buffer.compare(Buffer.from(amp.data.buffer), Buffer.from(npy('absorption_amp.npy').buffer))).toBe(0);
    const int = await readAll(f('intensity.cxi'));
    expect(Buffer.compare(Buffer.from(int.data.buffer), Buffer.from(npy('absorption_int.npy').buffer))).toBe(0);
    // -ln(I)/2 is -ln|T|: the same quantity as from the complex T, to float32 rounding.
    const ref = npy('absorption.npy');
    let worst = 0;
    for (let k = 0; k < ref.length; k++) worst = Math.max(worst, Math.abs(int.data[k] - ref[k]));
    expect(worst).toBeLessThan(1e-6);
    const ph = await readAll(`${f('phase_only.cxi')}#phase`);
    expect(Buffer.compare(Buffer.from(ph.data.buffer), Buffer.from(npy('phase.npy').buffer))).toBe(0);
  });

  test('is_fft_shifted = 1: the image is shifted back to its centred view', async () => {
    const a = await readAll(f('shifted.cxi'));
    expect(Buffer.compare(Buffer.from(a.data.buffer), Buffer.from(npy('absorption.npy').buffer))).toBe(0);
    const p = await readAll(`${f('shifted.cxi')}#phase`);
    expect(Buffer.compare(Buffer.from(p.data.buffer), Buffer.from(npy('phase.npy').buffer))).toBe(0);
    // Read in blocks of rows that cross the wrap, the same values.
    const s = await openStack(f('shifted.cxi'));
    try {
      const rows = new Float32Array(s.nE * 3 * s.width);
      await s.readRows(3, 3, rows);
      const all = npy('absorption.npy');
      const HW = s.height * s.width;
      for (let e = 0; e < s.nE; e += 7) for (let i = 0; i < 3 * s.width; i++) expect(rows[e * 3 * s.width + i]).toBe(all[e * HW + 3 * s.width + i]);
    } finally {
      s.close();
    }
  });

  const bad: [string, string, RegExp][] = [
    ['real data without data_type', 'real.cxi', /real\.cxi#\/entry_1\/image_1\/data: is 32-bit float and says nothing of what it holds \(no data_type\)/],
    ['real data of an unknown data_type', 'density.cxi', /density\.cxi#\/entry_1\/image_1\/data: is 32-bit float with data_type 'electron density', which is not one this reader knows/],
    ['detector frames', 'frames.cxi', /frames\.cxi#\/entry_1\/image_1\/data: data_space is 'diffraction': detector frames, not a real-space reconstruction/],
    ['a phase-only file asked for absorption', 'phase_only.cxi', /phase_only\.cxi#\/entry_1\/image_1\/data: holds phase \(data_type 'phase'\), which gives no absorption stack/],
    ['an amplitude file asked for the phase', 'amplitude.cxi#phase', /amplitude\.cxi#\/entry_1\/image_1\/data: holds amplitude \(data_type 'amplitude'\), which gives no phase stack/],
    ['a multislice PyNX object', 'multislice.cxi', /multislice\.cxi#\/entry_last\/result_1\/data: a multislice object of 2 layers/],
  ];
  for (const [what, file, msg] of bad) {
    test(`one clear error: ${what}`, async () => {
      const r = await runCli(['info', f(file)]);
      expect(r.code).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(msg);
    });
  }
});
