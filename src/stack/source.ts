/**
 * The stack abstraction the engine reads from: whole rows across every energy, so tiles
 * of rows can be streamed from files larger than memory.
 */
import fs from 'node:fs';
import { InputError } from '../io/errors.js';
import { NpyFile, formatShape } from '../io/npy.js';
import { TiffStack } from '../io/tiff.js';
import { StxmStack } from '../io/stxm.js';
import { looksLikeHdf5 } from '../io/hdf5.js';
import { openHdf5Stack } from '../io/hdf5-layout.js';
import { openXradia, isXradiaPath } from '../io/xradia.js';
import { openCxi, isCxiSpec } from '../io/cxi.js';
import type { RawFile } from './transmission.js';

/** File name endings read as HDF5 (NeXus .nxs, CXI .cxi are HDF5 files). */
export const HDF5_EXTENSIONS = ['.h5', '.hdf5', '.hdf', '.he5', '.nxs', '.nx5', '.cxi'];
const KNOWN_EXTENSIONS = ['.npy', '.tif', '.tiff', '.hdr', '.txt', '.csv'];

export interface StackSource {
  readonly path: string;
  readonly nE: number;
  readonly height: number;
  readonly width: number;
  readonly dtype: string; // as stored in the file
  /** Energies (eV) when the format carries them (STXM .hdr, HDF5, Xradia); otherwise they come from --energies. */
  readonly energies?: Float64Array;
  /** Pixel size (µm per pixel along x and y) when the format records it. */
  readonly pixelSizeUm?: { x: number; y: number };
  /** [Z, Y, X] when the stack is a volume [E,Z,Y,X]: rows are then Z·Y. */
  readonly volume?: [number, number, number];
  /** What a structured file was recognised as (HDF5 layouts, Xradia), for info and summary.json. */
  readonly layout?: StackLayout;
  /** Flat and dark fields stored in the same file; closed with the stack. */
  readonly flatField?: StackSource;
  readonly darkField?: StackSource;
  /** rows [y0, y0+rows) at every energy, energy-major: out[e*rows*width + r*width + x], float32 */
  readRows(y0: number, rows: number, out: Float32Array): Promise<void>;
  /**
   * Bytes the reader itself holds while it reads rows, beyond the rows it returns (read
   * buffers, decompressed chunks, caches), whatever the tile size; absent: none to speak of.
   */
  readerBytes?(): number;
  /**
   * The stored value type, where readRowsRaw can deliver the rows as stored and every value
   * of that type is exact in float32 (so converting later, on a worker thread, gives the
   * same floats readRows would): the flat/dark conversion then does no work on this thread.
   */
  readonly rawType?: RawType;
  /** As readRows, into an array of type rawType (shared memory allowed), values as stored. */
  readRowsRaw?(y0: number, rows: number, out: RawArray): Promise<void>;
  /**
   * The stack as one C-order array [E, height, width] of a CountType in a plain file that
   * any thread may read by position (RawFile), or undefined: the flat/dark conversion's
   * workers then read the counts themselves (AbsorbanceStack).
   */
  rawFile?(): RawFile | undefined;
  close(): void;
}

/**
 * Stored integer types whose values are all exact in float32. (float32 files are read
 * straight into the float32 tile by readRows already.)
 */
export type RawType = 'uint16' | 'int16' | 'uint8';
export type RawArray = Uint16Array | Int16Array | Uint8Array;
const RAW_TYPES: readonly string[] = ['uint16', 'int16', 'uint8'];

/** Bytes per value of a raw type. */
export function rawSize(type: RawType): number {
  return type === 'uint8' ? 1 : 2;
}

/** An array of `type` for n values in shared memory (worker threads read it in place). */
export function sharedRaw(type: RawType, n: number): RawArray {
  const buf = new SharedArrayBuffer(rawSize(type) * n);
  return type === 'uint16' ? new Uint16Array(buf) : type === 'int16' ? new Int16Array(buf) : new Uint8Array(buf);
}

/** How a structured input file was read. */
export interface StackLayout {
  /** 'hdf5', 'xradia', ... */
  format: string;
  /** 'fxi', 'aps-dxchange', 'nexus', 'cxi', 'dataset', 'txrm', 'xrm' */
  name: string;
  /** In words, e.g. 'FXI (NSLS-II 18-ID)'. */
  title: string;
  /** role -> dataset path or stream: data, flat, dark, energies, pixel_size */
  datasets: Record<string, string>;
  notes: string[];
}

/** Checks a row request; violations are programming errors, hence RangeError. */
export function checkRowRequest(src: StackSource, y0: number, rows: number, out: { length: number }): void {
  if (!(Number.isInteger(y0) && Number.isInteger(rows) && y0 >= 0 && rows >= 0 && y0 + rows <= src.height)) {
    throw new RangeError(`${src.path}: rows [${y0}, ${y0 + rows}) outside [0, ${src.height})`);
  }
  if (out.length < src.nE * rows * src.width) {
    throw new RangeError(`${src.path}: output holds ${out.length} values, need ${src.nE * rows * src.width}`);
  }
}

/** A cube already in memory, [E][H][W] float32. */
export class MemoryStack implements StackSource {
  readonly dtype = 'float32';

  constructor(
    private cube: Float32Array,
    readonly nE: number,
    readonly height: number,
    readonly width: number,
    readonly path = '<memory>',
  ) {
    if (cube.length !== nE * height * width) {
      throw new RangeError(`MemoryStack: ${cube.length} values is not ${nE}x${height}x${width}`);
    }
  }

