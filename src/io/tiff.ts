/**
 * Multi-page TIFF stacks (page i = image at energy i).
 *
 * Reading uses the `geotiff` package: it reads only the strips/tiles a row window touches
 * and handles compression (LZW, Deflate, PackBits, ...). Its file source zero-fills reads
 * past the end of the file and its page count walks the IFD chain without a cycle check,
 * so open() walks the chain itself and checks that every strip lies inside the file:
 * a damaged file becomes an InputError, not zeros or a hang.
 *
 * Uncompressed strips, the common case for instrument and ImageJ stacks, are read directly
 * with positioned reads: geotiff's generic per-pixel path runs at ~50 MB/s, far below disk
 * speed. Compressed or tiled pages go through geotiff.
 *
 * Writing is a minimal baseline TIFF written by hand (little-endian 'II', uncompressed,
 * strips, one IFD per page): geotiff's writer writes a single image with GeoTIFF tags,
 * and we need multi-page stacks that Fiji/ImageJ open as stacks.
 */
import fs from 'node:fs';
import os from 'node:os';
import { fromFile, type GeoTIFF, type GeoTIFFImage } from 'geotiff';
import { InputError } from './errors.js';
import { littleEndianBytes } from './npy.js';
import type { StackSource } from '../stack/source.js';

type TiffDtype = 'uint8' | 'uint16' | 'float32';

