/**
 * The pixel spectra behind the report's inspector: a pixel-major copy of the stack as the
 * kernels saw it (absorbance or optical density after flat/dark/I0), written by the run into
 * report_files/spectra/ and read back by report.html and `xanes inspect`.
 *
 * A browser cannot read binary files next to a page opened from the disk (file:// forbids
 * fetch), but it can load scripts; so the float32 values are base64 inside small script
 * files, one per block of rows, loaded when a pixel in that block is clicked:
 *   report_files/spectra/index.js    XANES_SPECTRA_INDEX({ width, height, nE, step, ... })
 *   report_files/spectra/r0000.js    XANES_SPECTRA(0, "<base64 of float32 [rows][nx][nE]>")
 * Fields larger than SPECTRA_MAX_VALUES values are decimated: every `step`-th pixel in x
 * and y is kept (a real pixel, not an average), and the report says so.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Base64ScriptWriter } from './base64.js';

/** Most float32 values kept (64 MiB): 256 x 256 x 1000 energies, or 400 x 400 x 100. */
export const SPECTRA_MAX_VALUES = 16 * 2 ** 20;
/** Bytes of float32 per script file (before base64): small enough to load at a click. */
export const SPECTRA_CHUNK_BYTES = 2 ** 20;
export const SPECTRA_DIR = path.join('report_files', 'spectra');

export interface SpectraIndex {
  /** Field size, pixels. */
  width: number;
  height: number;
  nE: number;
  energies: number[];
  /** Decimation: pixel (x, y) of the field is stored iff x % step == 0 and y % step == 0. */
  step: number;
  /** Stored grid: nx = ceil(width / step), ny = ceil(height / step). */
  nx: number;
  ny: number;
  /** Stored rows per script file. */
  chunkRows: number;
  chunks: number;
  /** What the values are (e.g. "absorbance"). */
  quantity: string;
}

export function spectraStep(width: number, height: number, nE: number, maxValues = SPECTRA_MAX_VALUES): number {
  let step = 1;
  while (Math.ceil(width / step) * Math.ceil(height / step) * nE > maxValues) step++;
  return step;
}

/** Collects the decimated pixels tile by tile (runTiles' onTileData) and writes the files. */
export class SpectraRecorder {
  readonly index: SpectraIndex;
  private readonly data: Float32Array;

  constructor(width: number, height: number, energies: Float64Array, quantity: string, maxValues = SPECTRA_MAX_VALUES) {
    const nE = energies.length;
    const step = spectraStep(width, height, nE, maxValues);
    const nx = Math.ceil(width / step), ny = Math.ceil(height / step);
    const chunkRows = Math.max(1, Math.floor(SPECTRA_CHUNK_BYTES / (4 * nx * nE)));
    this.index = { width, height, nE, energies: Array.from(energies), step, nx, ny, chunkRows, chunks: Math.ceil(ny / chunkRows), quantity };
    this.data = new Float32Array(nx * ny * nE).fill(NaN);
  }

  /** A tile of whole rows y0..y0+rows-1, energy-major (cube[e * rows * W + p]). */
  add = (cube: Float32Array, y0: number, rows: number): void => {
    const { width: W, nE, step, nx } = this.index;
    const P = rows * W;
    for (let y = y0 + ((step - (y0 % step)) % step); y < y0 + rows; y += step) {
      const sy = y / step;
      for (let x = 0; x < W; x += step) {
        const p = (y - y0) * W + x;
        const o = (sy * nx + x / step) * nE;
        for (let e = 0; e < nE; e++) this.data[o + e] = cube[e * P + p];
      }
    }
  };

  /** Writes report_files/spectra/ under `dir`. */
  write(dir: string): void {
    const d = path.join(dir, SPECTRA_DIR);
    fs.mkdirSync(d, { recursive: true });
    const { nx, nE, chunkRows, chunks } = this.index;
    fs.writeFileSync(path.join(d, 'index.js'), `XANES_SPECTRA_INDEX(${JSON.stringify(this.index)});\n`);
    // Each file built in one buffer reused for every chunk (no string per chunk: see base64.ts).
    const writer = new Base64ScriptWriter();
    for (let c = 0; c < chunks; c++) {
      const part = this.data.subarray(c * chunkRows * nx * nE, Math.min(this.data.length, (c + 1) * chunkRows * nx * nE));
      writer.write(path.join(d, chunkName(c)), `XANES_SPECTRA(${c},"`, new Uint8Array(part.buffer, part.byteOffset, part.byteLength));
    }
  }
}

export function chunkName(c: number): string {
  return `r${String(c).padStart(4, '0')}.js`;
}

function callArgs(text: string, fn: string): string {
  const a = text.indexOf(`${fn}(`);
  const b = text.lastIndexOf(');');
  if (a < 0 || b < 0) throw new Error(`not a ${fn} file`);
  return text.slice(a + fn.length + 1, b);
}

/**
 * The folder whose report_files/spectra/ holds an output folder's pixel spectra: its own, or
 * the one its summary.json names in "spectra_from" (relative to it): the step folders of a
 * `xanes run` field share their field's spectra (one copy of the stack, not one per step).
 */
export function spectraHome(dir: string): string {
  if (fs.existsSync(path.join(dir, SPECTRA_DIR, 'index.js'))) return dir;
  try {
    const s = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as { spectra_from?: unknown };
    if (typeof s.spectra_from === 'string') return path.resolve(dir, s.spectra_from);
  } catch {
    // no summary.json: no shared spectra
  }
  return dir;
}

/** report_files/spectra/ of an output folder as the page loads it: a relative URL path. */
export function spectraUrl(dir: string): string {
  return path.relative(dir, path.join(spectraHome(dir), SPECTRA_DIR)).split(path.sep).join('/');
}

/** The index of an output folder's spectra, or null if the run wrote none. */
export function readSpectraIndex(dir: string): SpectraIndex | null {
  const f = path.join(spectraHome(dir), SPECTRA_DIR, 'index.js');
  if (!fs.existsSync(f)) return null;
  return JSON.parse(callArgs(fs.readFileSync(f, 'utf8'), 'XANES_SPECTRA_INDEX')) as SpectraIndex;
}

/** The stored pixel nearest (x, y) at or before it on the decimated grid. */
export function storedPixel(index: SpectraIndex, x: number, y: number): { x: number; y: number } {
  return { x: Math.floor(x / index.step) * index.step, y: Math.floor(y / index.step) * index.step };
}

/** The spectrum of stored pixel (x, y) (multiples of index.step). */
export function readSpectrum(dir: string, index: SpectraIndex, x: number, y: number): Float64Array {
  const sx = x / index.step, sy = y / index.step;
  if (!Number.isInteger(sx) || !Number.isInteger(sy) || sx >= index.nx || sy >= index.ny) throw new RangeError(`pixel ${x},${y} is not stored`);
  const c = Math.floor(sy / index.chunkRows);
  const text = fs.readFileSync(path.join(spectraHome(dir), SPECTRA_DIR, chunkName(c)), 'utf8');
  const b64 = callArgs(text, 'XANES_SPECTRA').split(',')[1].replace(/"/g, '');
  const buf = Buffer.from(b64, 'base64');
  const f = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const o = ((sy - c * index.chunkRows) * index.nx + sx) * index.nE;
  return Float64Array.from(f.subarray(o, o + index.nE));
}
