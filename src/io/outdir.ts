/**
 * Output folders that cannot destroy anything the engine did not create.
 *
 * - A run writes into a new temporary sibling `<out>.partial-<pid>` and moves it into place
 *   only when it has finished; a failed or interrupted run leaves no `<out>`.
 * - The temporary folder carries a marker file (MARKER) from its first moment. An existing
 *   `<out>` is replaced only when it carries that marker (an earlier xanes output) or is an
 *   empty folder; anything else is one clear error. A `summary.json` alone is not a marker.
 * - `--out` equal to, inside, or containing any input of the run (stack, flat, dark,
 *   references, masks, --from, ...) is an error before anything is read or written.
 * - Stale `<out>.partial-<pid>` / `<out>.old-<pid>` folders of processes that no longer
 *   exist (killed runs) are removed on the next run into the same place, if they carry the
 *   marker.
 * - Missing parents are created (mkdir -p) and removed again if the run fails; a parent
 *   that is a file, a read-only place or a full disk is one clear error naming the path.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InputError } from './errors.js';
import { littleEndianBytes, NpyFile, npyHeader, writeNpy, type NpyArray } from './npy.js';
import type { ResultsContext, ResultsInput } from './results-h5.js';
import { writeTiffRows, writeTiffStack } from './tiff.js';
import { VERSION } from '../version.js';

/** The marker file every output folder carries; its presence means "xanes wrote this folder". */
export const MARKER = '.xanes-output';

/**
 * What names this process's temporary folders inside a study shared by several machines
 * (a shared file system, where two machines may run processes of the same pid): host and pid.
 */
export function hostTag(): string {
  return `${os.hostname().replace(/[^A-Za-z0-9_.-]/g, '_')}-${process.pid}`;
}

/** The marker's content: who made the folder; `layout: 'study'` for the shared folder of a sharded run. */
export function markerText(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ tool: 'xanes-engine', version: VERSION, pid: process.pid, host: os.hostname(), created: new Date().toISOString(), ...extra }) + '\n';
}

/** An error about the output place (not the user's data): exit 2, one line naming the path. */
export class OutputError extends InputError {
  constructor(where: string, problem: string) {
    super(where, problem);
    this.name = 'OutputError';
  }
}

const FS_PROBLEMS: Record<string, string> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is exceeded',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EEXIST: 'a file of that name is in the way',
  EIO: 'input/output error of the disk',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
};

/**
 * A file-system error while writing the output as one clear line naming the file (its
 * final name, not the temporary folder's), or null if it is not about the output.
 */
export function outputFsError(e: unknown, out: string, dir?: OutputDir): OutputError | null {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err.code !== 'string' || !(err.code in FS_PROBLEMS)) return null;
  let where = out;
  if (err.path) {
    if (!dir) where = err.path;
    else if (err.path === dir.tmp || err.path.startsWith(dir.tmp + path.sep)) where = path.join(out, path.relative(dir.tmp, err.path));
    else return null; // a file that is not the output's (an input): not ours to rename
  }
  return new OutputError(where, `cannot write the output: ${FS_PROBLEMS[err.code]} (${err.code})`);
}

/** The real location of a path whose tail may not exist yet (symbolic links resolved). */
export function realLocation(p: string): string {
  let cur = path.resolve(p);
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(cur), ...tail.reverse());
    } catch {
      const parent = path.dirname(cur);
      if (parent === cur) return path.join(cur, ...tail.reverse());
      tail.push(path.basename(cur));
      cur = parent;
    }
  }
}

const inside = (child: string, parent: string) => {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
};

/**
 * The files an option names, for the --out check: plain paths, NAME=FILE[#group],
 * NAME=mask:FILE and mask:FILE; regions (rect:, circle:), `auto` and synthetic stacks name none.
 */
export function inputFiles(values: (string | undefined | null | readonly string[])[]): string[] {
  const out: string[] = [];
  const one = (s: string) => {
    let p = s.trim();
    const eq = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(p);
    if (eq) p = eq[2];
    if (/^(rect|circle):/i.test(p) || p === 'auto' || p.startsWith('synthetic:') || p === '') return;
    if (/^mask:/i.test(p)) p = p.slice(5);
    if (!fs.existsSync(p)) {
      const hash = p.lastIndexOf('#');
      if (hash > 0) p = p.slice(0, hash);
    }
    out.push(p);
  };
  for (const v of values) {
    if (v === undefined || v === null) continue;
    if (typeof v === 'string') one(v);
    else v.forEach(one);
  }
  return out;
}

