/**
 * The pixels the k-means across fields (src/pipeline/combined.ts) fits its centres on, drawn
 * while the fields' feature maps are read one field at a time, so that the fit holds at most
 * `limit` pixels whatever the size of the study:
 *  - a pixel is included when every feature is finite and, with a weight map and a minimum
 *    weight, its weight is >= that minimum (the rule of the whole clustering);
 *  - when the study has at most `limit` included pixels, all of them are fitted (the exact
 *    k-means of every pixel);
 *  - else a uniform random sample without replacement of exactly `limit` included pixels:
 *    reservoir sampling (Algorithm R, Vitter 1985) over the fields in the study's order, one
 *    53-bit uniform draw per included pixel after the first `limit`, from a generator seeded
 *    by the recipe's k-means seed (src/synth/random.ts, xoshiro128**).
 * The sample is returned in study order (field, then pixel), so it depends only on the
 * fields' maps, the seed and the limit: not on --memory, the backend, threads or shards.
 */
import { makeRng, type Rng } from '../synth/random.js';
import { featureArray } from '../cpu/kmeans.js';
import type { Features } from '../cpu/kmeans.js';
import { mixSeed } from './kmeans.js';

/** Pixels the centres are fitted on at most (recipe `cluster.fitSample`, --fit-sample). */
export const FIT_SAMPLE_DEFAULT = 1_000_000;

/** The stream of the sample's draws: (seed, 0, FIT_SAMPLE_STREAM) (k-means++ seeding uses 0xffff). */
const FIT_SAMPLE_STREAM = 0xfffe;

/** Bytes the sampler holds per pixel of the sample: the reservoir (float32 per feature) and each pixel's index. */
export const sampleBytesPerPixel = (d: number) => 4 * d + 8;

export const SAMPLE_RULE_ALL = 'every included pixel (the study has no more than the limit)';
export const SAMPLE_RULE_RESERVOIR = 'uniform random sample without replacement (reservoir sampling over the fields in study order, seeded by the k-means seed), fitted in study order';

export interface FitSample {
  /** The sample, feature-major, in study order (shared memory: the CPU engine's threads read it). */
  features: Features;
  /** Pixels of the study, and how many of them are included (every feature finite, weight >= minimum). */
  total: number;
  included: number;
  rule: string;
}

export class FitSampler {
  private readonly reservoir: Float32Array;
  private readonly index: Float64Array;
  private readonly rng: Rng;
  private seen = 0;
  private total = 0;

  constructor(readonly d: number, readonly limit: number, seed: number) {
    if (!(Number.isInteger(limit) && limit >= 1)) throw new RangeError(`FitSampler: limit must be a positive integer, got ${limit}`);
    this.reservoir = new Float32Array(d * limit);
    this.index = new Float64Array(limit);
    this.rng = makeRng(mixSeed(seed, 0, FIT_SAMPLE_STREAM));
  }

  /** One field's maps (in feature order), in the study's order; `minWeight` applies with a weight map. */
  add(maps: Float32Array[], weight?: Float32Array, minWeight?: number): void {
    const { d, limit, reservoir: res, index } = this;
    if (maps.length !== d) throw new RangeError(`FitSampler: ${maps.length} maps, expected ${d}`);
    const P = maps[0].length;
    const base = this.total;
    const useWeight = weight !== undefined && minWeight !== undefined;
    for (let p = 0; p < P; p++) {
      let ok = true;
      for (let f = 0; f < d && ok; f++) ok = Number.isFinite(maps[f][p]);
      if (ok && useWeight && !(weight![p] >= minWeight!)) ok = false;
      if (!ok) continue;
      const t = this.seen++;
      let slot = t;
      if (t >= limit) {
        // A 53-bit uniform in [0, 1): exact for any index below 2^53.
        const u = (this.rng.uint32() * 2097152 + (this.rng.uint32() >>> 11)) / 9007199254740992;
        slot = Math.floor(u * (t + 1));
        if (slot >= limit) continue;
      }
      for (let f = 0; f < d; f++) res[f * limit + slot] = maps[f][p];
      index[slot] = base + p;
    }
    this.total += P;
  }

  /** The sample in study order; `heap`: in the WebAssembly heap (featureArray; the caller releases it with releaseFeatures). */
  finish(names: string[], heap = false): FitSample {
    const { d, limit } = this;
    const m = Math.min(this.seen, limit);
    const data = featureArray(d * m, heap);
    if (this.seen <= limit) {
      for (let f = 0; f < d; f++) data.set(this.reservoir.subarray(f * limit, f * limit + m), f * m);
    } else {
      const order = new Uint32Array(m);
      for (let i = 0; i < m; i++) order[i] = i;
      const idx = this.index;
      order.sort((a, b) => idx[a] - idx[b]);
      for (let f = 0; f < d; f++) {
        const src = this.reservoir.subarray(f * limit, (f + 1) * limit);
        for (let i = 0; i < m; i++) data[f * m + i] = src[order[i]];
      }
    }
    return {
      features: { d, n: m, data, names }, total: this.total, included: this.seen,
      rule: this.seen <= limit ? SAMPLE_RULE_ALL : SAMPLE_RULE_RESERVOIR,
    };
  }
}
