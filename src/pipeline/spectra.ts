/**
 * Region spectra (the library behind `xanes spectra`): the mean and standard-deviation
 * spectrum of each region of interest, and with a second stack (--compare) the difference
 * spectra between the two (e.g. initial and charged), written as CSV and PNG plots.
 *
 * Files written into `outDir` (which must exist; the CLI passes its OutputDir's folder):
 *   spectra.csv          energy_eV, then per ROI: <NAME>_mean, <NAME>_std, <NAME>_n
 *   spectra.png          the mean spectra of all ROIs
 *   roi_<NAME>.png       one ROI's mean with mean +- std
 * with a comparison stack B (A = the first stack):
 *   compare.csv          energy_eV, then per ROI: <NAME>_A, <NAME>_B, <NAME>_diff (= B - A),
 *                        <NAME>_diff_se (standard error of the difference of the means,
 *                        sqrt(sA^2/nA + sB^2/nB))
 *   compare_<NAME>.png   A and B mean spectra of one ROI
 *   difference.png       B - A of every ROI
 * B's spectra are put on A's energies: taken as they are when the grids agree (same length,
 * every energy within 1 meV), else interpolated linearly (NaN outside B's range).
 * The same region specs are applied to both stacks (each validated against its own size).
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../io/errors.js';
import { checkName } from '../io/references.js';
import { parseRegion, regionSpectra, type RegionSpectrum } from '../stack/regions.js';
import type { StackSource } from '../stack/source.js';
import { renderLinePlot, SERIES_COLORS } from '../plot/lineplot.js';

export interface RoiSpec {
  name: string;
  /** rect:x0,y0,x1,y1 | circle:x,y,r | mask:FILE */
  spec: string;
}

export interface SpectraOptions {
  stack: StackSource;
  energies: Float64Array;
  rois: readonly RoiSpec[];
  /** Existing folder to write into. */
  outDir: string;
  compare?: { stack: StackSource; energies: Float64Array };
  /** Labels of the two stacks in plots and summary (default 'A' and 'B'). */
  labels?: { a: string; b: string };
  /** y-axis label of the plots (default 'optical density'). */
  quantity?: string;
  /** Memory for rows read at once, bytes. */
  budgetBytes?: number;
  /** Progress of the reads, in spectra: the stack's, then the compared stack's. */
  onTile?: (done: number, total: number) => void;
  onCompareTile?: (done: number, total: number) => void;
}

export interface SpectraSummary {
  rois: { name: string; spec: string; pixels: number; skippedValues: number }[];
  files: string[];
  compare?: {
    stack: string;
    energyGrid: 'same' | 'interpolated';
    rois: { name: string; pixels: number; skippedValues: number; maxAbsDiff: number; maxAbsDiffEnergy: number }[];
  };
}

/** `--roi NAME=SPEC` → RoiSpec (checks the name; the region is validated against the stack later). */
export function parseRoiArg(arg: string): RoiSpec {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new InputError('--roi', `'${arg}': expected NAME=rect:x0,y0,x1,y1, NAME=circle:x,y,r or NAME=mask:FILE`);
  const name = checkName(arg.slice(0, eq).trim(), `--roi ${arg.slice(0, eq).trim()}`);
  return { name, spec: arg.slice(eq + 1).trim() };
}

function csvNumber(v: number): string {
  return Number.isFinite(v) ? String(v) : 'nan';
}

function onGrid(from: Float64Array, values: Float64Array, to: Float64Array): Float64Array {
  const n = from.length;
  return to.map((e) => {
    if (e < from[0] - 1e-3 || e > from[n - 1] + 1e-3) return NaN;
    if (e <= from[0]) return values[0];
    if (e >= from[n - 1]) return values[n - 1];
    let a = 0, b = n - 1;
    while (b - a > 1) {
      const m = (a + b) >>> 1;
      if (from[m] <= e) a = m;
      else b = m;
    }
    return values[a] + ((e - from[a]) / (from[b] - from[a])) * (values[b] - values[a]);
  });
}

async function statsOf(stack: StackSource, energies: Float64Array, rois: readonly RoiSpec[], budget: number | undefined, label: string, onTile?: (done: number, total: number) => void): Promise<RegionSpectrum[]> {
  if (energies.length !== stack.nE) throw new InputError(stack.path, `${energies.length} energies for a stack of ${stack.nE} images`);
  const regions = [];
  for (const r of rois) regions.push({ name: r.name, region: await parseRegion(r.spec, stack.width, stack.height, `--roi ${r.name}${label}`) });
  return regionSpectra(stack, regions, budget, onTile);
}

