/**
 * report.html and `xanes inspect` in Node: the page is self-contained (no server, no network,
 * maps as base64 float32 scripts, never JSON number lists), the inspector's numbers equal
 * the maps and the kernels' twins run independently on the pixel's spectrum, and the kept
 * spectra are decimated beyond the size limit.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test, beforeAll } from 'vitest';
import { decode } from 'fast-png';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../io/helpers.js';
import { writeDemoData, DEMO_MASK_SIGMA } from '../../src/cli/demo.js';
import { readNpy } from '../../src/io/npy.js';
import { openStack } from '../../src/stack/source.js';
import { AbsorbanceStack } from '../../src/stack/absorbance.js';
import { makeEdgePlan, DEFAULT_EDGE_OPTIONS } from '../../src/pipeline/edge-plan.js';
import { normalizeCpu } from '../../src/cpu/normalize.js';
import { edgeCpu } from '../../src/cpu/edge.js';
import { EdgeRow, NormRow } from '../../src/kernels/layout.js';
import { inspectFolder } from '../../src/report/inspect-run.js';
import { writeReport } from '../../src/report/html.js';
import { presetsFor } from '../../src/report/collect.js';
import { exampleDataPath } from '../../src/synth/paths.js';
import { SpectraRecorder, readSpectraIndex, readSpectrum, spectraStep } from '../../src/report/spectra-file.js';

const SIZE = 40;
let dir: string, edgeDir: string;
let files: ReturnType<typeof writeDemoData>;

beforeAll(async () => {
  dir = tempDir('report');
  files = writeDemoData(path.join(dir, 'demo'), SIZE);
  edgeDir = path.join(dir, 'edge');
  const r = await runCli(['edge', files.sample, '--energies', files.energies, '--flat', files.flat, '--dark', files.dark, '--mask-sigma', String(DEMO_MASK_SIGMA), '--backend', 'cpu', '--out', edgeDir]);
  expect(r.code, r.err).toBe(0);
}, 60_000);

/** The pixel's absorbance spectrum read from the input files, as the kernels saw it. */
async function spectrumFromFiles(x: number, y: number): Promise<Float32Array> {
  const src = await openStack(files.sample);
  const abs = new AbsorbanceStack(src, await openStack(files.flat), await openStack(files.dark));
  const row = new Float32Array(abs.nE * abs.width);
  await abs.readRows(y, 1, row);
  abs.close?.();
  return Float32Array.from({ length: abs.nE }, (_, e) => row[e * abs.width + x]);
}

