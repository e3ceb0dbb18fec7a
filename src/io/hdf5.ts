/**
 * HDF5 through h5wasm (the HDF5 C library compiled to WebAssembly; its Node build reads the
 * host file system directly, so a file is never loaded whole: every read is a hyperslab).
 *
 * - H5File: one open file shared (reference counted) by the stacks read from it (sample,
 *   flat, dark), with HDF5's error stack turned into one-line InputErrors.
 * - Hdf5Stack: a 3-D [E,H,W] or 4-D [E,Z,Y,X] numeric dataset as a StackSource. readRows
 *   reads the rows a tile needs as hyperslabs of at most SLICE_BYTES each (so the
 *   WebAssembly heap, which never shrinks, stays small whatever the tile) and converts to
 *   float32 exactly as the .npy reader does (JavaScript's float32 rounding, round to nearest
 *   even, the same as numpy's astype(float32)).
 */
import fs from 'node:fs';
import v8 from 'node:v8';
import { InputError } from './errors.js';
import { collectGarbage } from '../pipeline/memory.js';
import { checkRowRequest, type StackSource, type StackLayout } from '../stack/source.js';
import type { BandCache } from '../stack/tiles.js';

export type { BandCache };

type H5 = typeof import('h5wasm/node');
type Group = import('h5wasm/node').Group;
type Dataset = import('h5wasm/node').Dataset;

/**
 * Largest hyperslab read at once, bytes in the file's own type. h5wasm allocates each read
 * in the WebAssembly heap (which grows but never shrinks) and copies it out, so this bounds
 * what a read adds to the process whatever the tile size.
 */
export const SLICE_BYTES = 8 * 2 ** 20;

/** Objects visited when listing a file's datasets (a file with millions is not walked whole). */
const MAX_WALK = 10_000;

/** The 8-byte signature at the start of every HDF5 file (at offset 0, 512, 1024, ...). */
const SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

let loading: Promise<H5> | null = null;

/**
 * Loads h5wasm once, with HDF5's errors thrown as JS errors rather than printed to stderr.
 *
 * `lean` (the results.h5 writer at the end of a run, when nothing loaded HDF5 before): the
 * module is compiled by V8's baseline WebAssembly compiler only (Liftoff, the flag set while
 * it compiles and then restored), not tiered up to optimised code in the background. That
 * optimised code is memory the process keeps: measured on Node 20 (x86-64), h5wasm loaded
 * and eight 2000 x 2000 float32 maps written took 66 MiB of resident size with tier-up, 36
 * without. Writing is I/O-bound; the file's bytes do not depend on the compiler. A run that
 * reads HDF5 loads it first, without the flag (decompression is faster optimised).
 */
export function h5wasm(opts: { lean?: boolean } = {}): Promise<H5> {
  loading ??= (async () => {
    const lean = opts.lean === true;
    if (lean) v8.setFlagsFromString('--liftoff-only');
    try {
      const h5 = await import('h5wasm/node');
      const mod = await h5.ready;
      mod.activate_throwing_error_handler();
      return h5;
    } finally {
      if (lean) v8.setFlagsFromString('--no-liftoff-only');
    }
  })();
  return loading;
}

