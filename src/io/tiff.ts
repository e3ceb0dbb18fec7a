/**
 * Multi-page TIFF stacks (page i = image at energy i).
 *
 * Directories are parsed by src/io/tiff-ifd.ts; the pixels are decoded here, strip by strip
 * and tile by tile, for the rows a tile of the run needs and no more
 * (src/io/tiff-codecs.ts: none, LZW, Deflate, PackBits; predictors 2 and 3):
 * - uncompressed strips, the common case for instrument and ImageJ stacks, are read with
 *   positioned reads (any rows, no decoding);
 * - a compressed strip is decoded incrementally, and each page keeps its decoder between
 *   calls, so a run walking down the image decodes every strip once, however tall the strip
 *   (one strip per page is common) and however short the tiles of rows;
 * - a tile is decoded from its start for each call that needs its rows (tiles are small).
 * Nothing is ever decompressed beyond the declared size of the strip or tile, and no buffer
 * larger than the rows asked for is allocated, so a decompression bomb (a small file whose
 * pages declare 20000x20000 pixels) costs what a file of that declared size would, and the
 * memory plan refuses it by its declared size before anything is inflated.
 *
 * open() walks the IFD chain with a cycle check and checks that every strip lies inside the
 * file: a damaged file becomes an InputError, not zeros or
 * a hang. Sample formats: unsigned and signed 8/16/32-bit integers and 32/64-bit floats,
 * one sample per pixel; bilevel, palette and colour images are refused with their name.
 *
 * Writing is a minimal baseline TIFF written by hand (little-endian 'II', uncompressed,
 * strips, one IFD per page): geotiff's writer writes a single image with GeoTIFF tags,
 * and we need multi-page stacks that Fiji/ImageJ open as stacks.
 */
import fs from 'node:fs';
import os from 'node:os';
import { InputError } from './errors.js';
import { littleEndianBytes } from './npy.js';
import { TiffFile, type Ifd } from './tiff-ifd.js';
import { blockDecoder, COMPRESSION_NAMES, SUPPORTED_COMPRESSIONS, type BlockDecoder } from './tiff-codecs.js';
import type { StackSource } from '../stack/source.js';

export type TiffDtype = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';

const DTYPES: Record<string, TiffDtype> = {
  uint8: 'uint8',
  int8: 'int8',
  uint16: 'uint16',
  int16: 'int16',
  uint32: 'uint32',
  int32: 'int32',
  float32: 'float32',
  float64: 'float64',
};
const VIEW = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
} as const;
/** Unsigned views of the same width, for undoing horizontal differencing (wraps like the writer). */
const UNSIGNED = { 1: Uint8Array, 2: Uint16Array, 4: Uint32Array } as const;

const PHOTOMETRIC: Record<number, string> = {
  2: 'an RGB colour image',
  3: 'a palette-colour image',
  4: 'a transparency mask',
  5: 'a CMYK colour image',
  6: 'a YCbCr colour image',
  8: 'a CIE L*a*b* colour image',
};

