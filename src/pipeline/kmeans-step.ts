/**
 * The k-means assignment as a PixelStep: labels new pixels with a fitted model, tile by tile.
 */
import type { Backend, PixelStep, TileResult } from './step.js';
import type { KmeansModel } from './kmeans.js';
import { KM_ROWS, KM_ROW_DIST2, KM_ROW_LABEL, kmeansAssignCpu } from '../cpu/kmeans.js';
import { kmeansAssignGpu } from '../kernels/kmeans.js';

export const KMEANS_STATUS_NAMES = ['ok', 'excluded'] as const;

/**
 * Labels new pixels with a fitted model: the tile is the raw features, feature-major
 * [d][P] (nE = d). Maps: 'label' (cluster as float, NaN excluded) and 'distance' (to the
 * centre, units clustered). Status 0 ok, 1 excluded (a non-finite feature).
 */
export function kmeansAssignStep(model: KmeansModel): PixelStep {
  const { d, k } = model;
  return {
    name: 'kmeans',
    mapNames: ['label', 'distance'],
    statusNames: KMEANS_STATUS_NAMES,
    // GPU: assignment rows, their readback buffer and the host copy of it (3 x 8 B), the two
    // maps (8 B), status (1 B) = 33; CPU: Int32 labels + float64 distances (12 B), maps,
    // status = 21. The larger.
    bytesPerPixel: () => 3 * 4 * KM_ROWS + 8 + 1,
    gpuBindingBytesPerPixel: () => 4 * Math.max(d, KM_ROWS),
    async runTile(backend: Backend, cube: Float32Array, P: number): Promise<TileResult> {
      const label = new Float32Array(P);
      const distance = new Float32Array(P);
      const status = new Uint8Array(P);
      if (backend.gpu) {
        const rows = await kmeansAssignGpu(backend.gpu, cube, P, model.st, k, model.centres, model.active);
        for (let p = 0; p < P; p++) {
          const l = rows[KM_ROW_LABEL * P + p];
          label[p] = l >= 0 ? l : NaN;
          distance[p] = l >= 0 ? Math.sqrt(rows[KM_ROW_DIST2 * P + p]) : NaN;
          status[p] = l >= 0 ? 0 : 1;
        }
      } else {
        const lab = new Int32Array(P);
        const d2 = new Float64Array(P);
        kmeansAssignCpu({ data: cube, stride: P, offset: 0, count: P }, d, model.st, k, model.centres, model.active, lab, d2, 0);
        for (let p = 0; p < P; p++) {
          label[p] = lab[p] >= 0 ? lab[p] : NaN;
          distance[p] = lab[p] >= 0 ? Math.sqrt(d2[p]) : NaN;
          status[p] = lab[p] >= 0 ? 0 : 1;
        }
      }
      return { maps: { label, distance }, status };
    },
  };
}
