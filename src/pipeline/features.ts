/**
 * Feature inputs for k-means: maps from files (`--features a.npy,b.tif`), maps by name from an
 * earlier output folder (`--from DIR`), or whole spectra from a stack.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../io/errors.js';
import { NpyFile, formatShape } from '../io/npy.js';
import { TiffStack } from '../io/tiff.js';
import type { StackSource } from '../stack/source.js';
import { featureArray, featuresFromMaps, type Features } from '../cpu/kmeans.js';

/** Pixels of a feature set and its image shape. */
export interface FeatureImage {
  features: Features;
  width: number;
  height: number;
}

/**
 * One 2-D map per feature file (`--features a.npy,b.tif`): .npy [H, W] of any numeric type or
 * a single-page TIFF (uint8, uint16, float32), read as float32. Names default to the file
 * names without extension. All maps must have the same shape.
 */
export async function readFeatureMaps(files: string[], names?: string[], heap = false): Promise<FeatureImage> {
  if (files.length === 0) throw new InputError('--features', 'no feature maps given');
  const maps: Float32Array[] = [];
  let width = 0, height = 0;
  for (const file of files) {
    const ext = path.extname(file).toLowerCase();
    let map: Float32Array, w: number, h: number;
    if (ext === '.npy') {
      const f = NpyFile.open(file);
      try {
        const shape = f.shape.length === 3 && f.shape[0] === 1 ? f.shape.slice(1) : f.shape;
        if (shape.length !== 2) throw new InputError(file, `expected a 2-D map [height, width], got shape ${formatShape(f.shape)}`);
        [h, w] = shape;
        map = new Float32Array(w * h);
        f.readElements(0, w * h, map, 0);
      } finally {
        f.close();
      }
    } else if (ext === '.tif' || ext === '.tiff') {
      const t = await TiffStack.open(file);
      try {
        if (t.nE !== 1) throw new InputError(file, `expected a single-page map, found ${t.nE} pages`);
        [w, h] = [t.width, t.height];
        map = new Float32Array(w * h);
        await t.readRows(0, h, map);
      } finally {
        t.close();
      }
    } else {
      throw new InputError(file, `unknown map format '${ext || '(no extension)'}' (supported: .npy, .tif)`);
    }
    if (maps.length === 0) [width, height] = [w, h];
    else if (w !== width || h !== height) throw new InputError(file, `map is ${w} x ${h}, ${files[0]} is ${width} x ${height}`);
    maps.push(map);
  }
  const featureNames = names ?? files.map((f) => path.basename(f).replace(/\.[^.]*$/, ''));
  return { features: featuresFromMaps(maps, featureNames, heap), width, height };
}

/**
 * `--from DIR --features e0_half,PE_over_b1`: each name resolves to DIR/name.npy, else
 * DIR/name.tif (maps written by an earlier xanes command).
 */
export function featurePathsFromDir(dir: string, names: string[]): string[] {
  return names.map((name) => {
    for (const ext of ['.npy', '.tif', '.tiff']) {
      const p = path.join(dir, name + ext);
      if (fs.existsSync(p)) return p;
    }
    throw new InputError('--features', `no map '${name}' in ${dir} (looked for ${name}.npy and ${name}.tif)`);
  });
}

/**
 * Whole spectra as features (d = number of energies): the stack read at once, which is
 * already feature-major. Refuses stacks larger than `maxBytes` (default 4 GiB): cluster
 * PCA scores instead (pcaRun), which holds n maps rather than every energy.
 */
export async function featuresFromStack(source: StackSource, energies: Float64Array, maxBytes = 4 * 2 ** 30, heap = false): Promise<FeatureImage> {
  const { nE, height: H, width: W } = source;
  const bytes = 4 * nE * H * W;
  if (bytes > maxBytes) {
    throw new InputError(source.path, `whole spectra need ${(bytes / 2 ** 30).toFixed(1)} GiB in memory (limit ${(maxBytes / 2 ** 30).toFixed(1)} GiB): cluster PCA scores instead (--pca n)`);
  }
  // Shared memory: the CPU k-means threads read it without a copy; `heap`: the WebAssembly
  // heap (featureArray), read in place by the CPU sweep; the caller releases it (releaseFeatures).
  const data = featureArray(nE * H * W, heap);
  await source.readRows(0, H, data);
  const names = Array.from(energies, (e) => `E${e.toFixed(2)}`);
  return { features: { d: nE, n: H * W, data, names }, width: W, height: H };
}