/** 'uint16', 'float32', ... from the SampleFormat and BitsPerSample tags. */
function describeFormat(sampleFormat: number, bits: number): string {
  const kind = ({ 1: 'uint', 2: 'int', 3: 'float' } as Record<number, string>)[sampleFormat];
  return kind ? `${kind}${bits}` : `SampleFormat=${sampleFormat} with ${bits} bits`;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const HOST_LE = os.endianness() === 'LE';

/** Pages decoded at once by readRows: enough to keep the thread pool busy, each with one scratch of the rows. */
const PAGE_CONCURRENCY = 4;

/** How one page stores its pixels. */
interface PagePlan {
  compression: number;
  /** 1 none, 2 horizontal differencing, 3 floating point. */
  predictor: number;
  offsets: number[];
  counts: number[];
  tiled: boolean;
  /** Strip: the image width and RowsPerStrip; tile: TileWidth and TileLength. */
  blockW: number;
  blockH: number;
}

/** A compressed strip being decoded: the next row it hands out. */
interface StripCursor {
  strip: number;
  row: number;
  decoder: BlockDecoder;
}

export class TiffStack implements StackSource {
  /** Per page, the decoder of the compressed strip last read (kept for the next rows). */
  private cursors: (StripCursor | null)[];
  private readonly bytesPerSample: number;

  private constructor(
    readonly path: string,
    private littleEndian: boolean,
    private plans: PagePlan[],
    private fd: number,
    readonly width: number,
    readonly height: number,
    readonly dtype: TiffDtype,
  ) {
    this.cursors = plans.map(() => null);
    this.bytesPerSample = VIEW[dtype].BYTES_PER_ELEMENT;
  }

  get nE(): number {
    return this.plans.length;
  }

  static async open(path: string): Promise<TiffStack> {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new InputError(path, code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a file' : `cannot open: ${message(e)}`);
    }
    try {
      const st = fs.fstatSync(fd);
      if (st.isDirectory()) throw new InputError(path, 'is a directory, not a file');
      const tiff = TiffFile.open(path, fd, st.size);
      const pages = tiff.directories();
      const first = pages[0];
      // ImageJ writes stacks over 4 GiB as one directory followed by all images back to back;
      // reading it as a single image would give a 1-energy stack.
      const ijImages = /^ImageJ=[\s\S]*?\bimages=(\d+)/.exec(first.text(TAG.ImageDescription));
      if (pages.length === 1 && ijImages && Number(ijImages[1]) > 1) {
        throw new InputError(path, `ImageJ stack of ${ijImages[1]} images stored after a single TIFF directory is not supported: save it as .npy or as a TIFF with one directory per image`);
      }
      const width = first.number(TAG.ImageWidth, 0);
      const height = first.number(TAG.ImageLength, 0);
      let dtype: TiffDtype | undefined;
      const plans: PagePlan[] = [];
      for (let k = 0; k < pages.length; k++) {
        const p = pages[k];
        const where = `TIFF page ${k}`;
        const w = p.number(TAG.ImageWidth, 0);
        const h = p.number(TAG.ImageLength, 0);
        if (w !== width || h !== height) {
          throw new InputError(path, `${where} is ${w}x${h}, page 0 is ${width}x${height}: all pages must have the same size`);
        }
        const fmt = sampleFormatOf(path, p, where);
        if (dtype !== undefined && fmt !== dtype) {
          throw new InputError(path, `${where} is ${fmt}, page 0 is ${dtype}: all pages must have the same sample format`);
        }
        dtype = fmt;
        plans.push(planPage(path, p, k, st.size, VIEW[fmt].BYTES_PER_ELEMENT));
      }
      return new TiffStack(path, tiff.littleEndian, plans, fd, width, height, dtype!);
    } catch (e) {
      fs.closeSync(fd);
      if (e instanceof InputError) throw e;
      throw new InputError(path, `cannot read TIFF: ${message(e)}`);
    }
  }

  /** Rows [y0, y0+rows) of every page, energy-major: out[e*rows*W + r*W + x]. */
  async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
    const W = this.width;
    if (!(Number.isInteger(y0) && Number.isInteger(rows) && y0 >= 0 && rows >= 0 && y0 + rows <= this.height)) {
      throw new RangeError(`${this.path}: rows [${y0}, ${y0 + rows}) outside [0, ${this.height})`);
    }
    if (out.length < this.nE * rows * W) {
      throw new RangeError(`${this.path}: output holds ${out.length} values, need ${this.nE * rows * W}`);
    }
    if (rows === 0) return;
    if (this.fd < 0) throw new Error(`${this.path}: TiffStack is closed`);
    // A few pages at a time (Deflate inflates on the thread pool), each through its own
    // scratch buffer holding the file's bytes of these rows.
    const lanes = Math.min(PAGE_CONCURRENCY, this.nE);
    const scratch = Array.from({ length: lanes }, () => new Uint8Array(rows * W * this.bytesPerSample));
    let nextPage = 0;
    const lane = async (buf: Uint8Array) => {
      for (let k = nextPage++; k < this.nE; k = nextPage++) {
        const plan = this.plans[k];
        if (plan.tiled) await this.readTiles(k, plan, y0, rows, buf);
        else if (plan.compression === 1) this.readRaw(k, plan, y0, rows, buf);
        else await this.readStrips(k, plan, y0, rows, buf);
        this.toFloat(buf, plan.predictor === 3, out.subarray(k * rows * W, (k + 1) * rows * W));
      }
    };
    await Promise.all(scratch.map(lane));
  }

  /** The file's bytes (file byte order, or big-endian after predictor 3) into float32 values. */
  private toFloat(bytes: Uint8Array, bigEndianAlready: boolean, out: Float32Array): void {
    const size = this.bytesPerSample;
    const fileLE = bigEndianAlready ? false : this.littleEndian;
    if (size > 1 && fileLE !== HOST_LE) swapBytes(bytes, size);
    out.set(new VIEW[this.dtype](bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.length / size));
  }

  /** Undoes the predictor on `nRows` rows of `rowSamples` samples each, in place. */
  private unpredict(plan: PagePlan, bytes: Uint8Array, rowSamples: number, nRows: number, rowScratch: { buf?: Uint8Array }): void {
    const size = this.bytesPerSample;
    const rowBytes = rowSamples * size;
    if (plan.predictor === 2) {
      const wrongOrder = size > 1 && this.littleEndian !== HOST_LE;
      if (wrongOrder) swapBytes(bytes, size);
      const U = UNSIGNED[size as 1 | 2 | 4];
      const v = new U(bytes.buffer as ArrayBuffer, bytes.byteOffset, (nRows * rowBytes) / size);
      for (let r = 0; r < nRows; r++) {
        const base = r * rowSamples;
        for (let i = 1; i < rowSamples; i++) v[base + i] += v[base + i - 1];
      }
      if (wrongOrder) swapBytes(bytes, size); // back to file order, as toFloat expects
    } else if (plan.predictor === 3) {
      // Floating point (TIFF Technical Note 3): bytes differenced across the row, and the
      // row stored as all most-significant bytes, then the next, ...; result big-endian.
      const tmp = (rowScratch.buf ??= new Uint8Array(rowBytes));
      for (let r = 0; r < nRows; r++) {
        const row = bytes.subarray(r * rowBytes, (r + 1) * rowBytes);
        for (let i = 1; i < rowBytes; i++) row[i] = (row[i] + row[i - 1]) & 0xff;
        tmp.set(row);
        for (let i = 0; i < rowSamples; i++) for (let b = 0; b < size; b++) row[i * size + b] = tmp[b * rowSamples + i];
      }
    }
  }

  /** Rows of one uncompressed, stripped page: one positioned read per strip touched. */
  private readRaw(k: number, plan: PagePlan, y0: number, rows: number, scratch: Uint8Array): void {
    const rowBytes = scratch.length / rows;
    const rps = plan.blockH;
    for (let y = y0; y < y0 + rows; ) {
      const s = Math.floor(y / rps);
      const end = Math.min(y0 + rows, (s + 1) * rps);
      const want = (end - y) * rowBytes;
      const at = (y - y0) * rowBytes;
      const pos = plan.offsets[s] + (y - s * rps) * rowBytes;
      for (let done = 0; done < want; ) {
        let n: number;
        try {
          n = fs.readSync(this.fd, scratch, at + done, want - done, pos + done);
        } catch (e) {
          throw new InputError(this.path, `cannot read TIFF page ${k}: ${message(e)}`);
        }
        if (n === 0) throw new InputError(this.path, `cannot read TIFF page ${k}: file ended at byte ${pos + done} (truncated while open?)`);
        done += n;
      }
      y = end;
    }
    this.unpredict(plan, scratch, this.width, rows, {});
  }

  /** A decoder positioned at `row` of compressed strip `s` of page k (reusing the page's cursor when it can). */
  private async cursorAt(k: number, plan: PagePlan, s: number, row: number, skip: Uint8Array): Promise<StripCursor> {
    const rowBytes = this.width * this.bytesPerSample;
    let c = this.cursors[k];
    if (!c || c.strip !== s || c.row > row) {
      c?.decoder.close();
      const rowsInStrip = Math.min(plan.blockH, this.height - s * plan.blockH);
      const decoder = blockDecoder(plan.compression, this.fd, plan.offsets[s], plan.counts[s], rowsInStrip * rowBytes, this.path, `cannot read TIFF page ${k}, strip ${s}`);
      c = { strip: s, row: s * plan.blockH, decoder };
      this.cursors[k] = c;
    }
    for (; c.row < row; c.row++) await c.decoder.read(skip); // rows above the request (rare: seeking back)
    return c;
  }

  /** Rows of one compressed, stripped page, continuing each strip's decoder where it stopped. */
  private async readStrips(k: number, plan: PagePlan, y0: number, rows: number, scratch: Uint8Array): Promise<void> {
    const rowBytes = this.width * this.bytesPerSample;
    const skip = new Uint8Array(rowBytes);
    for (let y = y0; y < y0 + rows; ) {
      const s = Math.floor(y / plan.blockH);
      const end = Math.min(y0 + rows, (s + 1) * plan.blockH);
      const c = await this.cursorAt(k, plan, s, y, skip);
      await c.decoder.read(scratch.subarray((y - y0) * rowBytes, (end - y0) * rowBytes));
      c.row = end;
      y = end;
    }
    this.unpredict(plan, scratch, this.width, rows, {});
  }

  /** Rows of one tiled page: each tile touched is decoded from its start to the last row needed. */
  private async readTiles(k: number, plan: PagePlan, y0: number, rows: number, scratch: Uint8Array): Promise<void> {
    const size = this.bytesPerSample;
    const W = this.width;
    const { blockW: tw, blockH: th } = plan;
    const across = Math.ceil(W / tw);
    const tileRow = new Uint8Array(tw * size);
    const rowScratch: { buf?: Uint8Array } = {};
    for (let ty = Math.floor(y0 / th); ty * th < y0 + rows; ty++) {
      const first = Math.max(y0, ty * th);
      const last = Math.min(y0 + rows, (ty + 1) * th);
      for (let tx = 0; tx < across; tx++) {
        const i = ty * across + tx;
        const dec = blockDecoder(plan.compression, this.fd, plan.offsets[i], plan.counts[i], tw * th * size, this.path, `cannot read TIFF page ${k}, tile ${i}`);
        const cols = Math.min(tw, W - tx * tw);
        try {
          for (let y = ty * th; y < last; y++) {
            await dec.read(tileRow);
            if (y < first) continue;
            // Predictors run across the whole tile row (padding included), as the writer ran them.
            this.unpredict(plan, tileRow, tw, 1, rowScratch);
            scratch.set(tileRow.subarray(0, cols * size), ((y - y0) * W + tx * tw) * size);
          }
        } finally {
          dec.close();
        }
      }
    }
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    for (const c of this.cursors) c?.decoder.close();
    this.cursors = this.cursors.map(() => null);
  }
}

