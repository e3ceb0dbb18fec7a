/**
 * results.h5 (NeXus, written with h5wasm) read back by an independent reader, h5py, with
 * Python warnings turned into errors: structure, shapes, units, axes in µm, status code
 * names, cluster tables, and maps equal to the .npy files of the same run.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from './helpers.js';
import { makeNiTxmStack } from '../../src/synth/ni-txm.js';
import { writeNpy } from '../../src/io/npy.js';
import { exampleDataPath } from '../../src/synth/paths.js';

const PYTHON = '/usr/bin/python3';
const dir = tempDir('results');
const W = 18, H = 12;

/** Dumps every group/dataset with its attributes, shape and dtype as JSON; fails on any warning. */
const DUMP = `
import sys, json, warnings
import numpy as np, h5py
warnings.simplefilter('error')
def conv(v):
    if isinstance(v, bytes): return v.decode()
    if isinstance(v, np.ndarray): return conv(v.tolist())
    if isinstance(v, (list, tuple)): return [conv(x) for x in v]
    if isinstance(v, np.generic): return v.item()
    return v
out = {}
with h5py.File(sys.argv[1], 'r') as f:
    out['/'] = {'attrs': {k: conv(v) for k, v in f.attrs.items()}}
    def visit(name, o):
        e = {'attrs': {k: conv(v) for k, v in o.attrs.items()}}
        if isinstance(o, h5py.Dataset):
            e['shape'] = list(o.shape); e['dtype'] = str(o.dtype)
            if o.dtype.kind in 'fiu' and o.size <= 64: e['value'] = conv(np.asarray(o[()]).astype(float))
            if o.dtype.kind == 'O': e['value'] = conv(o[()])
        out[name] = e
    f.visititems(visit)
    if len(sys.argv) > 2:
        # a map against its .npy: exact equality, NaN where NaN
        d = f[sys.argv[2]][()]
        n = np.load(sys.argv[3])
        out['equal'] = bool(np.array_equal(d, n, equal_nan=True)) and d.dtype == n.dtype
print(json.dumps(out))
`;

type Dump = Record<string, { attrs: Record<string, any>; shape?: number[]; dtype?: string; value?: any }> & { equal?: boolean };

function dump(file: string, ...compare: string[]): Dump {
  return JSON.parse(execFileSync(PYTHON, ['-W', 'error', '-c', DUMP, file, ...compare], { encoding: 'utf8' }));
}

let energies: string;
const refs = () => ['--ref', `NiO=${exampleDataPath('ni-k/ref_NiO.txt')}`, '--ref', `LiNiO2=${exampleDataPath('ni-k/ref_LiNiO2.txt')}`];

beforeAll(() => {
  const s = makeNiTxmStack({ width: W, height: H, seed: 3, noise: true });
  const a = new Float32Array(s.sample.length);
  for (let j = 0; j < a.length; j++) a[j] = -Math.log((s.sample[j] - s.dark[j]) / (s.flat[j] - s.dark[j]));
  writeNpy(path.join(dir, 'fov_a.npy'), a, [s.energies.length, H, W]);
  energies = path.join(dir, 'energies.txt');
  fs.writeFileSync(energies, Array.from(s.energies).join('\n'));
});

