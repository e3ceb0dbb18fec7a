/**
 * Whole-image fits in memory: `kmeans` over feature maps and `pca` of a cube, the library
 * entry points under `xanes cluster` and `xanes pca`. They call the same fits
 * (src/pipeline/kmeans.ts, elbow.ts, pca.ts) on the same backends, with the CLI's options and
 * checks, and return the labels, centres, scores and components without writing anything.
 */
import { InputError } from '../io/errors.js';
import { selectBackend } from '../pipeline/backend.js';
import { kmeansFit, type KmeansResult } from '../pipeline/kmeans.js';
import { elbow, type ElbowResult } from '../pipeline/elbow.js';
import { pcaRun, type PcaRunResult } from '../pipeline/pca.js';
import { featuresFromMaps, releaseFeatures } from '../cpu/kmeans.js';
import { memoryBytes } from '../options/convert.js';
import type { SectionValues } from '../options/schema.js';
import { checkCube } from './cube.js';
import { BACKEND_OPTION_IDS, checkOptions, type BackendOptions, type CubeShape } from './options.js';
import type { BackendRecord } from './maps.js';

type Cluster = SectionValues<'cluster'>;

/**
 * `xanes cluster`'s k-means options: k, or kRange (the elbow picks k), seed, restarts,
 * maxIter, standardize (default true: z-scores), minClusterSize; `mask`: pixels where it is
 * 0 or NaN are left out (label -1), as --mask does.
 */
export type KmeansMapsOptions = BackendOptions & Pick<Cluster, 'k' | 'kRange' | 'seed' | 'restarts' | 'maxIter' | 'standardize' | 'minClusterSize'> & { mask?: ArrayLike<number> };

export interface KmeansMapsResult extends KmeansResult {
  /** The elbow table and the k it chose (with kRange), else null. */
  elbow: ElbowResult | null;
  /** Pixels left out by `mask`. */
  maskedPixels: number;
  backendRecord: BackendRecord;
  notices: string[];
}

/**
 * k-means of per-pixel features: one map per feature (float32, equal lengths; named by the
 * object's keys), pixels with a non-finite feature left out. Labels are per pixel (-1 left
 * out), clusters numbered by their centres (first feature first) as `xanes cluster` numbers them.
 */
export async function kmeans(features: Record<string, Float32Array> | Float32Array[], options: KmeansMapsOptions): Promise<KmeansMapsResult> {
  const where = 'kmeans';
  const o = checkOptions(where, [...BACKEND_OPTION_IDS, 'cluster.k', 'cluster.kRange', 'cluster.seed', 'cluster.restarts', 'cluster.maxIter', 'cluster.standardize', 'cluster.minClusterSize'], options, ['mask']);
  if ((o.k === undefined) === (o.kRange === undefined)) throw new InputError(`${where}: k`, 'give exactly one of k and kRange');
  const named = Array.isArray(features) ? features.map((m, i): [string, Float32Array] => [`feature_${i + 1}`, m]) : Object.entries(features ?? {});
  if (named.length === 0) throw new InputError(`${where}: features`, 'at least one feature map is needed');
  for (const [name, m] of named) if (!(m instanceof Float32Array)) throw new InputError(`${where}: features`, `${name}: expected a Float32Array map`);
  const notices: string[] = [];
  const sel = await selectBackend(o.backend ?? 'auto', (l) => notices.push(l), 'kmeans', o.threads);
  // The CPU backend clusters features in the WebAssembly heap (read in place by its sweep,
  // src/cpu/kmeans.ts featureArray); released before returning.
  const f = featuresFromMaps(named.map(([, m]) => m), named.map(([n]) => n), !sel.backend.gpu);
  try {
    let maskedPixels = 0;
    if (o.mask !== undefined) {
      if (typeof o.mask !== 'object' || o.mask === null || o.mask.length !== f.n) throw new InputError(`${where}: mask`, `expected ${f.n} values (one per pixel), got ${o.mask?.length ?? typeof o.mask}`);
      // Left-out pixels get NaN features, which k-means excludes (label -1), as `xanes cluster --mask`.
      for (let p = 0; p < f.n; p++) {
        const v = o.mask[p];
        if (v !== 0 && Number.isFinite(v)) continue;
        maskedPixels++;
        for (let j = 0; j < f.d; j++) f.data[j * f.n + p] = NaN;
      }
    }
    // Only the options given: the fit's defaults (KMEANS_DEFAULTS) fill the rest, as for the CLI.
    const km = Object.fromEntries(Object.entries({ seed: o.seed, restarts: o.restarts, maxIter: o.maxIter, standardize: o.standardize }).filter(([, x]) => x !== undefined));
    let el: ElbowResult | null = null;
    let k = o.k;
    if (o.kRange) {
      el = await elbow(sel.backend, f, o.kRange, { ...km, minClusterSize: o.minClusterSize });
      k = el.k;
    }
    const r = await kmeansFit(sel.backend, f, { ...km, k: k! });
    return {
      ...r, elbow: el, maskedPixels, notices: [...notices, ...r.warnings.map((w) => `xanes: ${w}`)],
      backendRecord: { name: sel.backend.name, adapter: sel.backend.adapter, ...(sel.auto ? { auto: sel.auto } : {}) },
    };
  } finally {
    releaseFeatures(f);
  }
}

/** `xanes pca`'s options: components (default 3), the cube's shape, the backend. */
export type PcaOptions = CubeShape & BackendOptions & Pick<SectionValues<'pca'>, 'components'>;

export interface PcaResult extends Omit<PcaRunResult, 'files'> {
  backendRecord: BackendRecord;
  notices: string[];
}

/**
 * Principal components of the spectra of a cube: components, explained variance, score
 * maps and the reconstruction error per pixel (the values `xanes pca` writes).
 */
export async function pca(cube: Float32Array, energies: ArrayLike<number>, options: PcaOptions): Promise<PcaResult> {
  const where = 'pca';
  const o = checkOptions(where, [...BACKEND_OPTION_IDS, 'pca.components'], options, ['height', 'width']);
  const { source, energies: e } = await checkCube(where, cube, energies, o);
  const notices: string[] = [];
  const sel = await selectBackend(o.backend ?? 'auto', (l) => notices.push(l), 'pca', o.threads);
  const { files: _files, ...r } = await pcaRun(sel.backend, source, e, o.components ?? 3, { memoryBytes: memoryBytes(o.memory) });
  return { ...r, notices, backendRecord: { name: sel.backend.name, adapter: sel.backend.adapter, ...(sel.auto ? { auto: sel.auto } : {}) } };
}