/** The page's sample type, or an InputError saying what the image is instead. */
function sampleFormatOf(path: string, p: Ifd, where: string): TiffDtype {
  const spp = p.number(TAG.SamplesPerPixel, 1);
  const photometric = p.number(TAG.Photometric, 1);
  // BitsPerSample defaults to 1 (bilevel) when absent, as the TIFF spec says.
  const bits = p.number(TAG.BitsPerSample, 1);
  if (PHOTOMETRIC[photometric]) {
    throw new InputError(path, `${where} is ${PHOTOMETRIC[photometric]}${spp > 1 ? ` (${spp} samples per pixel)` : ''}: expected greyscale intensities, one value per pixel`);
  }
  if (spp !== 1) throw new InputError(path, `${where} has ${spp} samples per pixel (RGB?): expected 1 (greyscale)`);
  if (bits === 1) throw new InputError(path, `${where} is a 1-bit (bilevel, black and white) image: expected greyscale intensities of 8, 16 or 32 bits`);
  const fmt = describeFormat(p.number(TAG.SampleFormat, 1), bits);
  const dtype = DTYPES[fmt];
  if (!dtype) {
    throw new InputError(path, `${where}: unsupported sample format ${fmt} (supported: ${Object.keys(DTYPES).join(', ')})`);
  }
  return dtype;
}

