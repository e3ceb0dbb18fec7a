/**
 * report.html in a real browser: Debian's Chromium (/usr/bin/chromium, installed by .ci/run),
 * driven by playwright-core. The demo's edge and fit reports open from the disk with no
 * console error and no network request; clicking a pixel of a known particle draws its
 * spectrum and fitted curves, checked against the maps and the kept spectra read here.
 * Screenshots stay in the test's folder (printed) as artifacts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { runCli } from '../helpers/cli.js';
import { writeDemoData, writeVkDemoData, DEMO_MASK_SIGMA, DEMO_FIT_BOUNDS } from '../../src/cli/demo.js';
import { readNpy } from '../../src/io/npy.js';
import { readSpectraIndex, readSpectrum } from '../../src/report/spectra-file.js';
import { writeReport } from '../../src/report/html.js';
import { evaluateModel, fitReferenceEnergy, parseModelSpec } from '../../src/models/model.js';
import { makeEdgePlan, DEFAULT_EDGE_OPTIONS } from '../../src/pipeline/edge-plan.js';
import { normalizeCpu, preEdgeLine } from '../../src/cpu/normalize.js';
import { NormRow } from '../../src/kernels/layout.js';
import { exampleDataPath } from '../../src/synth/paths.js';
import { shrinkPng } from '../helpers/png-scale.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Drawn curves are float64 in the page and here: the same arithmetic, so equal to rounding. */
const SAME = 1e-9;
const SIZE = 48, VK = 32;

let dir: string, ctx: BrowserContext;
const edgeDir = () => path.join(dir, 'edge');
const fitDir = () => path.join(dir, 'fit');
const runDir = () => path.join(dir, 'run');
const RUN_FIELDS = ['sample', 'sample_2'];
const RUN_STEPS = ['edge', 'lcf', 'cluster'];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-browser-'));
  const d = writeDemoData(path.join(dir, 'demo'), SIZE);
  let r = await runCli(['edge', d.sample, '--energies', d.energies, '--flat', d.flat, '--dark', d.dark, '--mask-sigma', String(DEMO_MASK_SIGMA), '--backend', 'cpu', '--out', edgeDir()]);
  expect(r.code, r.err).toBe(0);
  // Maps in blocks of 5 rows (a large field's layout), so the page assembles and picks blocks.
  writeReport(edgeDir(), 'edge', { mapChunkBytes: 4 * SIZE * 5 });
  // A `xanes run` of two fields (the same stack twice) with three steps.
  r = await runCli(['run', d.sample, d.sample, '--energies', d.energies, '--flat', d.flat, '--dark', d.dark, '--steps', RUN_STEPS.join(','), '--mask-sigma', String(DEMO_MASK_SIGMA),
    '--ref', `NiO=${exampleDataPath('ni-k/ref_NiO.txt')}`, '--ref', `LiNiO2=${exampleDataPath('ni-k/ref_LiNiO2.txt')}`, '--mode', 'nnls',
    '--features', 'edge:e0_half,lcf:fraction_LiNiO2', '--k-range', '2:6', '--weight', 'edge:edge_step', '--backend', 'cpu', '--out', runDir()]);
  expect(r.code, r.err).toBe(0);
  const v = writeVkDemoData(path.join(dir, 'demo'), VK);
  r = await runCli(['fit', v.stack, '--energies', v.energies, '--model', 'erf-2lorentz', '--bounds', DEMO_FIT_BOUNDS, '--backend', 'cpu', '--out', fitDir()]);
  expect(r.code, r.err).toBe(0);
  ctx = await chromium.launchPersistentContext(path.join(dir, 'chromium-profile'), { executablePath: CHROMIUM, args: FLAGS, viewport: { width: 1500, height: 1000 } });
}, 120_000);

afterAll(async () => {
  await ctx?.close();
  // Keep the screenshots (artifacts); remove the rest.
  if (dir) for (const f of fs.readdirSync(dir)) if (!f.endsWith('.png')) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  if (dir) console.log(`browser test screenshots: ${dir}`);
});

async function open(file: string, ready = true): Promise<{ page: Page; errors: string[]; requests: string[] }> {
  const page = await ctx.newPage();
  const errors: string[] = [], requests: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => { if (!/^(file|data|blob):/.test(r.url())) requests.push(r.url()); });
  await page.goto(`file://${file}`);
  // The overview pages of a run (no maps) have no script: loaded is ready.
  if (ready) await page.waitForFunction(() => (window as any).__xanes?.ready === true, null, { timeout: 30_000 });
  else await page.waitForLoadState('load');
  return { page, errors, requests };
}

async function clickPixel(page: Page, x: number, y: number): Promise<any> {
  const c = await page.evaluate(([px, py]) => (window as any).__xanes.pixelToClient(px, py), [x, y]);
  await page.mouse.click(c.x, c.y);
  await page.waitForFunction(([px, py]) => { const l = (window as any).__xanes.last; return l && l.x === px && l.y === py; }, [x, y], { timeout: 15_000 });
  return page.evaluate(() => ({ last: (window as any).__xanes.last, drawn: (window as any).__xanes.drawn() }));
}

