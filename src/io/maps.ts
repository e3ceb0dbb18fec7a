/**
 * Writers for 2-D maps: float32 maps and int16 cluster labels as .npy or .tif, by extension.
 */
import path from 'node:path';
import { InputError } from './errors.js';
import { writeNpy } from './npy.js';
import { writeTiffFloat32, writeTiffStack } from './tiff.js';

/** Labels as int16 (-1 excluded), the type labels.npy / labels.tif hold. */
export function labelsToInt16(labels: Int32Array): Int16Array {
  return Int16Array.from(labels);
}

/** labels.npy (int16 [H, W]) or labels.tif (int16, SampleFormat 2), by extension. */
export function writeLabels(file: string, labels: Int32Array | Int16Array, width: number, height: number): void {
  if (labels.length !== width * height) throw new RangeError(`writeLabels: ${labels.length} labels is not ${width} x ${height}`);
  const data = labels instanceof Int16Array ? labels : labelsToInt16(labels);
  const ext = path.extname(file).toLowerCase();
  if (ext === '.npy') writeNpy(file, data, [height, width]);
  else if (ext === '.tif' || ext === '.tiff') writeTiffStack(file, data, width, height, 1);
  else throw new InputError(file, `unknown label format '${ext}' (supported: .npy, .tif)`);
}

/** A float32 map as .npy [H, W] or .tif, by extension. */
export function writeMap(file: string, map: Float32Array, width: number, height: number): void {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.npy') writeNpy(file, map, [height, width]);
  else if (ext === '.tif' || ext === '.tiff') writeTiffFloat32(file, map, width, height);
  else throw new InputError(file, `unknown map format '${ext}' (supported: .npy, .tif)`);
}