/** In-place byte swap of 2-, 4- or 8-byte elements. */
function swapBytes(b: Uint8Array, size: number): void {
  for (let i = 0; i + size <= b.length; i += size) {
    for (let lo = i, hi = i + size - 1; lo < hi; lo++, hi--) {
      const t = b[lo];
      b[lo] = b[hi];
      b[hi] = t;
    }
  }
}

/**
 * How a page stores its pixels, checked: strips/tiles inside the file (geotiff would silently
 * return zeros for data past the end), a supported compression and predictor, and for
 * uncompressed strips enough bytes for their rows.
 */
function planPage(path: string, p: Ifd, k: number, size: number, bytesPerSample: number): PagePlan {
  const where = `cannot read TIFF page ${k}`;
  const tiled = !p.has(TAG.StripOffsets) && p.has(TAG.TileOffsets);
  const offsetsTag = tiled ? 'TileOffsets' : 'StripOffsets';
  const countsTag = tiled ? 'TileByteCounts' : 'StripByteCounts';
  const offsets = p.numbers(tiled ? TAG.TileOffsets : TAG.StripOffsets);
  const counts = p.numbers(tiled ? TAG.TileByteCounts : TAG.StripByteCounts);
  if (!offsets || !counts) throw new InputError(path, `${where}: missing ${offsetsTag}/${countsTag}`);
  const W = p.number(TAG.ImageWidth, 0);
  const H = p.number(TAG.ImageLength, 0);
  const tw = tiled ? p.number(TAG.TileWidth, 0) : W;
  const th = tiled ? p.number(TAG.TileLength, 0) : Math.min(H, p.number(TAG.RowsPerStrip, H));
  if (!(W > 0 && H > 0 && tw > 0 && th > 0)) throw new InputError(path, `${where}: bad size ${W}x${H} (blocks of ${tw}x${th})`);
  if (p.number(TAG.PlanarConfiguration, 1) !== 1 && p.number(TAG.SamplesPerPixel, 1) !== 1) {
    throw new InputError(path, `${where}: planar configuration ${p.number(TAG.PlanarConfiguration, 1)} is not supported`);
  }
  const blocks = Math.ceil(W / tw) * Math.ceil(H / th);
  if (offsets.length < blocks || counts.length < blocks) {
    throw new InputError(path, `${where}: ${offsets.length} ${offsetsTag} and ${counts.length} ${countsTag}, expected ${blocks}`);
  }
  const what = tiled ? 'tile' : 'strip';
  for (let i = 0; i < blocks; i++) {
    if (offsets[i] + counts[i] > size) {
      throw new InputError(path, `${where}: ${what} ${i} ends at byte ${offsets[i] + counts[i]}, past the end of the file (${size} bytes): truncated`);
    }
  }
  const compression = p.number(TAG.Compression, 1);
  if (!SUPPORTED_COMPRESSIONS.includes(compression)) {
    const name = COMPRESSION_NAMES[compression] ?? `code ${compression}`;
    throw new InputError(path, `${where}: unsupported compression ${name} (supported: none, LZW, Deflate, PackBits)`);
  }
  const predictor = p.number(TAG.Predictor, 1);
  if (predictor !== 1 && predictor !== 2 && predictor !== 3) throw new InputError(path, `${where}: unknown predictor ${predictor}`);
  if (predictor === 2 && bytesPerSample === 8) throw new InputError(path, `${where}: predictor 2 (horizontal differencing) on 64-bit samples is not supported`);
  if (predictor === 3 && p.number(TAG.SampleFormat, 1) !== 3) throw new InputError(path, `${where}: predictor 3 (floating point) on integer samples`);
  if (!tiled && compression === 1) {
    const rowBytes = W * bytesPerSample;
    for (let i = 0; i < blocks; i++) {
      const need = Math.min(th, H - i * th) * rowBytes;
      if (counts[i] < need) throw new InputError(path, `${where}: strip ${i} holds ${counts[i]} bytes, expected ${need}: corrupt`);
    }
  }
  return { compression, predictor, offsets, counts, tiled, blockW: tw, blockH: th };
}

