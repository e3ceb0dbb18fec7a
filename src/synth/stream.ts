/**
 * A synthetic stack generated on the fly (no disk), for benchmarks and streaming tests at
 * any size: each pixel takes one spectrum from a pool of noisy Ni K-edge spectra (mixtures
 * of the measured NiO and LiNiO2 references with random state of charge, thickness and
 * noise), so generating a tile costs a copy, not a simulation.
 */
import type { StackSource } from '../stack/source.js';
import { checkRowRequest } from '../stack/source.js';
import { niMixtureSpectrum, niTxmEnergies } from './ni-txm.js';
import { makeRng } from './random.js';

/** Pixels of a row read as one run (see readRows). */
const READ_RUN = 64;

export class SyntheticStream implements StackSource {
  readonly dtype = 'float32 (generated)';
  readonly nE: number;
  /** The stack's energies (eV), so `--energies` is not needed. */
  readonly energies: Float64Array;
  /** The pool energy-major: spectrum k's value at energy i at i * poolSize + k (see readRows). */
  private pool: Float32Array;
  private readonly poolSize: number;

  constructor(readonly height: number, readonly width: number, seed = 1, poolSize = 4096, readonly path = '<synthetic stream>') {
    this.energies = niTxmEnergies();
    this.nE = this.energies.length;
    this.poolSize = poolSize;
    const rng = makeRng(seed);
    const nE = this.nE;
    // Pool stored energy-major, as the tiles are: one energy's values of the whole pool (16 KB
    // at 4096 spectra) stay in the L1 cache while a run of a tile's row is written.
    this.pool = new Float32Array(poolSize * nE);
    for (let k = 0; k < poolSize; k++) {
      const mix = niMixtureSpectrum(rng.uniform(), this.energies);
      const t = 0.3 + 1.2 * rng.uniform();
      const sigma = 0.005 + 0.02 * rng.uniform();
      for (let i = 0; i < nE; i++) this.pool[i * poolSize + k] = 0.02 + t * mix[i] + sigma * rng.normal();
    }
  }

  async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
    checkRowRequest(this, y0, rows, out);
    const nE = this.nE, W = this.width, P = rows * W, pool = this.pool, ps = this.poolSize;
    // Runs of READ_RUN pixels: their pool indices first, then per energy one contiguous run of
    // the energy-major tile from one energy's row of the pool, instead of one store P values
    // apart per energy and pixel. The same values.
    const src = new Int32Array(READ_RUN);
    for (let r = 0; r < rows; r++) {
      for (let x0 = 0; x0 < W; x0 += READ_RUN) {
        const n = Math.min(READ_RUN, W - x0);
        for (let j = 0; j < n; j++) src[j] = (((y0 + r) * 7919 + (x0 + j) * 104729) >>> 0) % ps;
        const p0 = r * W + x0;
        for (let i = 0; i < nE; i++) {
          const o = i * P + p0, q = i * ps;
          for (let j = 0; j < n; j++) out[o + j] = pool[q + src[j]];
        }
      }
    }
  }

  close(): void {}
}
