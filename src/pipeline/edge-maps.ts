/**
 * The edge step's maps from the kernels' rows (src/kernels/layout.ts). Its own module so a
 * CPU worker thread (src/cpu/edge-threads.ts) makes the maps of its part of a tile without
 * the step's GPU code.
 */
import type { TileDest, TileResult } from './step.js';
import { EdgeRow, EdgeStatus, NormRow } from '../kernels/layout.js';

/** Output maps in the order they are written; units in EDGE_MAP_UNITS (edge-step.ts). */
export const EDGE_MAP_NAMES = ['e0_half', 'e0_deriv', 'edge_step', 'noise', 'mask', 'whiteline_energy', 'whiteline_height'] as const;

/**
 * Turns the kernels' row layout into named maps (into `dest` where given); NaN where a pixel
 * is masked. Pixels p0 .. p1 - 1 only where given (a worker's part of a tile, into `dest`).
 */
export function edgeMaps(norm: Float32Array, edge: Float32Array, P: number, dest?: TileDest, p0 = 0, p1 = P): TileResult {
  const maps: Record<string, Float32Array> = {};
  for (const n of EDGE_MAP_NAMES) maps[n] = dest?.maps[n] ?? new Float32Array(P);
  const status = dest?.status ?? new Uint8Array(P);
  for (let p = p0; p < p1; p++) {
    const s = norm[NormRow.STATUS * P + p];
    status[p] = s;
    const ok = s === EdgeStatus.OK;
    maps.mask[p] = ok ? 1 : 0;
    // Step and noise stay defined for LOW_STEP pixels: they are the reason for the mask.
    maps.edge_step[p] = s === EdgeStatus.NO_DATA ? NaN : norm[NormRow.STEP * P + p];
    maps.noise[p] = s === EdgeStatus.NO_DATA ? NaN : norm[NormRow.NOISE * P + p];
    maps.e0_half[p] = ok ? edge[EdgeRow.E0_HALF * P + p] : NaN;
    maps.e0_deriv[p] = ok ? edge[EdgeRow.E0_DERIV * P + p] : NaN;
    maps.whiteline_energy[p] = ok ? edge[EdgeRow.WL_ENERGY * P + p] : NaN;
    maps.whiteline_height[p] = ok ? edge[EdgeRow.WL_HEIGHT * P + p] : NaN;
  }
  return { maps, status };
}