// ---------------------------------------------------------------- writing

const TAG = {
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  Photometric: 262,
  StripOffsets: 273,
  SamplesPerPixel: 277,
  RowsPerStrip: 278,
  StripByteCounts: 279,
  XResolution: 282,
  YResolution: 283,
  ImageDescription: 270,
  PlanarConfiguration: 284,
  ResolutionUnit: 296,
  Predictor: 317,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  SampleFormat: 339,
} as const;
const ASCII = 2;
const SHORT = 3;
const LONG = 4;
const RATIONAL = 5;
/** Target strip size: small strips let a row window read little more than its rows. */
const STRIP_BYTES = 64 * 1024;

interface Entry {
  tag: number;
  type: number;
  /** ASCII: bytes incl. the NUL; RATIONAL: numerator, denominator pairs */
  values: number[];
}

const byteSize = (e: Entry) => e.values.length * (e.type === ASCII ? 1 : e.type === SHORT ? 2 : 4);

/** One page's IFD (entries sorted by tag, as TIFF requires) followed by its out-of-line values. */
function buildIfd(ifdOffset: number, entries: Entry[], nextIfd: number): Buffer {
  entries.sort((a, b) => a.tag - b.tag);
  const ifdSize = 2 + entries.length * 12 + 4;
  // Out-of-line values start on word boundaries, as TIFF requires.
  const padded = (e: Entry) => (byteSize(e) <= 4 ? 0 : byteSize(e) + (byteSize(e) % 2));
  const buf = Buffer.alloc(ifdSize + entries.reduce((n, e) => n + padded(e), 0));
  buf.writeUInt16LE(entries.length, 0);
  let extraAt = ifdSize;
  const writeValues = (e: Entry, at: number) => {
    e.values.forEach((v, i) => {
      if (e.type === ASCII) buf.writeUInt8(v, at + i);
      else if (e.type === SHORT) buf.writeUInt16LE(v, at + 2 * i);
      else buf.writeUInt32LE(v, at + 4 * i); // LONG, or RATIONAL as pairs of LONG
    });
  };
  entries.forEach((e, i) => {
    const at = 2 + i * 12;
    buf.writeUInt16LE(e.tag, at);
    buf.writeUInt16LE(e.type, at + 2);
    buf.writeUInt32LE(e.type === RATIONAL ? e.values.length / 2 : e.values.length, at + 4);
    if (byteSize(e) <= 4) {
      writeValues(e, at + 8);
    } else {
      buf.writeUInt32LE(ifdOffset + extraAt, at + 8);
      writeValues(e, extraAt);
      extraAt += padded(e);
    }
  });
  buf.writeUInt32LE(nextIfd, 2 + entries.length * 12);
  return buf;
}

