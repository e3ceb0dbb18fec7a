/**
 * `xanes inspect OUT --pixel x,y` (or --roi x0,y0,x1,y1): the inspector's view of one pixel
 * (or the mean over a rectangle) as a PNG and its numbers as CSV, from the same
 * inspectPixel as report.html, so scripts and papers get what the page shows.
 *   pixel.png    the plots, one under the other
 *   curves.csv   energy, spectrum and every drawn curve
 *   values.csv   every map's value at the pixel (with standard errors), and the twins'
 */
import fs from 'node:fs';
import path from 'node:path';
import { decode, encode } from 'fast-png';
import { InputError } from '../io/errors.js';
import { withOutputDir } from '../io/run-output.js';
import { lineSpec } from '../plot/specs.js';
import { renderSpec } from '../plot/render.js';
import { collect } from './collect.js';
import { inspectPixel, type PixelView } from './inspect-model.js';
import { readSpectraIndex, readSpectrum } from './spectra-file.js';

export interface InspectOptions {
  dir: string;
  pixel?: [number, number];
  roi?: [number, number, number, number];
  out: string;
}

function num(v: number): string {
  return Number.isFinite(v) ? String(v) : 'nan';
}

/** The view of a pixel or of the mean over a rectangle (NaN-skipping means of maps and spectra). */
export function inspectFolder(dir: string, pixel?: [number, number], roi?: [number, number, number, number]): PixelView {
  const { meta, maps } = collect(dir);
  const { width: W, height: H } = meta;
  const index = readSpectraIndex(dir);
  const step = index?.step ?? 1;
  let pixels: [number, number][];
  if (pixel) {
    const [x, y] = pixel;
    if (x >= W || y >= H) throw new InputError('--pixel', `${x},${y} is outside the ${W} x ${H} field`);
    pixels = [[Math.floor(x / step) * step, Math.floor(y / step) * step]];
  } else if (roi) {
    const [x0, y0, x1, y1] = roi;
    if (x1 > W || y1 > H) throw new InputError('--roi', `${roi.join(',')} reaches outside the ${W} x ${H} field`);
    pixels = [];
    for (let y = Math.ceil(y0 / step) * step; y < y1; y += step) for (let x = Math.ceil(x0 / step) * step; x < x1; x += step) pixels.push([x, y]);
    if (pixels.length === 0) throw new InputError('--roi', `holds no pixel whose spectrum was kept (every ${step}th pixel is)`);
  } else {
    throw new InputError('--pixel', 'give --pixel x,y or --roi x0,y0,x1,y1');
  }
  const mean = (f: (x: number, y: number) => number) => {
    let s = 0, n = 0;
    for (const [x, y] of pixels) {
      const v = f(x, y);
      if (Number.isFinite(v)) [s, n] = [s + v, n + 1];
    }
    return n ? s / n : NaN;
  };
  const value = (name: string) => (maps[name] ? (pixels.length === 1 || name === 'status' || name === 'labels' ? maps[name][pixels[0][1] * W + pixels[0][0]] : mean((x, y) => maps[name][y * W + x])) : NaN);
  let spectrum: Float64Array | null = null;
  if (index) {
    const all = pixels.map(([x, y]) => readSpectrum(dir, index, x, y));
    spectrum = Float64Array.from({ length: index.nE }, (_, e) => {
      let s = 0, n = 0;
      for (const sp of all) if (Number.isFinite(sp[e])) [s, n] = [s + sp[e], n + 1];
      return n ? s / n : NaN;
    });
  }
  const [px, py] = pixels[0];
  const view = inspectPixel(meta, px, py, value, spectrum);
  if (step > 1) view.notes.unshift(`spectra kept for every ${step}th pixel: ${pixel ? `pixel ${px},${py} is the kept pixel nearest ${pixel.join(',')}` : `${pixels.length} kept pixels in the region`}`);
  if (roi) view.notes.unshift(`mean over ${pixels.length} pixels of x ${roi[0]}..${roi[2] - 1}, y ${roi[1]}..${roi[3] - 1} (status and cluster of the first)`);
  return view;
}

/** The plots one under the other, on white. */
async function stackedPng(view: PixelView): Promise<Uint8Array> {
  const imgs = [];
  for (const p of view.plots) imgs.push(decode((await renderSpec(lineSpec({ ...p, width: 640, height: p.height ?? 340 }))).png));
  if (imgs.length === 0) throw new InputError('inspect', 'nothing to draw at this pixel (no spectrum was kept and the command has no curves)');
  const W = Math.max(...imgs.map((i) => i.width));
  const H = imgs.reduce((s, i) => s + i.height, 0);
  const out = new Uint8Array(W * H * 3).fill(255);
  let y0 = 0;
  for (const i of imgs) {
    const c = i.channels;
    for (let y = 0; y < i.height; y++) for (let x = 0; x < i.width; x++) for (let k = 0; k < 3; k++) out[((y0 + y) * W + x) * 3 + k] = i.data[(y * i.width + x) * c + k] as number;
    y0 += i.height;
  }
  return encode({ width: W, height: H, data: out, channels: 3 });
}

export function curvesCsv(view: PixelView): string {
  const { header, columns } = view.table;
  const n = columns[0]?.length ?? 0;
  const lines = [header.join(',')];
  for (let i = 0; i < n; i++) lines.push(columns.map((c) => num(c[i])).join(','));
  return lines.join('\n') + '\n';
}

export function valuesCsv(view: PixelView): string {
  const lines = ['name,value,stderr,unit,source'];
  for (const r of view.rows) lines.push([r.name, num(r.value), r.stderr !== undefined ? num(r.stderr) : '', `"${r.unit.replace(/"/g, '""')}"`, r.source].join(','));
  if (view.status) lines.push(`status,,,"${view.status}",map`);
  return lines.join('\n') + '\n';
}

export async function runInspect(o: InspectOptions): Promise<{ out: string; view: PixelView }> {
  if (!fs.existsSync(path.join(o.dir, 'summary.json'))) throw new InputError(o.dir, 'no summary.json: not an output folder of a finished xanes command');
  const view = inspectFolder(o.dir, o.pixel, o.roi);
  const png = await stackedPng(view);
  await withOutputDir(o.out, [o.dir], async (dir) => {
    dir.writeBytes('pixel.png', png);
    dir.writeText('curves.csv', curvesCsv(view));
    dir.writeText('values.csv', valuesCsv(view));
    dir.writeText('notes.txt', [`pixel ${view.x},${view.y}`, ...(view.status ? [`status ${view.status}`] : []), ...view.notes].join('\n') + '\n');
  });
  return { out: o.out, view };
}
