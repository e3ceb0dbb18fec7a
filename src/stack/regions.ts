/**
 * Regions of a stack's image, and their mean and standard-deviation spectra.
 *
 * Specs (pixel coordinates: x = column, y = row, 0-based, row 0 = the first image row):
 *   rect:x0,y0,x1,y1   the pixels x0 <= x < x1, y0 <= y < y1 (half-open, as the numpy slice
 *                      stack[:, y0:y1, x0:x1]); integers with 0 <= x0 < x1 <= W, 0 <= y0 < y1 <= H
 *   circle:x,y,r       the pixels whose centres lie within r of (x, y): (px-x)^2 + (py-y)^2 <= r^2;
 *                      the whole circle must lie inside the image (x - r >= 0, x + r <= W - 1, ...)
 *   mask:FILE          a 2-D .npy ([H, W], or [1, H, W]) or single-page .tif of the stack's size;
 *                      pixels with a non-zero, finite value are in
 * A region outside (or partly outside) the image, a mask of another shape, or a region with
 * no pixel is an InputError, so a typo never silently averages the wrong pixels.
 *
 * Spectra are accumulated while streaming the stack by rows (a few rows at a time, within a
 * memory budget), so they work on stacks larger than memory. Per energy, non-finite values
 * (masked points) are skipped and counted; the mean and the sample standard deviation
 * (n - 1 in the denominator) come from Welford's update, which stays accurate when the mean
 * is much larger than the spread (transmitted counts).
 */
import fs from 'node:fs';
import { InputError } from '../io/errors.js';
import { NpyFile, formatShape } from '../io/npy.js';
import { TiffStack } from '../io/tiff.js';
import type { StackSource } from './source.js';

export type RegionKind = 'rect' | 'circle' | 'mask';

export interface Region {
  /** The spec as given. */
  spec: string;
  kind: RegionKind;
  /** Bounding box, half-open: rows [y0, y1), columns [x0, x1). */
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  /** Number of pixels in the region. */
  pixels: number;
  /** Whether pixel (x, y) is in the region. */
  contains(x: number, y: number): boolean;
  /** For mask regions: the file. */
  maskPath?: string;
}

const INT = /^[+-]?\d+$/;
const NUM = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function numbers(body: string, count: number, where: string, spec: string, form: string, integer: boolean): number[] {
  const parts = body.split(',').map((s) => s.trim());
  if (parts.length !== count || parts.some((p) => !(integer ? INT : NUM).test(p))) {
    throw new InputError(where, `'${spec}': expected ${form} (${integer ? 'integers' : 'numbers'})`);
  }
  return parts.map(Number);
}

/**
 * Parses and validates a region spec against an image of width x height pixels. `where`
 * starts the error message (e.g. '--roi core' or '--ref NiO').
 */
export async function parseRegion(spec: string, width: number, height: number, where: string): Promise<Region> {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? '' : spec.slice(0, colon).trim().toLowerCase();
  const body = colon < 0 ? '' : spec.slice(colon + 1);
  const size = `the image is ${width} x ${height} pixels (x 0..${width - 1}, y 0..${height - 1})`;
  if (kind === 'rect') {
    const [x0, y0, x1, y1] = numbers(body, 4, where, spec, 'rect:x0,y0,x1,y1', true);
    if (!(x0 < x1 && y0 < y1)) throw new InputError(where, `'${spec}': needs x0 < x1 and y0 < y1 (x1, y1 are exclusive)`);
    if (x0 < 0 || y0 < 0 || x1 > width || y1 > height) throw new InputError(where, `'${spec}' lies outside the image: ${size}; x1, y1 may be at most ${width}, ${height}`);
    return {
      spec, kind, x0, y0, x1, y1,
      pixels: (x1 - x0) * (y1 - y0),
      contains: (x, y) => x >= x0 && x < x1 && y >= y0 && y < y1,
    };
  }
  if (kind === 'circle') {
    const [cx, cy, r] = numbers(body, 3, where, spec, 'circle:x,y,r', false);
    if (!(r > 0)) throw new InputError(where, `'${spec}': the radius must be positive`);
    if (cx - r < 0 || cy - r < 0 || cx + r > width - 1 || cy + r > height - 1) {
      throw new InputError(where, `'${spec}' lies (partly) outside the image: ${size}`);
    }
    const x0 = Math.ceil(cx - r), x1 = Math.floor(cx + r) + 1, y0 = Math.ceil(cy - r), y1 = Math.floor(cy + r) + 1;
    const contains = (x: number, y: number) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
    let pixels = 0;
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (contains(x, y)) pixels++;
    if (pixels === 0) throw new InputError(where, `'${spec}' contains no pixel centre (radius too small)`);
    return { spec, kind, x0, y0, x1, y1, pixels, contains };
  }
  if (kind === 'mask') {
    const file = body.trim();
    if (file === '') throw new InputError(where, `'${spec}': expected mask:FILE (.npy or .tif)`);
    const m = await readMask(file, width, height);
    let x0 = width, y0 = height, x1 = 0, y1 = 0, pixels = 0;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (!m[y * width + x]) continue;
        pixels++;
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x + 1);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y + 1);
      }
    }
    if (pixels === 0) throw new InputError(file, 'the mask selects no pixel (no non-zero value)');
    return { spec, kind, x0, y0, x1, y1, pixels, contains: (x, y) => m[y * width + x] === 1, maskPath: file };
  }
  throw new InputError(where, `'${spec}' is not a region: use rect:x0,y0,x1,y1, circle:x,y,r or mask:FILE`);
}