/** Pixel arrays a TIFF is written from. */
export type TiffPixels = Float32Array | Uint16Array | Int16Array;
/** A TIFF's sample type: float32 (SampleFormat 3), uint16 (1) or int16 (2). */
export type TiffSample = 'float32' | 'uint16' | 'int16';

function sampleOf(a: TiffPixels): TiffSample {
  return a instanceof Float32Array ? 'float32' : a instanceof Int16Array ? 'int16' : 'uint16';
}

/**
 * Writes nPages images of width x height (pages concatenated, energy-major) as a multi-page
 * TIFF, one IFD per page: Float32Array -> float32 (SampleFormat 3), Uint16Array -> uint16,
 * Int16Array -> int16 (SampleFormat 2: signed, e.g. cluster labels with -1 excluded).
 * `description` goes into page 0's ImageDescription tag.
 */
export function writeTiffStack(
  path: string,
  pages: TiffPixels,
  width: number,
  height: number,
  nPages: number,
  opts: { description?: string; resolution?: { x: number; y: number } } = {},
): void {
  if (!(width > 0 && height > 0 && nPages > 0) || pages.length !== width * height * nPages) {
    throw new RangeError(`writeTiffStack ${path}: ${pages.length} values is not ${nPages} pages of ${width}x${height}`);
  }
  writeTiffRows(path, sampleOf(pages), width, height, nPages, (visit) => visit(pages, 0), opts);
}