/** 'uint16', 'float32', ... from the SampleFormat and BitsPerSample tags. */
function describeFormat(sampleFormat: number, bits: number): string {
  const kind = ({ 1: 'uint', 2: 'int', 3: 'float' } as Record<number, string>)[sampleFormat];
  return kind ? `${kind}${bits}` : `SampleFormat=${sampleFormat} with ${bits} bits`;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Pages read concurrently in readRows: enough to overlap file reads, few enough to bound memory. */
const PAGE_CONCURRENCY = 8;

const HOST_LE = os.endianness() === 'LE';

/** Where an uncompressed, stripped page keeps its rows. */
interface RawPlan {
  offsets: number[];
  rowsPerStrip: number;
}

export class TiffStack implements StackSource {
  private constructor(
    readonly path: string,
    private tiff: GeoTIFF,
    private pages: GeoTIFFImage[],
    /** per page: direct-read plan, or null to decode with geotiff */
    private plans: (RawPlan | null)[],
    private fd: number,
    readonly width: number,
    readonly height: number,
    readonly dtype: TiffDtype,
  ) {}

  get nE(): number {
    return this.pages.length;
  }

  static async open(path: string): Promise<TiffStack> {
    let size: number;
    try {
      const st = fs.statSync(path);
      if (st.isDirectory()) throw new InputError(path, 'is a directory, not a file');
      size = st.size;
    } catch (e) {
      if (e instanceof InputError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      throw new InputError(path, code === 'ENOENT' ? 'no such file' : `cannot open: ${message(e)}`);
    }
    if (size < 8) throw new InputError(path, `not a TIFF file (only ${size} bytes)`);

    let tiff: GeoTIFF;
    try {
      tiff = await fromFile(path);
    } catch (e) {
      throw new InputError(path, `not a TIFF file: ${message(e)}`);
    }
    let fd = -1;
    try {
      const pages = await walkPages(path, tiff, size);
      const first = pages[0];
      // ImageJ writes stacks over 4 GiB as one directory followed by all images back to back;
      // reading it as a single image would give a 1-energy stack.
      const desc = first.fileDirectory.hasTag('ImageDescription') ? String(await first.fileDirectory.loadValue('ImageDescription')) : '';
      const ijImages = /^ImageJ=[\s\S]*?\bimages=(\d+)/.exec(desc);
      if (pages.length === 1 && ijImages && Number(ijImages[1]) > 1) {
        throw new InputError(path, `ImageJ stack of ${ijImages[1]} images stored after a single TIFF directory is not supported: save it as .npy or as a TIFF with one directory per image`);
      }
      const width = first.getWidth();
      const height = first.getHeight();
      let dtype: TiffDtype | undefined;
      const plans: (RawPlan | null)[] = [];
      for (let k = 0; k < pages.length; k++) {
        const p = pages[k];
        const where = `TIFF page ${k}`;
        if (p.getWidth() !== width || p.getHeight() !== height) {
          throw new InputError(path, `${where} is ${p.getWidth()}x${p.getHeight()}, page 0 is ${width}x${height}: all pages must have the same size`);
        }
        if (p.getSamplesPerPixel() !== 1) {
          throw new InputError(path, `${where} has ${p.getSamplesPerPixel()} samples per pixel (RGB?): expected 1 (greyscale)`);
        }
        if (p.fileDirectory.getValue('PhotometricInterpretation') === 3) {
          throw new InputError(path, `${where} is a palette-colour image: expected greyscale intensities`);
        }
        const fmt = describeFormat(p.getSampleFormat(), p.getBitsPerSample());
        if (fmt !== 'uint8' && fmt !== 'uint16' && fmt !== 'float32') {
          throw new InputError(path, `${where}: unsupported sample format ${fmt} (supported: uint8, uint16, float32)`);
        }
        if (dtype !== undefined && fmt !== dtype) {
          throw new InputError(path, `${where} is ${fmt}, page 0 is ${dtype}: all pages must have the same sample format`);
        }
        dtype = fmt;
        plans.push(await checkBlocks(path, p, k, size));
      }
      fd = fs.openSync(path, 'r');
      return new TiffStack(path, tiff, pages, plans, fd, width, height, dtype!);
    } catch (e) {
      void closeQuietly(tiff);
      if (fd >= 0) fs.closeSync(fd);
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
    const plans = this.plans;
    if (plans.some((p) => p !== null)) {
      const scratch = new Uint8Array(rows * W * (this.dtype === 'uint8' ? 1 : this.dtype === 'uint16' ? 2 : 4));
      for (let k = 0; k < this.nE; k++) if (plans[k]) this.readRaw(k, plans[k]!, y0, rows, scratch, out.subarray(k * rows * W));
    }
    const readPage = async (k: number): Promise<void> => {
      let data: ArrayLike<number>;
      try {
        data = (await this.pages[k].readRasters({
          window: [0, y0, W, y0 + rows],
          samples: [0],
          interleave: true,
        })) as unknown as ArrayLike<number>;
      } catch (e) {
        throw new InputError(this.path, `cannot read TIFF page ${k}: ${message(e)}`);
      }
      if (data.length !== rows * W) {
        throw new InputError(this.path, `cannot read TIFF page ${k}: got ${data.length} values for ${rows} rows of ${W}`);
      }
      out.set(data, k * rows * W); // converts uint8/uint16 to float32
    };
    const viaGeotiff = plans.flatMap((p, k) => (p ? [] : [k]));
    for (let i = 0; i < viaGeotiff.length; i += PAGE_CONCURRENCY) {
      await Promise.all(viaGeotiff.slice(i, i + PAGE_CONCURRENCY).map(readPage));
    }
  }

  /** Rows of one uncompressed page: one positioned read per strip touched, then one conversion. */
  private readRaw(k: number, plan: RawPlan, y0: number, rows: number, scratch: Uint8Array, out: Float32Array): void {
    const rowBytes = scratch.length / rows;
    const rps = plan.rowsPerStrip;
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
    const size = this.dtype === 'uint8' ? 1 : this.dtype === 'uint16' ? 2 : 4;
    if (size > 1 && this.tiff.littleEndian !== HOST_LE) {
      swapBytes(scratch, size);
    }
    const n = scratch.length / size;
    if (this.dtype === 'uint8') out.set(scratch.subarray(0, n));
    else if (this.dtype === 'uint16') out.set(new Uint16Array(scratch.buffer, 0, n));
    else out.set(new Float32Array(scratch.buffer, 0, n));
  }

  close(): void {
    void closeQuietly(this.tiff);
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** In-place byte swap of 2- or 4-byte elements (big-endian 'MM' files on little-endian hosts). */
function swapBytes(b: Uint8Array, size: number): void {
  for (let i = 0; i + size <= b.length; i += size) {
    for (let lo = i, hi = i + size - 1; lo < hi; lo++, hi--) {
      const t = b[lo];
      b[lo] = b[hi];
      b[hi] = t;
    }
  }
}

async function closeQuietly(tiff: GeoTIFF): Promise<void> {
  try {
    await tiff.close();
  } catch {
    // Closing a read-only file cannot lose data; nothing useful to report.
  }
}

/** All IFDs, following the chain with a cycle check and offsets that must lie in the file. */
async function walkPages(path: string, tiff: GeoTIFF, size: number): Promise<GeoTIFFImage[]> {
  const seen = new Set<number>();
  let offset = tiff.firstIFDOffset;
  const pages: GeoTIFFImage[] = [];
  for (let k = 0; ; k++) {
    if (offset < 8 || offset >= size) {
      throw new InputError(path, `cannot read TIFF page ${k}: its directory offset ${offset} is outside the file (${size} bytes): truncated or corrupt`);
    }
    if (seen.has(offset)) throw new InputError(path, `corrupt TIFF: page ${k} points back to an earlier page (directory loop)`);
    seen.add(offset);
    let img: GeoTIFFImage;
    try {
      img = await tiff.getImage(k);
    } catch (e) {
      throw new InputError(path, `cannot read TIFF page ${k}: ${message(e)}`);
    }
    pages.push(img);
    offset = img.fileDirectory.nextIFDByteOffset;
    if (!offset) return pages;
  }
}

/**
 * Checks that a page's strips/tiles lie inside the file (geotiff would silently return zeros
 * for data past the end) and returns a direct-read plan when the page is uncompressed strips.
 */
async function checkBlocks(path: string, img: GeoTIFFImage, k: number, size: number): Promise<RawPlan | null> {
  const fd = img.fileDirectory;
  const where = `cannot read TIFF page ${k}`;
  const tiled = !fd.hasTag('StripOffsets');
  const offsetsTag = tiled ? 'TileOffsets' : 'StripOffsets';
  const countsTag = tiled ? 'TileByteCounts' : 'StripByteCounts';
  if (!fd.hasTag(offsetsTag) || !fd.hasTag(countsTag)) throw new InputError(path, `${where}: missing ${offsetsTag}/${countsTag}`);
  const offsets = Array.from((await fd.loadValue(offsetsTag)) as ArrayLike<number | bigint>, Number);
  const counts = Array.from((await fd.loadValue(countsTag)) as ArrayLike<number | bigint>, Number);
  const tw = img.getTileWidth();
  const th = img.getTileHeight();
  if (!(img.getWidth() > 0 && img.getHeight() > 0 && tw > 0 && th > 0)) {
    throw new InputError(path, `${where}: bad size ${img.getWidth()}x${img.getHeight()} (blocks of ${tw}x${th})`);
  }
  const blocks = Math.ceil(img.getWidth() / tw) * Math.ceil(img.getHeight() / th);
  if (offsets.length < blocks || counts.length < blocks) {
    throw new InputError(path, `${where}: ${offsets.length} ${offsetsTag} and ${counts.length} ${countsTag}, expected ${blocks}`);
  }
  const what = tiled ? 'tile' : 'strip';
  for (let i = 0; i < blocks; i++) {
    if (offsets[i] + counts[i] > size) {
      throw new InputError(path, `${where}: ${what} ${i} ends at byte ${offsets[i] + counts[i]}, past the end of the file (${size} bytes): truncated`);
    }
  }
  const compression = fd.hasTag('Compression') ? Number(fd.getValue('Compression')) : 1;
  if (tiled || compression !== 1) return null;
  const rowBytes = img.getWidth() * (img.getBitsPerSample() / 8);
  for (let i = 0; i < blocks; i++) {
    const need = Math.min(th, img.getHeight() - i * th) * rowBytes;
    if (counts[i] < need) throw new InputError(path, `${where}: strip ${i} holds ${counts[i]} bytes, expected ${need}: corrupt`);
  }
  return { offsets, rowsPerStrip: th };
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

/**
 * Writes nPages images of width x height (pages concatenated, energy-major) as a multi-page
 * TIFF, one IFD per page: Float32Array -> float32 (SampleFormat 3), Uint16Array -> uint16,
 * Int16Array -> int16 (SampleFormat 2: signed, e.g. cluster labels with -1 excluded).
 * `description` goes into page 0's ImageDescription tag.
 */
export function writeTiffStack(
  path: string,
  pages: Float32Array | Uint16Array | Int16Array,
  width: number,
  height: number,
  nPages: number,
  opts: { description?: string } = {},
): void {
  if (!(width > 0 && height > 0 && nPages > 0) || pages.length !== width * height * nPages) {
    throw new RangeError(`writeTiffStack ${path}: ${pages.length} values is not ${nPages} pages of ${width}x${height}`);
  }
  const float = pages instanceof Float32Array;
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
      { tag: TAG.XResolution, type: RATIONAL, values: [1, 1] },
      { tag: TAG.YResolution, type: RATIONAL, values: [1, 1] },
      { tag: TAG.PlanarConfiguration, type: SHORT, values: [1] },
      { tag: TAG.ResolutionUnit, type: SHORT, values: [1] }, // none
      { tag: TAG.SampleFormat, type: SHORT, values: [float ? 3 : pages instanceof Int16Array ? 2 : 1] },
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

  let fd: number;
  try {
    fd = fs.openSync(path, 'w');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new InputError(path, `cannot write: ${err.code === 'ENOENT' ? 'no such directory' : err.message}`);
  }
  try {
    let pos = 0;
    const write = (bytes: Uint8Array) => {
      for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done, pos + done);
      pos += bytes.length;
    };
    const header = Buffer.alloc(8);
    header.write('II', 0, 'latin1');
    header.writeUInt16LE(42, 2);
    header.writeUInt32LE(8 + dataBytes, 4); // first IFD follows page 0's data
    write(header);
    for (let k = 0; k < nPages; k++) {
      const dataAt = pos;
      write(littleEndianBytes(pages.subarray(k * width * height, (k + 1) * width * height)));
      if (pageBytes % 2) write(new Uint8Array(1));
      const ifdAt = pos;
      const next = k + 1 < nPages ? ifdAt + (k === 0 ? ifd0Bytes : ifdBytes) + dataBytes : 0;
      write(buildIfd(ifdAt, entries(k, dataAt), next));
    }
    if (pos !== total) throw new Error(`writeTiffStack: wrote ${pos} bytes, planned ${total}`);
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(path, `cannot write: ${message(e)}`);
  } finally {
    fs.closeSync(fd);
  }
}

/** A single-page float32 TIFF (BitsPerSample 32, SampleFormat 3), e.g. a map for Fiji. */
export function writeTiffFloat32(path: string, data: Float32Array, width: number, height: number): void {
  writeTiffStack(path, data, width, height, 1);
}