/**
 * Throws unless `out` is a place this run may write: not equal to, inside or containing an
 * input; not an existing file; not a folder xanes did not make (unless empty).
 */
export function checkOutPath(out: string, inputs: readonly string[] = []): void {
  const where = out;
  const real = realLocation(out);
  for (const inp of inputs) {
    const ri = realLocation(inp);
    if (ri === real) throw new InputError(where, `is the input ${inp}; choose another --out (a run never writes over its inputs)`);
    if (inside(ri, real)) throw new InputError(where, `holds the input ${inp}; choose another --out (a run never replaces a folder holding its inputs)`);
    if (inside(real, ri)) throw new InputError(where, `is inside the input ${inp}; choose an --out outside it`);
  }
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(real);
  } catch {
    st = null;
  }
  if (st) {
    if (!st.isDirectory()) throw new InputError(where, 'exists and is not a folder; choose another --out');
    const entries = fs.readdirSync(real);
    if (entries.length > 0 && !entries.includes(MARKER)) {
      throw new InputError(where, `exists and was not written by xanes (it has no ${MARKER} marker); choose another --out, or move it away yourself`);
    }
  }
  // A parent on the way that is a file.
  for (let p = path.dirname(real); ; p = path.dirname(p)) {
    try {
      if (!fs.statSync(p).isDirectory()) throw new InputError(where, `cannot create the folder: ${p} is a file, not a folder`);
      break;
    } catch (e) {
      if (e instanceof InputError) throw e;
      if (path.dirname(p) === p) break;
    }
  }
}

/**
 * A folder xanes writes files into directly (the demo's example data): created (mkdir -p)
 * and marked if new; an existing one must be empty or carry the marker.
 */
export function claimFolder(dir: string): void {
  checkOutPath(dir);
  makeParents(realLocation(dir), dir);
  const marker = path.join(dir, MARKER);
  if (!fs.existsSync(marker)) fs.writeFileSync(marker, JSON.stringify({ tool: 'xanes-engine', version: VERSION, pid: process.pid, created: new Date().toISOString() }) + '\n');
}

/** Throws unless `dir` is a folder xanes wrote (it carries the marker): before writing into it. */
export function requireXanesOutput(dir: string): void {
  if (!fs.existsSync(path.join(dir, 'summary.json'))) throw new InputError(dir, 'no summary.json: not an output folder of a finished xanes command');
  if (!hasMarker(dir) && !insideRun(dir)) throw new InputError(dir, `was not written by xanes (it has no ${MARKER} marker); xanes writes only into folders it made`);
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const hasMarker = (dir: string) => fs.existsSync(path.join(dir, MARKER));

/** A field or step folder of a `xanes run` output (<out>/<field>/<step>, marker at <out>). */
function insideRun(dir: string): boolean {
  let d = path.resolve(dir);
  for (let up = 0; up < 2; up++) {
    d = path.dirname(d);
    if (!hasMarker(d)) continue;
    try {
      return JSON.parse(fs.readFileSync(path.join(d, 'summary.json'), 'utf8')).command === 'run';
    } catch {
      return false;
    }
  }
  return false;
}

/** Removes `<base>.partial-<pid>` / `<base>.old-<pid>` folders of dead processes that carry the marker. */
export function cleanStale(finalPath: string): string[] {
  const parent = path.dirname(finalPath);
  const base = path.basename(finalPath);
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync(parent);
  } catch {
    return removed;
  }
  for (const name of entries) {
    if (!name.startsWith(base + '.')) continue;
    const m = /^\.(partial|old)-(\d+)$/.exec(name.slice(base.length));
    if (!m) continue;
    const p = path.join(parent, name);
    if (pidAlive(Number(m[2])) || !hasMarker(p)) continue;
    fs.rmSync(p, { recursive: true, force: true });
    removed.push(p);
  }
  return removed;
}