/**
 * The file writeTiffStack writes (the same bytes), with the pixels given as blocks of whole
 * rows instead of one array: `rows(visit)` calls `visit(block, row0)` for every row of every
 * page once (row0 counts rows across the pages, page k's rows are k * height ..), so a map
 * read from disk block by block is never held whole. Each block is written before `visit`
 * returns.
 */
export function writeTiffRows(
  path: string,
  sample: TiffSample,
  width: number,
  height: number,
  nPages: number,
  rows: (visit: (block: TiffPixels, row0: number) => void) => void,
  opts: { description?: string; resolution?: { x: number; y: number } } = {},
): void {
  if (!(width > 0 && height > 0 && nPages > 0)) {
    throw new RangeError(`writeTiffRows ${path}: ${nPages} pages of ${width}x${height}`);
  }
  const float = sample === 'float32';
  const bps = float ? 4 : 2;
  const rowBytes = width * bps;
  const pageBytes = rowBytes * height;
  const dataBytes = pageBytes + (pageBytes % 2); // keep IFDs on word boundaries
  const rowsPerStrip = Math.max(1, Math.min(height, Math.floor(STRIP_BYTES / rowBytes)));
  const nStrips = Math.ceil(height / rowsPerStrip);
  const description = opts.description === undefined ? [] : [...Buffer.from(opts.description + '\0', 'latin1')];

  const entries = (k: number, dataAt: number): Entry[] => {
    const offsets: number[] = [];
    const counts: number[] = [];
    for (let s = 0; s < nStrips; s++) {
      offsets.push(dataAt + s * rowsPerStrip * rowBytes);
      counts.push(Math.min(rowsPerStrip, height - s * rowsPerStrip) * rowBytes);
    }
    const list: Entry[] = [
      { tag: TAG.ImageWidth, type: LONG, values: [width] },
      { tag: TAG.ImageLength, type: LONG, values: [height] },
      { tag: TAG.BitsPerSample, type: SHORT, values: [bps * 8] },
      { tag: TAG.Compression, type: SHORT, values: [1] },
      { tag: TAG.Photometric, type: SHORT, values: [1] }, // BlackIsZero
      { tag: TAG.StripOffsets, type: LONG, values: offsets },
      { tag: TAG.SamplesPerPixel, type: SHORT, values: [1] },
      { tag: TAG.RowsPerStrip, type: LONG, values: [rowsPerStrip] },
      { tag: TAG.StripByteCounts, type: LONG, values: counts },
      { tag: TAG.XResolution, type: RATIONAL, values: rational(opts.resolution?.x ?? 1) },
      { tag: TAG.YResolution, type: RATIONAL, values: rational(opts.resolution?.y ?? 1) },
      { tag: TAG.PlanarConfiguration, type: SHORT, values: [1] },
      { tag: TAG.ResolutionUnit, type: SHORT, values: [1] }, // none
      { tag: TAG.SampleFormat, type: SHORT, values: [float ? 3 : sample === 'int16' ? 2 : 1] },
    ];
    if (k === 0 && description.length > 0) list.push({ tag: TAG.ImageDescription, type: ASCII, values: description });
    return list;
  };
  // Layout: header, then per page its pixel data followed by its IFD.
  const ifd0Bytes = buildIfd(0, entries(0, 0), 0).length;
  const ifdBytes = buildIfd(0, entries(1, 0), 0).length;
  const total = 8 + nPages * dataBytes + ifd0Bytes + (nPages - 1) * ifdBytes;
  if (total > 0xffffffff) {
    throw new InputError(path, `stack of ${total} bytes is too large for a classic TIFF (4 GiB): write .npy instead`);
  }
  // Where each page's data starts (its IFD follows it).
  const dataAt: number[] = [];
  for (let k = 0, at = 8; k < nPages; k++) {
    dataAt.push(at);
    at += dataBytes + (k === 0 ? ifd0Bytes : ifdBytes);
  }

  let fd: number;
  try {
    fd = fs.openSync(path, 'w');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new InputError(path, `cannot write: ${err.code === 'ENOENT' ? 'no such directory' : err.message}`);
  }
  try {
    let written = 0;
    const writeAt = (bytes: Uint8Array, pos: number) => {
      for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done, pos + done);
      written += bytes.length;
    };
    const header = Buffer.alloc(8);
    header.write('II', 0, 'latin1');
    header.writeUInt16LE(42, 2);
    header.writeUInt32LE(8 + dataBytes, 4); // first IFD follows page 0's data
    writeAt(header, 0);
    let nextRow = 0;
    rows((block, row0) => {
      if (sampleOf(block) !== sample || block.length % width !== 0 || row0 !== nextRow || row0 + block.length / width > nPages * height) {
        throw new RangeError(`writeTiffRows ${path}: a block of ${block.length} ${sampleOf(block)} values at row ${row0} (expected ${sample} rows from ${nextRow} of ${nPages * height})`);
      }
      const n = block.length / width;
      // A block may cross page boundaries: each page's part goes to that page's data.
      for (let r = 0; r < n; ) {
        const k = Math.floor((row0 + r) / height);
        const y = (row0 + r) % height;
        const m = Math.min(n - r, height - y);
        writeAt(littleEndianBytes(block.subarray(r * width, (r + m) * width)), dataAt[k] + y * rowBytes);
        r += m;
      }
      nextRow += n;
    });
    if (nextRow !== nPages * height) throw new RangeError(`writeTiffRows ${path}: ${nextRow} rows given, ${nPages * height} needed`);
    for (let k = 0; k < nPages; k++) {
      if (pageBytes % 2) writeAt(new Uint8Array(1), dataAt[k] + pageBytes);
      const ifdAt = dataAt[k] + dataBytes;
      const next = k + 1 < nPages ? dataAt[k + 1] + dataBytes : 0;
      writeAt(buildIfd(ifdAt, entries(k, dataAt[k]), next), ifdAt);
    }
    if (written !== total) throw new Error(`writeTiffStack: wrote ${written} bytes, planned ${total}`);
  } catch (e) {
    if (e instanceof InputError || e instanceof RangeError) throw e;
    throw new InputError(path, `cannot write: ${message(e)}`);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A positive number as a TIFF RATIONAL (two uint32): ImageJ's pixels per unit, with six
 * significant digits whatever its magnitude.
 */
function rational(v: number): [number, number] {
  if (!(v > 0 && Number.isFinite(v))) return [1, 1];
  let den = 1;
  while (v * den < 1e6 && den < 1e9) den *= 10;
  let num = Math.round(v * den);
  while (num > 0xffffffff) {
    den = Math.max(1, Math.round(den / 10));
    num = Math.round(v * den);
  }
  return [num, den];
}

/** A single-page float32 TIFF (BitsPerSample 32, SampleFormat 3), e.g. a map for Fiji. */
export function writeTiffFloat32(path: string, data: Float32Array, width: number, height: number): void {
  writeTiffStack(path, data, width, height, 1);
}
