/**
 * `--mask FILE|DIR` of the map-producing commands (edge, fit, lcf, pca, run): an earlier run's mask
 * (1 = used; 0 or NaN = masked), e.g. `xanes edge`'s mask.npy; a folder means its mask.npy.
 * Masked pixels become NaN in every map and take the step's no-data status, so they are
 * black in every picture and say why (masks travel: DESIGN.md).
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../io/errors.js';
import { readNpy } from '../io/npy.js';
import type { StackSource } from '../stack/source.js';
import type { MapSink } from './run-tiles.js';

export function loadPixelMask(arg: string, H: number, W: number): Uint8Array {
  let file = arg;
  if (fs.existsSync(arg) && fs.statSync(arg).isDirectory()) file = path.join(arg, 'mask.npy');
  if (!fs.existsSync(file)) throw new InputError('--mask', `${file}: no such file (give a mask .npy, or an earlier output folder holding mask.npy)`);
  if (!file.toLowerCase().endsWith('.npy')) throw new InputError('--mask', `${file}: expected a .npy mask [H, W] (1 = used, 0 = masked)`);
  const { data, shape } = readNpy(file);
  if (shape.length !== 2 || shape[0] !== H || shape[1] !== W) throw new InputError('--mask', `${file}: shape [${shape.join(', ')}], the stack's images are [${H}, ${W}]`);
  return Uint8Array.from(data as ArrayLike<number>, (v) => (Number(v) > 0 ? 1 : 0));
}

/** NaN in every map and `maskedStatus` where mask = 0; returns how many pixels it masked. */
export function applyPixelMask(maps: Record<string, Float32Array>, status: Uint8Array, mask: Uint8Array, maskedStatus: number, keep: readonly string[] = []): number {
  let n = 0;
  for (let p = 0; p < mask.length; p++) {
    if (mask[p]) continue;
    n++;
    status[p] = maskedStatus;
    for (const [name, m] of Object.entries(maps)) if (!keep.includes(name)) m[p] = name === 'mask' ? 0 : NaN;
  }
  return n;
}

/** Status counts by name after masking (as runTiles reports them). */
export function countStatus(status: Uint8Array, names: readonly string[]): Record<string, number> {
  const c = new Array(names.length).fill(0);
  for (const s of status) if (s < c.length) c[s]++;
  return Object.fromEntries(names.map((n, i) => [n, c[i]]));
}

/**
 * The stack with every value of a masked pixel (mask = 0) read as NaN: for steps whose
 * statistics span pixels (PCA's covariance), so a masked pixel takes no part in them and
 * ends with the step's no-data status and NaN maps.
 */
export function maskedSource(src: StackSource, mask: Uint8Array): StackSource {
  const W = src.width;
  return {
    path: src.path, nE: src.nE, height: src.height, width: W, dtype: src.dtype, energies: src.energies, pixelSizeUm: src.pixelSizeUm,
    volume: src.volume, layout: src.layout, flatField: src.flatField, darkField: src.darkField,
    async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
      await src.readRows(y0, rows, out);
      const n = rows * W;
      for (let q = 0; q < n; q++) {
        if (mask[y0 * W + q]) continue;
        for (let e = 0; e < src.nE; e++) out[e * n + q] = NaN;
      }
    },
    close: () => src.close(),
  };
}

/** Pixels the mask leaves out (mask = 0). */
export function maskedCount(mask: Uint8Array): number {
  let n = 0;
  for (const m of mask) if (!m) n++;
  return n;
}

/**
 * A map sink (maps streamed to disk tile by tile) that applies the mask to each tile first,
 * so the files hold NaN where the mask is 0, as applyPixelMask does to the maps in memory.
 */
export function maskedSink(sink: MapSink, mask: Uint8Array, width: number): MapSink {
  return {
    rows(y0: number, rows: number, maps: Record<string, Float32Array>): void {
      const off = y0 * width;
      for (let q = 0; q < rows * width; q++) {
        if (mask[off + q]) continue;
        for (const [name, m] of Object.entries(maps)) m[q] = name === 'mask' ? 0 : NaN;
      }
      sink.rows(y0, rows, maps);
    },
  };
}