describe('results.h5', () => {
  test('xanes run (edge + lcf + cluster): one NXdata per step with units, µm axes from --pixel-size, process and input', async () => {
    const out = path.join(dir, 'out-run');
    const r = await runCli(['run', path.join(dir, 'fov_a.npy'), '--energies', energies, '--steps', 'edge,lcf,cluster', '--e0', '8343', ...refs(),
      '--mode', 'nnls-sum1', '--background', 'linear', '--features', 'edge:e0_half,lcf:fraction_LiNiO2', '--k', '2', '--weight', 'edge:edge_step',
      '--pixel-size', '0.03', '--backend', 'cpu', '--threads', '1', '--out', out]);
    expect(r.code, r.err).toBe(0);
    const d = dump(path.join(out, 'results.h5'), 'entry/fov_a_edge/e0_half', path.join(out, 'fov_a', 'edge', 'e0_half.npy'));
    expect(d.equal).toBe(true);
    expect(d['/'].attrs).toMatchObject({ NX_class: 'NXroot', default: 'entry' });
    expect(d.entry.attrs.NX_class).toBe('NXentry');
    expect(d[d.entry.attrs.default]?.attrs ?? d[`entry/${d.entry.attrs.default}`].attrs).toMatchObject({ NX_class: 'NXdata' });
    // NXprocess: engine version, command line, backend, adapter, parameters.
    expect(d['entry/process'].attrs.NX_class).toBe('NXprocess');
    expect(d['entry/process/version'].value).toMatch(/^\d+\.\d+\.\d+/);
    expect(d['entry/process/command_line'].value).toContain('xanes run');
    expect(d['entry/process/command_line'].value).toContain('--pixel-size 0.03');
    expect(d['entry/process/backend'].value).toBe('cpu');
    expect(String(d['entry/process/adapter'].value).length).toBeGreaterThan(2);
    expect(d['entry/process/parameters'].attrs.NX_class).toBe('NXparameters');
    expect(d['entry/process/parameters/e0_eV'].value).toBe(8343);
    // The per-field edge maps: float32 [H,W], units and long names, signal and axes in µm.
    const g = d['entry/fov_a_edge'];
    expect(g.attrs).toMatchObject({ NX_class: 'NXdata', signal: 'e0_half', axes: ['y', 'x'], y_indices: 0, x_indices: 1 });
    expect(g.attrs.auxiliary_signals).toEqual(expect.arrayContaining(['e0_deriv', 'edge_step', 'status', 'whiteline_energy']));
    expect(d['entry/fov_a_edge/e0_half']).toMatchObject({ shape: [H, W], dtype: 'float32' });
    expect(d['entry/fov_a_edge/e0_half'].attrs).toMatchObject({ units: 'eV' });
    expect(d['entry/fov_a_edge/e0_half'].attrs.long_name).toContain('half');
    expect(d['entry/fov_a_edge/edge_step'].attrs.units).toBe('absorbance');
    expect(d['entry/fov_a_edge/x']).toMatchObject({ shape: [W], attrs: { units: 'um' } });
    expect(d['entry/fov_a_edge/x'].value[1]).toBeCloseTo(0.03, 12);
    expect(d['entry/fov_a_edge/y'].value[H - 1]).toBeCloseTo(0.03 * (H - 1), 12);
    expect(d['entry/fov_a_edge/status']).toMatchObject({ dtype: 'uint8', attrs: { status_names: ['ok', 'no_data', 'low_step', 'no_edge'], status_0: 'ok', status_2: 'low_step' } });
    // lcf: fractions dimensionless, weights per reference unit; its status names are its own.
    expect(d['entry/fov_a_lcf/fraction_LiNiO2'].attrs.units).toBe('1');
    expect(d['entry/fov_a_lcf/weight_NiO'].attrs.long_name).toContain('NiO');
    expect(d['entry/fov_a_lcf/status'].attrs.status_names[0]).toBe('ok');
    // cluster labels (int16) and the across-field tables.
    expect(d['entry/fov_a_cluster/labels']).toMatchObject({ shape: [H, W], dtype: 'int16' });
    const tables = Object.keys(d).filter((k) => /^entry\/combined.*clusters$/.test(k));
    expect(tables.length).toBe(1);
    expect(d[`${tables[0]}/fraction`].attrs.units).toBe('1');
    expect(d[`${tables[0]}/fraction`].shape).toEqual([2]);
    // Energies of the input, in eV.
    expect(d['entry/input_fov_a/energy']).toMatchObject({ shape: [101], attrs: { units: 'eV' } });
  });

  test('xanes cluster on a stack: centres and cluster spectra as tables (spectra plottable over energy)', async () => {
    const out = path.join(dir, 'out-cluster');
    const r = await runCli(['cluster', path.join(dir, 'fov_a.npy'), '--energies', energies, '--pca', '3', '--k', '3', '--backend', 'cpu', '--out', out]);
    expect(r.code, r.err).toBe(0);
    const d = dump(path.join(out, 'results.h5'), 'entry/cluster/distance', path.join(out, 'distance.npy'));
    expect(d.equal).toBe(true);
    expect(d['entry/cluster'].attrs).toMatchObject({ NX_class: 'NXdata', signal: 'labels', axes: ['y', 'x'] });
    expect(d['entry/cluster/x'].attrs.units).toBe('pixel'); // no pixel size known
    const spectra = d['entry/cluster_cluster_spectra'];
    expect(spectra.attrs).toMatchObject({ NX_class: 'NXdata', signal: 'mean_0', axes: ['energy_eV'] });
    expect(d['entry/cluster_cluster_spectra/energy_eV']).toMatchObject({ shape: [101], attrs: { units: 'eV' } });
    expect(d['entry/cluster_centres'].attrs.NX_class).toBe('NXcollection');
    expect(d['entry/cluster_centres/count'].shape).toEqual([3]);
  });

  test('edge on an FXI HDF5 file: pixel size from the file, flat/dark provenance in input/read', async () => {
    execFileSync(PYTHON, [path.join(__dirname, '../helpers/h5_layouts.py'), dir], { stdio: 'pipe' });
    const out = path.join(dir, 'out-fxi');
    const r = await runCli(['edge', path.join(dir, 'fxi.h5'), '--backend', 'cpu', '--out', out]);
    expect(r.code, r.err).toBe(0);
    const d = dump(path.join(out, 'results.h5'));
    expect(d['entry/edge/x'].attrs.units).toBe('um');
    expect(d['entry/edge/x'].value[1]).toBeCloseTo(0.0213, 12);
    const read = JSON.parse(d['entry/input/read'].value);
    expect(read.layout.name).toBe('fxi');
    expect(read.flat_frames).toBe(2);
    expect(d['entry/input/pixel_size'].value).toEqual([expect.closeTo(0.0213, 12), expect.closeTo(0.0213, 12)]);
  });
});
