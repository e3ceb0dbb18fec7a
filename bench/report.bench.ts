/**
 * report.html of a large field in headless Chromium (Debian's /usr/bin/chromium through
 * playwright-core): seconds from opening the page to its maps and figures drawn ("load"),
 * and from a click on a pixel to its spectrum and curves drawn ("click"). The field is an
 * edge run of the demo stack (64 x 64, CPU) tiled to SIZE x SIZE: its maps, and spectra fed
 * through the same SpectraRecorder a run uses (decimated beyond SPECTRA_MAX_VALUES, as a
 * real run of that size would keep them). Medians over fresh pages; never asserts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { Backend } from '../src/pipeline/step.js';
import { main as cli } from '../src/cli/main.js';
import { writeDemoData, DEMO_MASK_SIGMA } from '../src/cli/demo.js';
import { readNpy, writeNpy } from '../src/io/npy.js';
import { SpectraRecorder, readSpectraIndex, readSpectrum } from '../src/report/spectra-file.js';
import { writeReport } from '../src/report/html.js';
import { machine, type BenchRecord } from './common.js';

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SMALL = 64;

function dirSize(d: string): number {
  let n = 0;
  for (const f of fs.readdirSync(d, { withFileTypes: true })) n += f.isDirectory() ? dirSize(path.join(d, f.name)) : fs.statSync(path.join(d, f.name)).size;
  return n;
}

/** An edge output folder of size x size pixels: the small run's maps and spectra, tiled. */
async function bigEdgeFolder(root: string, size: number): Promise<string> {
  const d = writeDemoData(path.join(root, 'demo'), SMALL);
  const small = path.join(root, 'small');
  const silent = process.stdout.write;
  const code = await cli(['edge', d.sample, '--energies', d.energies, '--flat', d.flat, '--dark', d.dark, '--mask-sigma', String(DEMO_MASK_SIGMA), '--backend', 'cpu', '--out', small]);
  if (code !== 0) throw new Error('the small edge run failed');
  void silent;
  const big = path.join(root, 'big');
  fs.mkdirSync(big);
  const summary = JSON.parse(fs.readFileSync(path.join(small, 'summary.json'), 'utf8'));
  summary.inputs.shape = { ...summary.inputs.shape, width: size, height: size };
  fs.writeFileSync(path.join(big, 'summary.json'), JSON.stringify(summary, null, 2));
  for (const f of fs.readdirSync(small).filter((n) => n.endsWith('.npy'))) {
    const { data } = readNpy(path.join(small, f));
    const out = new (data.constructor as Float32ArrayConstructor)(size * size);
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) out[y * size + x] = data[(y % SMALL) * SMALL + (x % SMALL)];
    writeNpy(path.join(big, f), out, [size, size]);
  }
  const index = readSpectraIndex(small)!;
  const spectra = Array.from({ length: SMALL * SMALL }, (_, p) => readSpectrum(small, index, p % SMALL, Math.floor(p / SMALL)));
  const rec = new SpectraRecorder(size, size, Float64Array.from(index.energies), index.quantity);
  const step = rec.index.step;
  const row = new Float32Array(index.nE * size);
  for (let y = 0; y < size; y += step) {
    for (let x = 0; x < size; x++) {
      const s = spectra[(y % SMALL) * SMALL + (x % SMALL)];
      for (let e = 0; e < index.nE; e++) row[e * size + x] = s[e];
    }
    rec.add(row, y, 1);
  }
  rec.write(big);
  writeReport(big);
  return big;
}

export async function benchReport(b: Backend, o: { size: number; repeats: number; log: (s: string) => void }): Promise<BenchRecord[]> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-bench-report-'));
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: FLAGS });
  try {
    const dir = await bigEdgeFolder(root, o.size);
    const step = readSpectraIndex(dir)!.step;
    const load: number[] = [], click: number[] = [];
    for (let r = 0; r < o.repeats; r++) {
      const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
      const t0 = performance.now();
      await page.goto(`file://${path.join(dir, 'report.html')}`);
      await page.waitForFunction(() => (window as any).__xanes?.ready === true, null, { timeout: 120_000, polling: 10 });
      load.push((performance.now() - t0) / 1000);
      const x = Math.floor(o.size * 0.19 / step) * step, y = Math.floor(o.size * 0.19 / step) * step;
      const c = await page.evaluate(([px, py]) => (window as any).__xanes.pixelToClient(px, py), [x + 0.2, y + 0.2]);
      const t1 = performance.now();
      await page.mouse.click(c.x, c.y);
      await page.waitForFunction(() => { const l = (window as any).__xanes.last; return !!l; }, null, { timeout: 60_000, polling: 10 });
      click.push((performance.now() - t1) / 1000);
      await page.close();
    }
    const med = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1];
    const rec: BenchRecord = {
      kernel: 'report', mode: `report.html of an edge run, ${o.size} x ${o.size} pixels, headless Chromium: load (maps and figures drawn), click (spectrum and curves drawn)`,
      backend: b.name, adapter: 'Chromium (headless, software rendering)', machine: machine(),
      spectra: o.size * o.size, energies: 101, repeats: o.repeats,
      median_s: med(click), min_s: Math.min(...click), spectra_per_s: 0, gb_per_s: 0,
      load_median_s: med(load), load_min_s: Math.min(...load), click_median_s: med(click), click_min_s: Math.min(...click),
      spectra_kept_every: step, folder_MB: dirSize(dir) / 1e6,
    };
    o.log(`  report ${o.size}x${o.size}: load ${med(load).toFixed(2)} s, click ${med(click).toFixed(2)} s (spectra every ${step}th pixel, ${(dirSize(dir) / 1e6).toFixed(0)} MB)`);
    return [rec];
  } finally {
    await browser.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}
