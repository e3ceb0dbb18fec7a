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

export class SyntheticStream implements StackSource {
  readonly dtype = 'float32 (generated)';
  readonly nE: number;
  /** The stack's energies (eV), so `--energies` is not needed. */
  readonly energies: Float64Array;
  private pool: Float32Array;
  private readonly poolSize: number;

  constructor(readonly height: number, readonly width: number, seed = 1, poolSize = 4096, readonly path = '<synthetic stream>') {
    this.energies = niTxmEnergies();
    this.nE = this.energies.length;
    this.poolSize = poolSize;
    const rng = makeRng(seed);
    const nE = this.nE;
    // Pool stored pixel-major so one pixel's spectrum is contiguous.
    this.pool = new Float32Array(poolSize * nE);
    for (let k = 0; k < poolSize; k++) {
      const mix = niMixtureSpectrum(rng.uniform(), this.energies);
      const t = 0.3 + 1.2 * rng.uniform();
      const sigma = 0.005 + 0.02 * rng.uniform();
      for (let i = 0; i < nE; i++) this.pool[k * nE + i] = 0.02 + t * mix[i] + sigma * rng.normal();
    }
  }

  async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
    checkRowRequest(this, y0, rows, out);
    const nE = this.nE, W = this.width, P = rows * W;
    for (let r = 0; r < rows; r++) {
      for (let x = 0; x < W; x++) {
        const k = (((y0 + r) * 7919 + x * 104729) >>> 0) % this.poolSize;
        const src = k * nE, p = r * W + x;
        for (let i = 0; i < nE; i++) out[i * P + p] = this.pool[src + i];
      }
    }
  }

  close(): void {}
}