describe('report.html', () => {
  test('colour presets: a run given --range offers that fixed range for its edge energies', () => {
    const data = Float32Array.from({ length: 400 }, (_, i) => 8340 + (i % 20) * 0.1);
    const withRange = { options: { edge: { range: [8338, 8345] } } };
    for (const name of ['e0_half', 'e0_deriv']) {
      const p = presetsFor(name, 'eV', data, withRange);
      expect(p.map((x) => x.name)).toEqual(['2-98 percentile', 'fixed range 8338-8345 eV (--range)', 'peak ± 1.5 eV']);
      expect([p[1].vmin, p[1].vmax]).toEqual([8338, 8345]);
    }
    // Not for other quantities, nor without --range.
    expect(presetsFor('edge_step', 'absorbance', data, withRange).map((x) => x.name)).toEqual(['2-98 percentile']);
    expect(presetsFor('e0_half', 'eV', data, {}).map((x) => x.name)).toEqual(['2-98 percentile', 'peak ± 1.5 eV']);
  });

  test('self-contained: inlined script and style, maps as base64 float32 beside it, no URL to load', () => {
    const html = fs.readFileSync(path.join(edgeDir, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+href=/i);
    expect(html).not.toMatch(/<img[^>]+src="?https?:/i);
    const meta = JSON.parse(/window\.XANES_META = (.*?);<\/script>/s.exec(html)![1]);
    expect(meta.maps.map((m: { name: string }) => m.name)).toContain('e0_half');
    const e0 = meta.maps.find((m: { name: string }) => m.name === 'e0_half');
    expect(e0.unit).toBe('eV');
    // No --range: the percentile range and the histogram peak ± 1.5 eV.
    expect(e0.presets.map((p: { name: string }) => p.name)).toEqual(['2-98 percentile', 'peak ± 1.5 eV']);
    const s = JSON.parse(fs.readFileSync(path.join(edgeDir, 'summary.json'), 'utf8'));
    const peak = e0.presets[1];
    expect((peak.vmin + peak.vmax) / 2).toBeCloseTo(s.parameters.histogram_peak_eV, 6);
    // The map scripts: blocks of rows, each one base64 string of float32 values; together
    // they are the .npy map.
    const parts: number[] = [];
    for (let c = 0; c < e0.chunks; c++) {
      const js = fs.readFileSync(path.join(edgeDir, e0.dir, `c${String(c).padStart(4, '0')}.js`), 'utf8');
      const m = new RegExp(`^XANES_MAP\\("e0_half",${c},"([A-Za-z0-9+/=]+)"\\);\n$`).exec(js);
      expect(m, 'base64, not a JSON list').not.toBeNull();
      const b = Buffer.from(m![1], 'base64');
      parts.push(...new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
    }
    const fromJs = parts;
    expect(Array.from(fromJs)).toEqual(Array.from(readNpy(path.join(edgeDir, 'e0_half.npy')).data as Float32Array));
  });

  test('kept spectra equal the stack as the kernels saw it', async () => {
    const index = readSpectraIndex(edgeDir)!;
    expect(index.step).toBe(1);
    expect([index.width, index.height, index.nE]).toEqual([SIZE, SIZE, 101]);
    const want = await spectrumFromFiles(13, 21);
    expect(Array.from(readSpectrum(edgeDir, index, 13, 21))).toEqual(Array.from(want, (v) => v));
  });

  test('maps in blocks of rows: the blocks together are the map', () => {
    writeReport(edgeDir, 'edge', { mapChunkBytes: 4 * SIZE * 7 });
    const html = fs.readFileSync(path.join(edgeDir, 'report.html'), 'utf8');
    const e0 = JSON.parse(/window\.XANES_META = (.*?);<\/script>/s.exec(html)![1]).maps.find((m: { name: string }) => m.name === 'e0_half');
    expect([e0.chunkRows, e0.chunks]).toEqual([7, Math.ceil(SIZE / 7)]);
    const parts: number[] = [];
    for (let c = 0; c < e0.chunks; c++) {
      const b = Buffer.from(/"([A-Za-z0-9+/=]+)"/.exec(fs.readFileSync(path.join(edgeDir, e0.dir, `c${String(c).padStart(4, '0')}.js`), 'utf8'))![1], 'base64');
      parts.push(...new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
    }
    expect(parts).toEqual(Array.from(readNpy(path.join(edgeDir, 'e0_half.npy')).data as Float32Array));
  });

  test('xanes report rebuilds the page', async () => {
    fs.rmSync(path.join(edgeDir, 'report.html'));
    const r = await runCli(['report', edgeDir]);
    expect(r.code, r.err).toBe(0);
    expect(fs.existsSync(path.join(edgeDir, 'report.html'))).toBe(true);
  });
});

describe('xanes inspect', () => {
  test('lcf --normalize: the pixel is normalised as the fit saw it; the reconstruction is the weighted references, its residual the map\'s', async () => {
    const out = path.join(dir, 'lcf-norm');
    const refs = ['--ref', `NiO=${exampleDataPath('ni-k/ref_NiO.txt')}`, '--ref', `LiNiO2=${exampleDataPath('ni-k/ref_LiNiO2.txt')}`];
    const r = await runCli(['lcf', files.sample, '--energies', files.energies, '--flat', files.flat, '--dark', files.dark, ...refs, '--normalize', '--mode', 'nnls', '--backend', 'cpu', '--out', out]);
    expect(r.code, r.err).toBe(0);
    const x = 12, y = 12;
    const mapAt = (n: string) => (readNpy(path.join(out, `${n}.npy`)).data as Float32Array)[y * SIZE + x];
    expect(mapAt('status'), 'fitted').toBe(0);
    const view = inspectFolder(out, [x, y]);
    const col = (n: string) => view.table.columns[view.table.header.indexOf(n)];
    expect(view.table.header).toContain('spectrum_normalised');
    // The reconstruction: the weights (maps) times the references as fitted (references.csv).
    const csv = fs.readFileSync(path.join(out, 'references.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
    const w = [mapAt('weight_NiO'), mapAt('weight_LiNiO2')];
    const rec = col('reconstruction');
    csv.forEach((row, i) => expect(Math.abs(rec[i] - (w[0] * row[1] + w[1] * row[2]))).toBeLessThan(1e-9));
    // Its residual against the normalised spectrum is the fit's: rms over the window = the map.
    const res = col('residual').filter(Number.isFinite);
    expect(res.length).toBe(csv.length);
    const rms = Math.sqrt(res.reduce((a, v) => a + v * v, 0) / res.length);
    expect(Math.abs(rms - mapAt('residual_rms')) / mapAt('residual_rms')).toBeLessThan(1e-3);
    // Normalised: about 0 before the edge and 1 well above it.
    const E = view.table.columns[0], n = col('spectrum_normalised');
    expect(Math.abs(n[0])).toBeLessThan(0.1);
    expect(Math.abs(n[E.length - 1] - 1)).toBeLessThan(0.15);
  });

  test('numbers equal the maps and the twins run on the one spectrum; PNG and CSV written', async () => {
    // A pixel inside the large core-shell particle of the demo field.
    const particle = readNpy(path.join(files.dataDir, 'truth_particle.npy')).data as Float32Array;
    const x = 12, y = 12;
    expect(particle[y * SIZE + x], 'inside a particle').toBeGreaterThan(0);
    const view = inspectFolder(edgeDir, [x, y]);
    const mapAt = (n: string) => (readNpy(path.join(edgeDir, `${n}.npy`)).data as Float32Array)[y * SIZE + x];
    const row = (n: string, source: string) => view.rows.find((r) => r.name === n && r.source === source)!.value;
    for (const n of ['e0_half', 'e0_deriv', 'edge_step', 'noise']) expect(row(n, 'map'), n).toBe(mapAt(n));
    // The twins, run here on the spectrum read from the input files.
    const s = JSON.parse(fs.readFileSync(path.join(edgeDir, 'summary.json'), 'utf8'));
    const energies = Float64Array.from(readSpectraIndex(edgeDir)!.energies);
    const plan = makeEdgePlan(energies, s.parameters.e0_eV, { ...DEFAULT_EDGE_OPTIONS, maskSigma: DEMO_MASK_SIGMA });
    const cube = await spectrumFromFiles(x, y);
    const norm = normalizeCpu(plan, cube, 1);
    const ed = edgeCpu(plan, cube, 1, norm);
    expect(row('e0_half', 'twin')).toBe(ed[EdgeRow.E0_HALF]);
    expect(row('edge_step', 'twin')).toBe(norm[NormRow.STEP]);
    // The CPU backend's maps are the twin's float64 results stored as float32.
    expect(Math.fround(ed[EdgeRow.E0_HALF])).toBe(mapAt('e0_half'));
    expect(Math.fround(ed[EdgeRow.E0_DERIV])).toBe(mapAt('e0_deriv'));
    expect(view.status).toBe('ok');

    const out = path.join(dir, 'inspect');
    const r = await runCli(['inspect', edgeDir, '--pixel', `${x},${y}`, '--out', out]);
    expect(r.code, r.err).toBe(0);
    const png = decode(fs.readFileSync(path.join(out, 'pixel.png')));
    expect(png.width).toBeGreaterThan(600);
    const values = fs.readFileSync(path.join(out, 'values.csv'), 'utf8').split('\n');
    expect(values).toContain(`e0_half,${mapAt('e0_half')},,"eV",map`);
    const curves = fs.readFileSync(path.join(out, 'curves.csv'), 'utf8').trim().split('\n');
    expect(curves[0]).toBe('energy_eV,spectrum,pre_edge_line,post_edge_curve,normalised');
    expect(curves.length).toBe(102);
    expect(Number(curves[1].split(',')[1])).toBe(cube[0]);
    // Bad input: one line naming the option, exit code 2, nothing written.
    const bad = await runCli(['inspect', edgeDir, '--pixel', `${SIZE},0`, '--out', path.join(dir, 'bad')]);
    expect(bad.code).toBe(2);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
    expect(bad.err).toMatch(/--pixel/);
    expect(fs.existsSync(path.join(dir, 'bad'))).toBe(false);
  });
});

describe('SpectraRecorder', () => {
  test('decimates beyond the limit, keeping real pixels; tiles of any height', () => {
    const W = 10, H = 7, nE = 3;
    expect(spectraStep(W, H, nE, 1000)).toBe(1);
    expect(spectraStep(W, H, nE, 60)).toBe(2); // 5 x 4 x 3 = 60
    const energies = Float64Array.of(1, 2, 3);
    const rec = new SpectraRecorder(W, H, energies, 'test', 60);
    const value = (e: number, x: number, y: number) => 1000 * e + 10 * y + x;
    for (const [y0, rows] of [[0, 3], [3, 1], [4, 3]]) {
      const P = rows * W;
      const cube = new Float32Array(nE * P);
      for (let e = 0; e < nE; e++) for (let r = 0; r < rows; r++) for (let x = 0; x < W; x++) cube[e * P + r * W + x] = value(e, x, y0 + r);
      rec.add(cube, y0, rows);
    }
    const d = tempDir('spectra');
    rec.write(d);
    const index = readSpectraIndex(d)!;
    expect([index.step, index.nx, index.ny]).toEqual([2, 5, 4]);
    for (const [x, y] of [[0, 0], [8, 6], [4, 2]]) expect(Array.from(readSpectrum(d, index, x, y))).toEqual([0, 1, 2].map((e) => value(e, x, y)));
    expect(() => readSpectrum(d, index, 1, 0)).toThrow(RangeError);
  });
});