export async function writeRegionSpectra(o: SpectraOptions): Promise<SpectraSummary> {
  if (o.rois.length === 0) throw new InputError('--roi', 'at least one region is needed');
  const names = new Set<string>();
  for (const r of o.rois) {
    checkName(r.name, `--roi ${r.name}`);
    if (names.has(r.name)) throw new InputError(`--roi ${r.name}`, 'the name is used twice');
    names.add(r.name);
  }
  if (!fs.existsSync(o.outDir) || !fs.statSync(o.outDir).isDirectory()) throw new RangeError(`writeRegionSpectra: ${o.outDir} is not a folder`);
  const labels = o.labels ?? { a: 'A', b: 'B' };
  // Labels become CSV column names and file-safe suffixes.
  checkName(labels.a, '--labels');
  checkName(labels.b, '--labels');
  if (labels.a === labels.b) throw new InputError('--labels', `the two stacks need different labels, got '${labels.a}' twice`);
  const quantity = o.quantity ?? 'optical density';
  const E = o.energies;
  const files: string[] = [];
  const write = (name: string, data: string | Uint8Array) => {
    fs.writeFileSync(path.join(o.outDir, name), data);
    files.push(name);
  };

  const a = await statsOf(o.stack, E, o.rois, o.budgetBytes, o.compare ? ` (${labels.a})` : '', o.onTile);
  const header = ['energy_eV', ...a.flatMap((s) => [`${s.name}_mean`, `${s.name}_std`, `${s.name}_n`])];
  const rows = [header.join(',')];
  for (let e = 0; e < E.length; e++) rows.push([csvNumber(E[e]), ...a.flatMap((s) => [csvNumber(s.mean[e]), csvNumber(s.std[e]), String(s.count[e])])].join(','));
  write('spectra.csv', rows.join('\n') + '\n');
  write('spectra.png', await renderLinePlot({
    series: a.map((s) => ({ x: E, y: s.mean, label: `${s.name} (${s.region.pixels} px)` })),
    xlabel: 'energy (eV)', ylabel: quantity, title: `mean spectra${o.compare ? ` (${labels.a})` : ''}`,
  }));
  for (const [k, s] of a.entries()) {
    const c = SERIES_COLORS[k % SERIES_COLORS.length];
    write(`roi_${s.name}.png`, await renderLinePlot({
      series: [
        { x: E, y: s.mean.map((m, e) => m - s.std[e]), y2: s.mean.map((m, e) => m + s.std[e]), label: 'mean ± std', color: c, kind: 'band' },
        { x: E, y: s.mean, label: 'mean', color: c },
      ],
      xlabel: 'energy (eV)', ylabel: quantity, title: `${s.name}: ${s.region.spec} (${s.region.pixels} px)`,
    }));
  }
  const summary: SpectraSummary = {
    rois: a.map((s) => ({ name: s.name, spec: s.region.spec, pixels: s.region.pixels, skippedValues: s.skipped })),
    files,
  };
  if (!o.compare) return summary;

  const Eb = o.compare.energies;
  const b = await statsOf(o.compare.stack, Eb, o.rois, o.budgetBytes, ` (${labels.b})`, o.onCompareTile);
  const same = Eb.length === E.length && Eb.every((v, i) => Math.abs(v - E[i]) <= 1e-3);
  const put = (v: Float64Array) => (same ? v : onGrid(Eb, v, E));
  const bm = b.map((s) => put(s.mean));
  const bs = b.map((s) => put(s.std));
  const bn = b.map((s) => put(s.count));
  const diff = a.map((s, k) => s.mean.map((m, e) => bm[k][e] - m));
  const se = a.map((s, k) => s.mean.map((_, e) => Math.sqrt(s.std[e] ** 2 / s.count[e] + bs[k][e] ** 2 / bn[k][e])));
  const cHeader = ['energy_eV', ...a.flatMap((s) => [`${s.name}_${labels.a}`, `${s.name}_${labels.b}`, `${s.name}_diff`, `${s.name}_diff_se`])];
  const cRows = [cHeader.join(',')];
  for (let e = 0; e < E.length; e++) {
    cRows.push([csvNumber(E[e]), ...a.flatMap((s, k) => [csvNumber(s.mean[e]), csvNumber(bm[k][e]), csvNumber(diff[k][e]), csvNumber(se[k][e])])].join(','));
  }
  write('compare.csv', cRows.join('\n') + '\n');
  for (const [k, s] of a.entries()) {
    write(`compare_${s.name}.png`, await renderLinePlot({
      series: [{ x: E, y: s.mean, label: labels.a }, { x: E, y: bm[k], label: labels.b }],
      xlabel: 'energy (eV)', ylabel: quantity, title: `${s.name}: ${labels.a} and ${labels.b}`,
    }));
  }
  write('difference.png', await renderLinePlot({
    series: a.map((s, k) => ({ x: E, y: diff[k], label: s.name })),
    xlabel: 'energy (eV)', ylabel: `${quantity}, ${labels.b} - ${labels.a}`, title: `difference spectra (${labels.b} - ${labels.a})`,
  }));
  summary.compare = {
    stack: o.compare.stack.path,
    energyGrid: same ? 'same' : 'interpolated',
    rois: b.map((s, k) => {
      let m = 0, at = NaN;
      diff[k].forEach((d, e) => {
        if (Math.abs(d) > m) [m, at] = [Math.abs(d), E[e]];
      });
      return { name: s.name, pixels: s.region.pixels, skippedValues: s.skipped, maxAbsDiff: m, maxAbsDiffEnergy: at };
    }),
  };
  return summary;
}