/** A mask file as H*W bytes (1 = in). */
async function readMask(file: string, width: number, height: number): Promise<Uint8Array> {
  if (!fs.existsSync(file)) throw new InputError(file, 'no such file (mask)');
  const ext = /\.[^./\\]*$/.exec(file)?.[0].toLowerCase() ?? '';
  let values: ArrayLike<number>;
  let shape: number[];
  if (ext === '.npy') {
    const f = NpyFile.open(file);
    try {
      shape = f.shape;
      const is2d = shape.length === 2 || (shape.length === 3 && shape[0] === 1);
      if (!is2d) throw new InputError(file, `mask must be a 2-D array [H, W], got shape ${formatShape(shape)}`);
      values = f.readAll();
    } finally {
      f.close();
    }
    shape = shape.slice(-2);
  } else if (ext === '.tif' || ext === '.tiff') {
    const t = await TiffStack.open(file);
    try {
      if (t.nE !== 1) throw new InputError(file, `mask must be a single image, the TIFF has ${t.nE} pages`);
      shape = [t.height, t.width];
      const buf = new Float32Array(t.height * t.width);
      await t.readRows(0, t.height, buf);
      values = buf;
    } finally {
      t.close();
    }
  } else {
    throw new InputError(file, `unknown mask format '${ext || '(no extension)'}' (supported: .npy, .tif)`);
  }
  if (shape[0] !== height || shape[1] !== width) {
    throw new InputError(file, `mask is ${shape[1]} x ${shape[0]} pixels (W x H), the stack is ${width} x ${height}`);
  }
  const m = new Uint8Array(width * height);
  for (let i = 0; i < m.length; i++) m[i] = values[i] !== 0 && Number.isFinite(values[i]) ? 1 : 0;
  return m;
}

export interface RegionSpectrum {
  name: string;
  region: Region;
  /** Per energy: mean and sample standard deviation over the region's finite values. */
  mean: Float64Array;
  std: Float64Array;
  /** Per energy: finite values used. */
  count: Float64Array;
  /** Non-finite values skipped, over all energies. */
  skipped: number;
}

/** Default memory for the rows read at once (bytes). */
export const REGION_READ_BYTES = 64 * 1024 * 1024;

/**
 * Mean and standard-deviation spectra of several regions in one streamed pass over the
 * rows that any of them touches (`budgetBytes` bounds the rows held at once).
 */
export async function regionSpectra(src: StackSource, regions: readonly { name: string; region: Region }[], budgetBytes = REGION_READ_BYTES, onTile?: (done: number, total: number) => void): Promise<RegionSpectrum[]> {
  const { nE, width: W } = src;
  const out: RegionSpectrum[] = regions.map(({ name, region }) => ({
    name, region,
    mean: new Float64Array(nE), std: new Float64Array(nE), count: new Float64Array(nE), skipped: 0,
  }));
  if (regions.length === 0) return out;
  const M2 = regions.map(() => new Float64Array(nE));
  const yFrom = Math.min(...regions.map((r) => r.region.y0));
  const yTo = Math.max(...regions.map((r) => r.region.y1));
  const rowsPerRead = Math.max(1, Math.min(yTo - yFrom, Math.floor(budgetBytes / (4 * nE * W))));
  const buf = new Float32Array(nE * rowsPerRead * W);
  for (let y0 = yFrom; y0 < yTo; y0 += rowsPerRead) {
    const rows = Math.min(rowsPerRead, yTo - y0);
    await src.readRows(y0, rows, buf);
    const n = rows * W;
    // Progress in spectra read (whole rows over the regions' span).
    onTile?.((y0 + rows - yFrom) * W, (yTo - yFrom) * W);
    regions.forEach(({ region }, k) => {
      // This chunk's pixels of the region, as offsets into one energy plane of the chunk.
      const idx: number[] = [];
      for (let y = Math.max(y0, region.y0); y < Math.min(y0 + rows, region.y1); y++) {
        for (let x = region.x0; x < region.x1; x++) if (region.contains(x, y)) idx.push((y - y0) * W + x);
      }
      if (idx.length === 0) return;
      const o = out[k], m2 = M2[k];
      for (let e = 0; e < nE; e++) {
        const base = e * n;
        let cnt = o.count[e], mean = o.mean[e], s2 = m2[e];
        for (const i of idx) {
          const v = buf[base + i];
          if (!Number.isFinite(v)) {
            o.skipped++;
            continue;
          }
          cnt++;
          const d = v - mean;
          mean += d / cnt;
          s2 += d * (v - mean);
        }
        o.count[e] = cnt;
        o.mean[e] = mean;
        m2[e] = s2;
      }
    });
  }
  out.forEach((o, k) => {
    for (let e = 0; e < nE; e++) {
      if (o.count[e] === 0) o.mean[e] = NaN;
      o.std[e] = o.count[e] > 1 ? Math.sqrt(M2[k][e] / (o.count[e] - 1)) : NaN;
    }
  });
  return out;
}