const mapAt = (d: string, name: string, W: number, x: number, y: number) => (readNpy(path.join(d, `${name}.npy`)).data as Float32Array)[y * W + x];

describe('report.html in Chromium', () => {
  test('edge: loads offline without errors; a particle pixel draws its spectrum and its pre/post-edge lines', async () => {
    const { page, errors, requests } = await open(path.join(edgeDir(), 'report.html'));
    // Pixel (12, 12) lies in the core-shell particle of the demo field.
    const particle = readNpy(path.join(dir, 'demo', 'data', 'truth_particle.npy')).data as Float32Array;
    expect(particle[12 * SIZE + 12]).toBeGreaterThan(0);
    const { last, drawn } = await clickPixel(page, 12, 12);
    expect(last.status).toBe('ok');
    const e0 = last.rows.find((r: any) => r.name === 'e0_half' && r.source === 'map').value;
    expect(e0).toBe(mapAt(edgeDir(), 'e0_half', SIZE, 12, 12));
    // What the first plot drew: the measured points are the kept spectrum of that pixel.
    const spectrum = readSpectrum(edgeDir(), readSpectraIndex(edgeDir())!, 12, 12);
    const points = drawn[0].s0 as { x: number; y: number }[];
    expect(points.map((p) => p.y)).toEqual(Array.from(spectrum));
    // The drawn pre-edge line is the normalize twin's line for this spectrum, run here.
    const pre = drawn[0].s1 as { x: number; y: number }[];
    const s = JSON.parse(fs.readFileSync(path.join(edgeDir(), 'summary.json'), 'utf8'));
    const p = s.parameters;
    const energies = Float64Array.from(readSpectraIndex(edgeDir())!.energies);
    const plan = makeEdgePlan(energies, p.e0_eV, { ...DEFAULT_EDGE_OPTIONS, maskSigma: DEMO_MASK_SIGMA });
    const norm = normalizeCpu(plan, Float32Array.from(spectrum), 1);
    pre.forEach((q, i) => expect(Math.abs(q.y - preEdgeLine(plan, norm[NormRow.PRE_A], norm[NormRow.PRE_B], energies[i] - plan.e0))).toBeLessThan(SAME));
    // And it runs under the pre-edge points: residuals at the noise level there.
    const noise = mapAt(edgeDir(), 'noise', SIZE, 12, 12);
    const early = points.filter((q) => q.x < p.e0_eV - 40).map((q, i) => q.y - pre[i].y);
    expect(Math.abs(early.reduce((a, b) => a + b, 0) / early.length)).toBeLessThan(noise);
    // Hovering with Shift held inspects the pixel under the pointer.
    const c = await page.evaluate(() => (window as any).__xanes.pixelToClient(20, 14));
    await page.keyboard.down('Shift');
    await page.mouse.move(c.x, c.y);
    await page.waitForFunction(() => { const l = (window as any).__xanes.last; return l && l.x === 20 && l.y === 14; }, null, { timeout: 15_000 });
    await page.keyboard.up('Shift');
    await clickPixel(page, 12, 12);
    await page.screenshot({ path: path.join(dir, 'report-edge.png') });
    // The README's copy (examples/images/report.png), small.
    fs.writeFileSync(path.join(dir, 'readme-report.png'), shrinkPng(fs.readFileSync(path.join(dir, 'report-edge.png')), 0.64));
    await (await page.$('#inspector'))!.screenshot({ path: path.join(dir, 'inspector-edge.png') });
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
  }, 60_000);

  test('fit: a domain pixel draws the fitted model from its parameter maps, with residuals', async () => {
    const { page, errors, requests } = await open(path.join(fitDir(), 'report.html'));
    const x = 10, y = 12;
    const status = mapAt(fitDir(), 'status', VK, x, y);
    expect(status, 'a converged fit').toBe(0);
    const { last, drawn } = await clickPixel(page, x, y);
    expect(last.status).toBe('converged');
    const s = JSON.parse(fs.readFileSync(path.join(fitDir(), 'summary.json'), 'utf8'));
    const model = parseModelSpec(s.model.spec);
    const params = model.paramNames.map((n) => mapAt(fitDir(), n, VK, x, y));
    const energies = readSpectraIndex(fitDir())!.energies;
    const eRef = fitReferenceEnergy(energies);
    const curve = drawn[0].s1 as { x: number; y: number }[];
    expect(curve.length).toBeGreaterThan(100);
    for (const p of curve) expect(Math.abs(p.y - evaluateModel(model, p.x, params, eRef))).toBeLessThan(SAME);
    // The curve follows the data: residuals small against the edge jump b1.
    const res = (drawn[1].s0 as { y: number }[]).map((p) => Math.abs(p.y));
    expect(Math.max(...res)).toBeLessThan(0.2 * params[model.paramNames.indexOf('b1')]);
    expect(last.rows.find((r: any) => r.name === 'b2').stderr).toBe(mapAt(fitDir(), 'b2_stderr', VK, x, y));
    await page.screenshot({ path: path.join(dir, 'report-fit.png'), fullPage: true });
    await (await page.$('#inspector'))!.screenshot({ path: path.join(dir, 'inspector-fit.png') });
    fs.writeFileSync(path.join(dir, 'readme-inspector.png'), shrinkPng(fs.readFileSync(path.join(dir, 'inspector-fit.png')), 0.84));
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
  }, 60_000);

  test('xanes run: every folder has summary.json and report.html; a field\'s step reports open and inspect; `xanes report` rebuilds them all', async () => {
    const folders = ['', 'combined', ...RUN_FIELDS, ...RUN_FIELDS.flatMap((f) => RUN_STEPS.map((st) => path.join(f, st)))];
    for (const f of folders) {
      for (const file of ['summary.json', 'report.html']) expect(fs.existsSync(path.join(runDir(), f, file)), `${f}/${file}`).toBe(true);
    }
    const edge = path.join(runDir(), 'sample_2', 'edge');
    expect(JSON.parse(fs.readFileSync(path.join(edge, 'summary.json'), 'utf8')).command).toBe('edge');
    // The field's spectra are kept once (in the field's folder) and shared by its steps.
    expect(fs.existsSync(path.join(runDir(), 'sample_2', 'report_files', 'spectra', 'index.js'))).toBe(true);
    expect(fs.existsSync(path.join(edge, 'report_files', 'spectra'))).toBe(false);
    const { page, errors, requests } = await open(path.join(edge, 'report.html'));
    const { last, drawn } = await clickPixel(page, 12, 12);
    expect(last.status).toBe('ok');
    expect(last.rows.find((r: any) => r.name === 'e0_half' && r.source === 'map').value).toBe(mapAt(edge, 'e0_half', SIZE, 12, 12));
    // The drawn points are the pixel's absorbance; the field is the demo stack, so they equal
    // the single edge command's kept spectrum of the same pixel.
    expect((drawn[0].s0 as { y: number }[]).map((p) => p.y)).toEqual(Array.from(readSpectrum(edgeDir(), readSpectraIndex(edgeDir())!, 12, 12)));
    await page.screenshot({ path: path.join(dir, 'report-run-edge.png') });
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
    // The lcf step (references, the composite) and the cluster step (labels with the features).
    for (const st of ['lcf', 'cluster']) {
      const o = await open(path.join(runDir(), 'sample', st, 'report.html'));
      const v = await clickPixel(o.page, 12, 12);
      if (st === 'lcf') {
        const rec = v.drawn[0].s1 as { y: number }[];
        expect(rec.length, 'the reconstruction is drawn').toBeGreaterThan(10);
        expect(rec.every((p) => Number.isFinite(p.y)), 'finite (no background term: 0)').toBe(true);
      }
      else expect(v.last.notes[0]).toMatch(/^cluster \d$/);
      expect(o.errors, st).toEqual([]);
      expect(o.requests, st).toEqual([]);
      await o.page.close();
    }
    // The overview pages (the run, a field, combined/): plain HTML with the run's pictures and links.
    for (const f of ['', 'sample', 'combined']) {
      const o = await open(path.join(runDir(), f, 'report.html'), false);
      const links = await o.page.evaluate(() => Array.from(document.querySelectorAll('a')).map((a) => a.getAttribute('href')));
      for (const l of links) expect(fs.existsSync(path.join(runDir(), f, l!)), `${f}: link ${l}`).toBe(true);
      const broken = await o.page.evaluate(() => Array.from(document.images).filter((i) => !(i.complete && i.naturalWidth > 0)).length);
      expect(broken).toBe(0);
      if (f === '') {
        await o.page.screenshot({ path: path.join(dir, 'report-run.png'), fullPage: true });
        fs.writeFileSync(path.join(dir, 'readme-run.png'), shrinkPng(fs.readFileSync(path.join(dir, 'report-run.png')), 0.6));
      }
      expect(o.errors, f).toEqual([]);
      expect(o.requests, f).toEqual([]);
      await o.page.close();
    }
    // `xanes report` on the run's folder rewrites every page, byte for byte.
    const pages = folders.map((f) => path.join(runDir(), f, 'report.html'));
    const before = pages.map((p) => fs.readFileSync(p));
    pages.forEach((p) => fs.rmSync(p));
    const r = await runCli(['report', runDir()]);
    expect(r.code, r.err).toBe(0);
    pages.forEach((p, i) => expect(fs.readFileSync(p).equals(before[i]), p).toBe(true));
    // And on one step folder of the run.
    fs.rmSync(path.join(edge, 'report.html'));
    expect((await runCli(['report', edge])).code).toBe(0);
    expect(fs.readFileSync(path.join(edge, 'report.html')).equals(before[folders.indexOf(path.join('sample_2', 'edge'))])).toBe(true);
  }, 120_000);
});
