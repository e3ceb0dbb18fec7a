/**
 * Outputs are written whole or not at all: everything goes into a temporary sibling folder
 * that is renamed to --out only when the run has finished. A failed or interrupted run
 * leaves no --out (and a stale temporary folder is recognisable by its name).
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from './errors.js';
import { writeNpy, type NpyArray } from './npy.js';
import type { ResultsContext, ResultsInput } from './results-h5.js';
import { writeTiffFloat32 } from './tiff.js';

export class OutputDir {
  readonly tmp: string;
  /** What results.h5 needs beyond the files: inputs (energies, pixel size) and status names. */
  readonly results: ResultsContext = { inputs: new Map(), statusNames: new Map() };
  private done = false;

  private constructor(readonly finalPath: string) {
    this.tmp = `${finalPath}.partial-${process.pid}`;
  }

  /**
   * Refuses to replace a folder that is not an earlier xanes output (one with
   * summary.json), so a typo in --out cannot delete someone's data.
   */
  static create(out: string): OutputDir {
    const finalPath = path.resolve(out);
    if (fs.existsSync(finalPath)) {
      const st = fs.statSync(finalPath);
      const entries = st.isDirectory() ? fs.readdirSync(finalPath) : null;
      if (!entries || (entries.length > 0 && !entries.includes('summary.json'))) {
        throw new InputError(out, 'exists and is not an earlier xanes output folder; choose another --out');
      }
    }
    const parent = path.dirname(finalPath);
    if (!fs.existsSync(parent)) throw new InputError(out, `the parent folder ${parent} does not exist`);
    const d = new OutputDir(finalPath);
    fs.rmSync(d.tmp, { recursive: true, force: true });
    fs.mkdirSync(d.tmp);
    return d;
  }

  file(name: string): string {
    return path.join(this.tmp, name);
  }

  writeText(name: string, text: string): void {
    fs.writeFileSync(this.file(name), text);
  }

  writeBytes(name: string, bytes: Uint8Array): void {
    fs.writeFileSync(this.file(name), bytes);
  }

  /** A float32 map as <name>.npy and <name>.tif (Fiji/ImageJ opens the TIFF). */
  writeMap(name: string, data: Float32Array, height: number, width: number): void {
    writeNpy(this.file(`${name}.npy`), data, [height, width]);
    writeTiffFloat32(this.file(`${name}.tif`), data, width, height);
  }

  /** A step's maps (float32 .npy + .tif each) and its uint8 status.npy, optionally in a subfolder. */
  writeStepMaps(mapNames: readonly string[], maps: Record<string, Float32Array>, status: Uint8Array, height: number, width: number, sub = '', statusNames?: readonly string[]): void {
    if (statusNames) this.results.statusNames.set(sub.split(path.sep).join('/'), statusNames);
    if (sub) fs.mkdirSync(this.file(sub), { recursive: true });
    for (const name of mapNames) this.writeMap(path.join(sub, name), maps[name], height, width);
    this.writeNpy(path.join(sub, 'status'), status, [height, width]);
  }

  /** Records a stack this run read (field '' for single-stack commands), for results.h5. */
  recordInput(field: string, inp: ResultsInput): void {
    this.results.inputs.set(field, inp);
  }

  writeNpy(name: string, data: NpyArray, shape: number[]): void {
    writeNpy(this.file(`${name}.npy`), data, shape);
  }

  /** Moves the finished outputs into place (replacing an earlier run's folder). */
  commit(): void {
    if (fs.existsSync(this.finalPath)) fs.rmSync(this.finalPath, { recursive: true, force: true });
    fs.renameSync(this.tmp, this.finalPath);
    this.done = true;
  }

  /** Removes the temporary folder of a run that did not finish. */
  abandon(): void {
    if (!this.done) fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}