  async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
    checkRowRequest(this, y0, rows, out);
    const plane = this.height * this.width;
    const n = rows * this.width;
    for (let e = 0; e < this.nE; e++) {
      const from = e * plane + y0 * this.width;
      out.set(this.cube.subarray(from, from + n), e * n);
    }
  }

  close(): void {}
}

/** A 3-D .npy [E,H,W]; each energy's rows are one contiguous positioned read. */
export class NpyStack implements StackSource {
  readonly nE: number;
  readonly height: number;
  readonly width: number;

  /** [Z, Y, X] for a 4-D .npy [E,Z,Y,X] (rows are Z·Y, contiguous in C order). */
  readonly volume?: [number, number, number];

  constructor(private file: NpyFile) {
    const s = file.shape;
    this.nE = s[0];
    this.width = s[s.length - 1];
    if (s.length === 4) {
      this.volume = [s[1], s[2], s[3]];
      this.height = s[1] * s[2];
    } else {
      this.height = s[1];
    }
  }

  get path(): string {
    return this.file.path;
  }

  get dtype(): string {
    return this.file.dtype;
  }

  async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
    checkRowRequest(this, y0, rows, out);
    const plane = this.height * this.width;
    const n = rows * this.width;
    for (let e = 0; e < this.nE; e++) this.file.readElements(e * plane + y0 * this.width, n, out, e * n);
  }

  get rawType(): RawType | undefined {
    return RAW_TYPES.includes(this.file.dtype) ? (this.file.dtype as RawType) : undefined;
  }

  async readRowsRaw(y0: number, rows: number, out: RawArray): Promise<void> {
    checkRowRequest(this, y0, rows, out);
    const plane = this.height * this.width;
    const n = rows * this.width;
    for (let e = 0; e < this.nE; e++) this.file.readElementsRaw(e * plane + y0 * this.width, n, out, e * n);
  }

  rawFile(): RawFile | undefined {
    const t = this.file.dtype;
    const p = this.file.positioned();
    return p && (t === 'float32' || RAW_TYPES.includes(t)) ? { ...p, type: t as RawType | 'float32' } : undefined;
  }

  close(): void {
    this.file.close();
  }
}

/**
 * Opens a stack by extension: .npy (3-D [E,H,W]), .tif/.tiff (one page per energy), or an
 * STXM scan definition .hdr with one .xim image per energy (its energies in `energies`).
 */
export async function openStack(path: string): Promise<StackSource> {
  // synthetic:HxW[:seed] is a stack generated on the fly (src/synth/stream.ts): Ni K-edge
  // spectra on the real TXM grid, no disk, any size; for benchmarks and trying things out.
  const syn = /^synthetic:(\d+)x(\d+)(?::(\d+))?$/.exec(path);
  if (syn) {
    const { SyntheticStream } = await import('../synth/stream.js');
    return new SyntheticStream(Number(syn[1]), Number(syn[2]), syn[3] ? Number(syn[3]) : 1, 4096, path);
  }
  // CXI ptychography: file.cxi[#absorption|#phase], or a series of them (glob, comma list).
  if (isCxiSpec(path)) return checkNotEmpty(await openCxi(path));
  // file.h5#/path/to/dataset names one dataset of an HDF5 file.
  const hash = path.lastIndexOf('#');
  if (hash > 0 && !fs.existsSync(path) && fs.existsSync(path.slice(0, hash))) {
    const file = path.slice(0, hash);
    const ds = path.slice(hash + 1);
    if (ds === '') throw new InputError(path, 'empty dataset path after #');
    return checkNotEmpty(await openHdf5Stack(file, ds.startsWith('/') ? ds : `/${ds}`));
  }
  // Xradia: a .txrm, or an .xrm series (one file, a glob, a comma list, or a folder of .xrm).
  if (isXradiaPath(path) || (fs.existsSync(path) && fs.statSync(path).isDirectory() && fs.readdirSync(path).some((f) => /\.xrm$/i.test(f)))) {
    return checkNotEmpty(openXradia(path));
  }
  if (!fs.existsSync(path)) throw new InputError(path, 'no such file');
  const ext = /\.[^./\\]*$/.exec(path)?.[0].toLowerCase() ?? '';
  let src: StackSource;
  if (HDF5_EXTENSIONS.includes(ext) || (!KNOWN_EXTENSIONS.includes(ext) && looksLikeHdf5(path))) {
    src = await openHdf5Stack(path);
  } else if (ext === '.npy') {
    const f = NpyFile.open(path);
    if (f.shape.length !== 3 && f.shape.length !== 4) {
      f.close();
      throw new InputError(path, `expected a 3-D array [E,H,W] or a 4-D volume [E,Z,Y,X], got shape ${formatShape(f.shape)}`);
    }
    src = new NpyStack(f);
  } else if (ext === '.tif' || ext === '.tiff') {
    src = await TiffStack.open(path);
  } else if (ext === '.hdr') {
    src = StxmStack.open(path);
  } else {
    throw new InputError(path, `unknown stack format '${ext || '(no extension)'}' (supported: .npy, .tif, .tiff, HDF5 ${HDF5_EXTENSIONS.join(' ')}, Xradia .txrm/.xrm) or an STXM scan definition (.hdr)`);
  }
  return checkNotEmpty(src);
}

function checkNotEmpty(src: StackSource): StackSource {
  const path = src.path;
  if (src.nE === 0 || src.height === 0 || src.width === 0) {
    const shape = `${src.nE}x${src.height}x${src.width}`;
    src.close();
    throw new InputError(path, `empty stack (${shape} energies x height x width)`);
  }
  return src;
}