/** Whether the file starts with the HDF5 signature (at 0 or a user-block offset 512·2^k). */
export function looksLikeHdf5(path: string): boolean {
  let fd = -1;
  try {
    fd = fs.openSync(path, 'r');
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(8);
    for (let off = 0; off + 8 <= size && off <= 1 << 20; off = off === 0 ? 512 : off * 2) {
      fs.readSync(fd, buf, 0, 8, off);
      if (buf.equals(SIGNATURE)) return true;
    }
    return false;
  } catch {
    return false;
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

/**
 * The most specific line of an HDF5 error stack (the deepest frame says what is wrong),
 * phrased for a user where we know the case.
 */
export function hdf5Message(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const frames = [...text.matchAll(/#\d+:.*? in [\w.]+\(\): (.*)$/gm)].map((m) => m[1].trim());
  const last = frames.length > 0 ? frames[frames.length - 1] : text.trim().split('\n').pop() ?? text;
  const trunc = /truncated file: eof = (\d+).*stored_eof = (\d+)/.exec(text);
  if (trunc) return `truncated file: ${trunc[1]} of ${trunc[2]} bytes present`;
  if (/file signature not found/.test(text)) return 'not an HDF5 file (no HDF5 signature)';
  if (/inflate|filter|decompress/i.test(text)) return `cannot decompress a chunk (damaged or truncated file): ${last}`;
  return last;
}

/** 'uint16', 'float32', ... or null for a non-numeric HDF5 type. */
export function numericDtype(meta: { type: number; size: number; signed: boolean }): string | null {
  if (meta.type === 0 && [1, 2, 4, 8].includes(meta.size)) return `${meta.signed ? 'int' : 'uint'}${meta.size * 8}`;
  if (meta.type === 1 && (meta.size === 4 || meta.size === 8)) return `float${meta.size * 8}`;
  return null;
}

/** What an HDF5 type is, in words, for errors about non-numeric datasets. */
export function describeType(meta: { type: number; size: number; compound_type?: { members: { name: string }[] } }): string {
  switch (meta.type) {
    case 0: return `${meta.size * 8}-bit integer`;
    case 1: return meta.size === 2 ? '16-bit float (not supported; store float32)' : `${meta.size * 8}-bit float`;
    case 3: return 'string';
    case 6: return `compound {${(meta.compound_type?.members ?? []).map((m) => m.name).join(', ')}}`;
    case 8: return 'enum (e.g. boolean)';
    case 9: return 'variable-length';
    case 10: return 'array';
    default: return `HDF5 type class ${meta.type}`;
  }
}

export interface DatasetInfo {
  path: string;
  shape: number[];
  dtype: string;
}

/** An open HDF5 file, shared by the stacks read from it; closed when the last one closes. */
export class H5File {
  private refs = 1;

  private constructor(readonly path: string, readonly h5: H5, readonly file: InstanceType<H5['File']>) {}

  static async open(path: string): Promise<H5File> {
    let st: fs.Stats;
    try {
      st = fs.statSync(path);
    } catch {
      throw new InputError(path, 'no such file');
    }
    if (st.isDirectory()) throw new InputError(path, 'is a directory, not a file');
    if (!looksLikeHdf5(path)) throw new InputError(path, 'not an HDF5 file (no HDF5 signature)');
    const h5 = await h5wasm();
    try {
      return new H5File(path, h5, new h5.File(path, 'r'));
    } catch (e) {
      throw new InputError(path, hdf5Message(e));
    }
  }

  retain(): this {
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs === 0) {
      try {
        this.file.close();
      } catch {
        // closing a file whose reads failed may fail again; nothing is left to release
      }
    }
  }

  /** The object at `p`, or null when nothing is there (never throws for a missing path). */
  get(p: string): ReturnType<Group['get']> {
    try {
      return this.file.get(p);
    } catch {
      return null;
    }
  }

  group(p: string): Group | null {
    const g = this.get(p);
    return g instanceof this.h5.Group ? g : null;
  }

  dataset(p: string): Dataset | null {
    const d = this.get(p);
    return d instanceof this.h5.Dataset ? d : null;
  }

  /** A string attribute (or the first of a string array), else null. */
  attrString(obj: Group | Dataset, name: string): string | null {
    const v = this.attrValue(obj, name);
    if (typeof v === 'string') return v;
    if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
    return null;
  }

  /** A string-list attribute (NeXus @axes: an array, or one string "a:b:c"). */
  attrStrings(obj: Group | Dataset, name: string): string[] | null {
    const v = this.attrValue(obj, name);
    if (typeof v === 'string') return v.split(/[:,\s]+/).filter((s) => s !== '');
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
    return null;
  }

  attrValue(obj: Group | Dataset, name: string): unknown {
    try {
      if (!Object.prototype.hasOwnProperty.call(obj.attrs, name)) return null;
      return obj.get_attribute(name, true);
    } catch {
      return null;
    }
  }

  /**
   * A small 1-D (or scalar) numeric dataset as float64, e.g. an energy list; errors name
   * the dataset.
   */
  readVector(p: string, maxLength = 1_000_000): Float64Array {
    const d = this.dataset(p);
    const where = `${this.path}#${p}`;
    if (!d) throw new InputError(where, 'no such dataset');
    const meta = d.metadata;
    if (!numericDtype(meta)) throw new InputError(where, `is ${describeType(meta)}, not numbers`);
    const shape = d.shape ?? [];
    const n = shape.reduce((a, b) => a * b, 1);
    if (shape.filter((s) => s > 1).length > 1) throw new InputError(where, `expected a list of numbers, got shape [${shape.join(', ')}]`);
    if (n > maxLength) throw new InputError(where, `${n} values is more than the ${maxLength} expected`);
    let v: unknown;
    try {
      v = d.value;
    } catch (e) {
      throw new InputError(where, hdf5Message(e));
    }
    return toFloat64(v, where);
  }

  /** Every dataset in the file (up to MAX_WALK objects), for errors and `xanes info`. */
  listDatasets(): DatasetInfo[] {
    const out: DatasetInfo[] = [];
    let visited = 0;
    const walk = (g: Group, prefix: string) => {
      let keys: string[];
      try {
        keys = g.keys();
      } catch {
        return;
      }
      for (const k of keys) {
        if (++visited > MAX_WALK) return;
        const p = `${prefix}/${k}`;
        const o = this.get(p);
        if (o instanceof this.h5.Group) walk(o, p);
        else if (o instanceof this.h5.Dataset) {
          const meta = o.metadata;
          out.push({ path: p, shape: o.shape ?? [], dtype: numericDtype(meta) ?? describeType(meta) });
        }
      }
    };
    walk(this.file, '');
    return out;
  }
}

function toFloat64(v: unknown, where: string): Float64Array {
  if (typeof v === 'number') return Float64Array.of(v);
  if (typeof v === 'bigint') return Float64Array.of(Number(v));
  if (v instanceof BigInt64Array || v instanceof BigUint64Array) return Float64Array.from(v, (x) => Number(x));
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Float64Array.from(v as unknown as ArrayLike<number>);
  throw new InputError(where, 'could not be read as numbers');
}

export function formatDatasets(list: DatasetInfo[], max = 12): string {
  if (list.length === 0) return 'no datasets';
  const shown = list.slice(0, max).map((d) => `${d.path} [${d.shape.join(',')}] ${d.dtype}`);
  return shown.join('; ') + (list.length > max ? `; ... (${list.length - max} more)` : '');
}

/**
 * A numeric [E,H,W] or [E,Z,Y,X] dataset as a stack: rows are H (or Z·Y, a volume read
 * slice after slice), each tile one hyperslab read per block of energies.
 */
export class Hdf5Stack implements StackSource {
  readonly nE: number;
  readonly height: number;
  readonly width: number;
  readonly dtype: string;
  /** [Z, Y, X] for a 4-D dataset (rows are Z·Y). */
  readonly volume?: [number, number, number];
  energies?: Float64Array;
  pixelSizeUm?: { x: number; y: number };
  layout?: StackLayout;
  flatField?: StackSource;
  darkField?: StackSource;
  private ds: Dataset;
  private itemBytes: number;
  private isBig: boolean;
  private compressed: boolean;
  private bandCacheOn = false;
  /** The band of chunks kept decompressed in bandBuf: rows [y0, y0 + bandRows) of slice z, energy-major. */
  private band: { z: number; y0: number } | null = null;
  private bandBuf: BandArray | null = null;
  private closed = false;

  constructor(private file: H5File, readonly datasetPath: string) {
    const where = `${file.path}#${datasetPath}`;
    const ds = file.dataset(datasetPath);
    if (!ds) {
      const what = file.get(datasetPath);
      throw new InputError(where, what ? `is a ${what instanceof file.h5.Group ? 'group' : 'link'}, not a dataset` : 'no such dataset in the file');
    }
    const meta = ds.metadata;
    const dt = numericDtype(meta);
    if (!dt) throw new InputError(where, `is ${describeType(meta)}, not a numeric image stack`);
    const shape = ds.shape ?? [];
    if (shape.length !== 3 && shape.length !== 4) {
      throw new InputError(where, `expected a 3-D [E,H,W] or 4-D [E,Z,Y,X] dataset, got shape [${shape.join(', ')}]`);
    }
    this.ds = ds;
    this.nE = shape[0];
    this.width = shape[shape.length - 1];
    if (shape.length === 4) {
      this.volume = [shape[1], shape[2], shape[3]];
      this.height = shape[1] * shape[2];
    } else {
      this.height = shape[1];
    }
    this.itemBytes = meta.size;
    this.isBig = meta.type === 0 && meta.size === 8;
    const filters = safeFilters(ds);
    this.compressed = filters.length > 0;
    const parts = [`HDF5 ${dt}`];
    if (meta.chunks) parts.push(`chunks [${meta.chunks.join(',')}]`);
    if (filters.length > 0) parts.push(filters.join('+'));
    this.dtype = parts.join(', ');
    this.chunks = meta.chunks;
  }

  readonly chunks: number[] | null;

  get path(): string {
    return `${this.file.path}#${this.datasetPath}`;
  }

  /** Bytes of one chunk in the file's type (HDF5 holds a chunk or two while decompressing). */
  chunkBytes(): number {
    return (this.chunks ?? [0]).reduce((a, b) => a * b, this.itemBytes);
  }

  /**
   * What reading holds besides the rows returned: a hyperslab of up to SLICE_BYTES in the
   * WebAssembly heap and its copy in JavaScript, and while HDF5 decompresses a chunk, the
   * compressed and the inflated chunk (h5wasm's heap grows to hold them and never shrinks),
   * and HDF5's chunk cache (1 MiB per open dataset, its default). The band cache is a term
   * of its own (bandCacheBytes, BandCache).
   */
  readerBytes(): number {
    return 2 * SLICE_BYTES + 2 * this.chunkBytes() + 2 ** 20;
  }

  /**
   * Tiles of rows that cut through chunks: how many times each compressed chunk is
   * decompressed when the stack is read in tiles of `rows` rows (1 = once, as with the band
   * cache on).
   */
  chunkRereads(rows: number): number {
    if (!this.chunks || (this.bandCacheOn && this.bandRows > 0)) return 1;
    const rowDim = this.volume ? this.chunks[2] : this.chunks[1];
    return Math.max(1, Math.ceil(rowDim / Math.max(1, rows)));
  }

  /**
   * Rows per chunk along the image's rows (H, or Y of a volume) when the dataset is chunked
   * AND compressed with chunks of more than one row: a tile of fewer rows than that would
   * decompress each chunk again for every tile that cuts through it. Else 0.
   */
  get bandRows(): number {
    if (!this.chunks || !this.compressed) return 0;
    const r = this.volume ? this.chunks[2] : this.chunks[1];
    return r > 1 ? r : 0;
  }

  /**
   * Bytes of the band cache: the rows of one band of chunks (bandRows rows, all energies,
   * the whole width) kept decompressed, at the stored width (2 bytes a value for 16-bit
   * integers, 4 for 32- and 64-bit types, which are kept as the float32 the tile gets).
   */
  bandCacheBytes(): number {
    const rows = this.bandRows;
    return rows > 0 ? this.nE * Math.min(rows, this.volume ? this.volume[1] : this.height) * this.width * Math.min(4, this.itemBytes) : 0;
  }

  /**
   * Whether to keep a band of chunks decompressed (default off: a run turns it on where its
   * memory plan holds it, see BandCache; off, chunks are decompressed again by every tile
   * that cuts through them: slower, the same values).
   */
  useBandCache(on: boolean): void {
    this.bandCacheOn = on;
    if (!on) this.releaseBand();
  }

  /** Frees the band held (the next read that needs one reads it again). */
  releaseBand(): void {
    this.band = null;
    this.bandBuf = null;
  }

  async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
    checkRowRequest(this, y0, rows, out);
    const W = this.width;
    const n = rows * W;
    const B = this.bandCacheOn ? this.bandRows : 0;
    // Rows of a 4-D dataset are (z, y) pairs: split the request at slice boundaries.
    const Y = this.volume ? this.volume[1] : this.height;
    for (let y = y0; y < y0 + rows; ) {
      const z = Math.floor(y / Y);
      const yy = y - z * Y;
      const run = Math.min(y0 + rows - y, Y - yy);
      if (B === 0) {
        this.readSlab(z, yy, yy + run, (e, from, data, per, r0) => this.put(out, e * n + (y - y0 + r0) * W, data, from, per));
      } else {
        // Band by band: whole bands straight into the tile, parts of a band through the cache.
        for (let a = yy; a < yy + run; ) {
          const b0 = a - (a % B);
          const b1 = Math.min(Y, b0 + B);
          const end = Math.min(yy + run, b1);
          const at = y - y0 + (a - yy);
          if (a === b0 && end === b1) {
            this.readSlab(z, a, end, (e, from, data, per, r0) => this.put(out, e * n + (at + r0) * W, data, from, per));
          } else {
            const band = this.loadBand(z, b0, b1);
            const bandPlane = (b1 - b0) * W;
            const per = (end - a) * W;
            for (let e = 0; e < this.nE; e++) {
              const from = e * bandPlane + (a - b0) * W;
              out.set(band.subarray(from, from + per), e * n + at * W);
            }
          }
          a = end;
        }
      }
      y += run;
    }
  }

  /** Rows [b0, b1) of slice z at every energy, from the cache or read into it. */
  private loadBand(z: number, b0: number, b1: number): BandArray {
    if (this.band && this.band.z === z && this.band.y0 === b0) return this.bandBuf!;
    this.band = null;
    const W = this.width;
    const plane = (b1 - b0) * W;
    this.readSlab(z, b0, b1, (e, from, slab, per, r0) => {
      // One buffer for every band (the last, shorter band uses its start): integers of 8 and
      // 16 bits as stored (exact in float32), anything wider as float32, converted exactly
      // as put() converts it for a tile.
      if (!this.bandBuf) {
        const C = slab.constructor;
        const size = this.nE * Math.min(this.bandRows, this.volume ? this.volume[1] : this.height) * W;
        this.bandBuf = this.itemBytes <= 2 && (C === Uint16Array || C === Int16Array || C === Uint8Array || C === Int8Array)
          ? new (C as Uint16ArrayConstructor)(size)
          : new Float32Array(size);
      }
      const at = e * plane + r0 * W;
      if (this.bandBuf instanceof Float32Array) this.put(this.bandBuf, at, slab, from, per);
      else this.bandBuf.set((slab as unknown as Uint16Array).subarray(from, from + per), at);
    });
    this.band = { z, y0: b0 };
    // The band came in hyperslabs of up to SLICE_BYTES, each a new array that is garbage now:
    // a band's worth (84 MB for 128 rows x 3264 x 101 energies of uint16) that V8 would free
    // whenever it likes. Freed now (a full collection of a small heap, once per band).
    collectGarbage();
    return this.bandBuf!;
  }

  /** Copies `per` values of a slab read, from `from`, into `dst` at `at`, as float32. */
  private put(dst: Float32Array, at: number, data: ArrayLike<number> | ArrayLike<bigint>, from: number, per: number): void {
    if (this.isBig) {
      const big = data as BigInt64Array | BigUint64Array;
      for (let i = 0; i < per; i++) dst[at + i] = Number(big[from + i]);
    } else {
      dst.set((data as Float64Array).subarray(from, from + per), at);
    }
  }

  /**
   * Reads rows [ya, yb) of slice z (of a volume; 0 for a 3-D stack) at every energy, as
   * hyperslabs of at most SLICE_BYTES; calls `sink(e, from, data, per)` for each energy's
   * part of each read (values data[from .. from + per), rows ya + r0 .. ya + r1 of energy e;
   * `per` = (r1 - r0) x width, placed at row offset r0 of the block).
   */
  private readSlab(z: number, ya: number, yb: number, sink: (e: number, from: number, data: ArrayLike<number> & ArrayBufferView, per: number, r0: number) => void): void {
    const W = this.width;
    const rowBytes = W * this.itemBytes;
    const run = yb - ya;
    const rb = Math.max(1, Math.min(run, Math.floor(SLICE_BYTES / rowBytes)));
    for (let r0 = 0; r0 < run; r0 += rb) {
      const r1 = Math.min(run, r0 + rb);
      const eb = Math.max(1, Math.floor(SLICE_BYTES / ((r1 - r0) * rowBytes)));
      for (let e0 = 0; e0 < this.nE; e0 += eb) {
        const e1 = Math.min(this.nE, e0 + eb);
        const ranges: [number, number][] = this.volume
          ? [[e0, e1], [z, z + 1], [ya + r0, ya + r1], [0, W]]
          : [[e0, e1], [ya + r0, ya + r1], [0, W]];
        let data: unknown;
        try {
          data = this.ds.slice(ranges);
        } catch (e) {
          throw new InputError(this.path, hdf5Message(e));
        }
        const per = (r1 - r0) * W;
        if (!ArrayBuffer.isView(data) || (data as unknown as ArrayLike<number>).length !== (e1 - e0) * per) {
          const Y = this.volume ? this.volume[1] : this.height;
          throw new InputError(this.path, `a read of rows ${z * Y + ya + r0}..${z * Y + ya + r1} returned no data (damaged file?)`);
        }
        for (let e = e0; e < e1; e++) sink(e, (e - e0) * per, data as unknown as ArrayLike<number> & ArrayBufferView, per, r0);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.flatField?.close();
    this.darkField?.close();
    this.file.release();
  }
}

/** The band caches of the HDF5 stacks among `sources`, or null when none has one. */
export function bandCacheOf(sources: readonly unknown[]): BandCache | null {
  const stacks = [...new Set(sources)].filter((s): s is Hdf5Stack => s instanceof Hdf5Stack && s.bandRows > 0);
  if (stacks.length === 0) return null;
  return {
    bytes: stacks.reduce((a, s) => a + s.bandCacheBytes(), 0),
    use: (on) => stacks.forEach((s) => s.useBandCache(on)),
    release: () => {
      stacks.forEach((s) => s.releaseBand());
      collectGarbage();
    },
  };
}

type BandArray = Float32Array | Uint16Array | Int16Array | Uint8Array | Int8Array;

function safeFilters(ds: Dataset): string[] {
  try {
    return ds.filters.map((f) => f.name);
  } catch {
    return [];
  }
}