/** mkdir -p that returns the folders it created (to remove them again on failure). */
function makeParents(dir: string, where: string): string[] {
  const created: string[] = [];
  const missing: string[] = [];
  for (let p = dir; !fs.existsSync(p); p = path.dirname(p)) {
    missing.push(p);
    if (path.dirname(p) === p) break;
  }
  for (const p of missing.reverse()) {
    try {
      fs.mkdirSync(p);
      created.push(p);
    } catch (e) {
      removeCreated(created);
      const err = e as NodeJS.ErrnoException;
      throw new OutputError(where, `cannot create the folder ${p}: ${FS_PROBLEMS[err.code ?? ''] ?? err.message}${err.code ? ` (${err.code})` : ''}`);
    }
  }
  return created;
}

function removeCreated(created: string[]): void {
  for (const p of [...created].reverse()) {
    try {
      fs.rmdirSync(p);
    } catch {
      // not empty or gone: leave it
    }
  }
}

/**
 * ImageJ's own TIFF metadata, as Fiji reads it: an ImageDescription with images/slices,
 * unit (micron when the pixel size is known), spacing (z step of a volume) and the display
 * range min/max (finite values of the map), and the pixel size as X/YResolution in pixels
 * per µm.
 */
export function imagejMetadata(data: Float32Array, slices: number, px?: { x: number; y: number }): { description: string; resolution?: { x: number; y: number } } {
  const range = { lo: Infinity, hi: -Infinity };
  extendRange(range, data);
  return imagejMetadataOf(range.lo, range.hi, slices, px);
}

/** Widens [lo, hi] by the values of `data` (NaN ignored). */
function extendRange(range: { lo: number; hi: number }, data: Float32Array): void {
  let { lo, hi } = range;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  range.lo = lo;
  range.hi = hi;
}

/** imagejMetadata for a map whose finite range [lo, hi] is known (lo > hi: no finite value). */
function imagejMetadataOf(lo: number, hi: number, slices: number, px?: { x: number; y: number }): { description: string; resolution?: { x: number; y: number } } {
  const lines = ['ImageJ=1.54f'];
  if (slices > 1) lines.push(`images=${slices}`, `slices=${slices}`);
  if (px) {
    lines.push('unit=micron');
    if (slices > 1) lines.push(`spacing=${px.y}`);
  }
  if (slices > 1) lines.push('loop=false');
  if (lo <= hi) lines.push(`min=${lo}`, `max=${hi}`);
  return { description: lines.join('\n') + '\n', ...(px ? { resolution: { x: 1 / px.x, y: 1 / px.y } } : {}) };
}

/** Bytes of a map read back from disk at a time (writeMapFromNpy). */
const MAP_BLOCK_BYTES = 2 ** 20;

export class OutputDir {
  readonly tmp: string;
  /** What results.h5 needs beyond the files: inputs (energies, pixel size) and status names. */
  readonly results: ResultsContext = { inputs: new Map(), statusNames: new Map() };
  private done = false;
  private createdParents: string[] = [];

  private constructor(readonly finalPath: string, private readonly where: string, private readonly tag = String(process.pid)) {
    this.tmp = `${finalPath}.partial-${tag}`;
  }

  /**
   * One part of a study folder that several processes (shards, on several machines) write
   * at once: `<study>/<name>.partial-<host>-<pid>`, marked from its first moment, moved to
   * `<study>/<name>` by commit(). The study folder itself must exist (src/pipeline/study.ts);
   * the caller owns `name` (fields are split between shards, so no two write one name).
   */
  static createPart(study: string, name: string): OutputDir {
    const finalPath = path.join(realLocation(study), name);
    const d = new OutputDir(finalPath, path.join(study, name), hostTag());
    // A leftover of this very host and pid is ours only if it carries the marker.
    if (fs.existsSync(d.tmp) && !hasMarker(d.tmp)) throw new InputError(path.join(study, name), `${path.basename(d.tmp)} exists and was not made by xanes; move it away`);
    try {
      fs.rmSync(d.tmp, { recursive: true, force: true });
      fs.mkdirSync(d.tmp);
      fs.writeFileSync(path.join(d.tmp, MARKER), markerText());
    } catch (e) {
      fs.rmSync(d.tmp, { recursive: true, force: true });
      throw outputFsError(e, path.join(study, name)) ?? e;
    }
    return d;
  }

  /** Checks the place (see checkOutPath), cleans stale partial folders, creates the temporary folder. */
  static create(out: string, inputs: readonly string[] = []): OutputDir {
    checkOutPath(out, inputs);
    const finalPath = realLocation(out);
    const d = new OutputDir(finalPath, out);
    d.createdParents = makeParents(path.dirname(finalPath), out);
    // Only a temporary folder this call made (or a marked leftover it took over) is removed on failure:
    // a same-named folder that is not ours is refused and left as it is.
    let ours = false;
    try {
      cleanStale(finalPath);
      if (fs.existsSync(d.tmp)) {
        // Our own pid: an earlier run of this process that did not finish.
        if (!hasMarker(d.tmp)) throw new InputError(out, `${d.tmp} is in the way and was not written by xanes; move it away`);
        ours = true;
        fs.rmSync(d.tmp, { recursive: true, force: true });
      }
      fs.mkdirSync(d.tmp);
      ours = true;
      fs.writeFileSync(path.join(d.tmp, MARKER), markerText());
    } catch (e) {
      if (ours) fs.rmSync(d.tmp, { recursive: true, force: true });
      removeCreated(d.createdParents);
      if (e instanceof InputError) throw e;
      throw outputFsError(e, out) ?? e;
    }
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

  /** Pixel size of the stack being written (µm), for TIFF resolution and ImageJ metadata. */
  private pixelSizeUm?: { x: number; y: number };
  /** [Z, Y, X] when the stack is a volume: maps are then volumes. */
  private volume?: [number, number, number];

  /**
   * A float32 map as <name>.npy and <name>.tif (Fiji/ImageJ opens the TIFF, with its pixel
   * size in µm, value range and, for volumes, one slice per page). A volume [Z,Y,X] (rows
   * of the run = Z·Y) is written as a 3-D .npy and a Z-page TIFF.
   */
  writeMap(name: string, data: Float32Array, height: number, width: number): void {
    const vol = this.volumeFor(height, width);
    writeNpy(this.file(`${name}.npy`), data, vol ?? [height, width]);
    const [Z, Y] = vol ? [vol[0], vol[1]] : [1, height];
    writeTiffStack(this.file(`${name}.tif`), data, width, Y, Z, imagejMetadata(data, Z, this.pixelSizeUm));
  }

  /**
   * writeMap's files for a map that is already on disk as `<name>.npy` (float32, height x
   * width, as StepMapStream writes it), read back in blocks of rows: the .tif, and the .npy's
   * header in the recorded volume shape. The same bytes writeMap writes, without holding the
   * map (one block of ~1 MiB, reused).
   */
  writeMapFromNpy(name: string, height: number, width: number): void {
    const npy = this.file(`${name}.npy`);
    const vol = this.volumeFor(height, width);
    const f = NpyFile.open(npy);
    let dataOffset: number;
    try {
      if (f.dtype !== 'float32' || f.nElements !== height * width) throw new RangeError(`${npy}: ${f.nElements} ${f.dtype} values, not ${height} x ${width} float32`);
      dataOffset = f.dataOffset;
      const rows = Math.max(1, Math.min(height, Math.floor(MAP_BLOCK_BYTES / (4 * width))));
      const buf = new Float32Array(rows * width);
      const blocks = (visit: (block: Float32Array, row0: number) => void) => {
        for (let y0 = 0; y0 < height; y0 += rows) visit(f.readRange(y0 * width, Math.min(rows, height - y0) * width, buf) as Float32Array, y0);
      };
      const range = { lo: Infinity, hi: -Infinity };
      blocks((b) => extendRange(range, b));
      const [Z, Y] = vol ? [vol[0], vol[1]] : [1, height];
      writeTiffRows(this.file(`${name}.tif`), 'float32', width, Y, Z, blocks, imagejMetadataOf(range.lo, range.hi, Z, this.pixelSizeUm));
    } finally {
      f.close();
    }
    if (vol) this.reshapeNpy(npy, vol, dataOffset, height * width);
  }

  /** Gives a float32 .npy on disk a new shape (same values): its header rewritten. */
  private reshapeNpy(npy: string, shape: number[], dataOffset: number, n: number): void {
    const header = npyHeader('float32', shape, npy);
    if (header.length === dataOffset) {
      const fd = fs.openSync(npy, 'r+');
      try {
        for (let done = 0; done < header.length; ) done += fs.writeSync(fd, header, done, header.length - done, done);
      } finally {
        fs.closeSync(fd);
      }
      return;
    }
    // A header of another length: the values copied behind the new one, block by block.
    const tmp = `${npy}.reshape`;
    const src = NpyFile.open(npy);
    const fd = fs.openSync(tmp, 'w');
    try {
      let pos = 0;
      const put = (b: Uint8Array) => {
        for (let done = 0; done < b.length; ) done += fs.writeSync(fd, b, done, b.length - done, pos + done);
        pos += b.length;
      };
      put(header);
      const step = MAP_BLOCK_BYTES / 4;
      const buf = new Float32Array(Math.min(step, n));
      for (let i = 0; i < n; i += step) {
        const part = src.readRange(i, Math.min(step, n - i), buf) as Float32Array;
        put(littleEndianBytes(part));
      }
    } finally {
      fs.closeSync(fd);
      src.close();
    }
    fs.renameSync(tmp, npy);
  }

  private volumeFor(height: number, width: number): [number, number, number] | null {
    const v = this.volume;
    return v && v[0] * v[1] === height && v[2] === width ? v : null;
  }

  /** A step's maps (float32 .npy + .tif each) and its uint8 status.npy, optionally in a subfolder. */
  writeStepMaps(mapNames: readonly string[], maps: Record<string, Float32Array>, status: Uint8Array, height: number, width: number, sub = '', statusNames?: readonly string[]): void {
    if (statusNames) this.results.statusNames.set(sub.split(path.sep).join('/'), statusNames);
    if (sub) fs.mkdirSync(this.file(sub), { recursive: true });
    for (const name of mapNames) {
      // A name with a folder (the fit's raw/<param>) goes into that subfolder.
      if (name.includes('/')) fs.mkdirSync(this.file(path.join(sub, path.dirname(name))), { recursive: true });
      this.writeMap(path.join(sub, name), maps[name], height, width);
    }
    this.writeNpy(path.join(sub, 'status'), status, this.volumeFor(height, width) ?? [height, width]);
  }

  /** Records a stack this run read (field '' for single-stack commands), for results.h5. */
  recordInput(field: string, inp: ResultsInput): void {
    this.results.inputs.set(field, inp);
    // Maps written from now on carry this stack's pixel size and volume shape.
    this.pixelSizeUm = inp.pixelSizeUm;
    this.volume = inp.volume;
  }

  writeNpy(name: string, data: NpyArray, shape: number[]): void {
    writeNpy(this.file(`${name}.npy`), data, shape);
  }

  /**
   * Moves the finished outputs into place. An earlier xanes output there (marker) is moved
   * aside first and removed only after the new folder is in place; an empty folder is
   * replaced; anything else that appeared meanwhile is an error and stays untouched.
   */
  commit(): void {
    const old = `${this.finalPath}.old-${this.tag}`;
    let st: fs.Stats | null = null;
    try {
      st = fs.lstatSync(this.finalPath);
    } catch {
      st = null;
    }
    if (st) {
      const entries = st.isDirectory() ? fs.readdirSync(this.finalPath) : null;
      if (!entries || (entries.length > 0 && !entries.includes(MARKER))) {
        throw new InputError(this.where, 'appeared during the run and was not written by xanes; the outputs were not moved into place');
      }
      if (entries.length === 0) fs.rmdirSync(this.finalPath);
      else fs.renameSync(this.finalPath, old);
    }
    fs.renameSync(this.tmp, this.finalPath);
    this.done = true;
    if (fs.existsSync(old)) fs.rmSync(old, { recursive: true, force: true });
  }

  /** Removes the temporary folder of a run that did not finish (and parents this run created). */
  abandon(): void {
    if (this.done) return;
    fs.rmSync(this.tmp, { recursive: true, force: true });
    removeCreated(this.createdParents);
  }
}
