/**
 * Zeiss/Xradia TXM files: a .txrm (many images, one per energy) or a series of .xrm files
 * (one image each: a glob "scan_*.xrm", a comma-separated list, or a folder of .xrm),
 * read through src/io/ole.ts. Streams used (the layout Xradia's software writes):
 *
 *   ImageInfo/ImageWidth, ImageHeight   uint32
 *   ImageInfo/DataType                  uint32: 5 = uint16, 10 = float32
 *   ImageInfo/ImagesTaken (NoOfImages)  uint32, images in a .txrm
 *   ImageInfo/Energy                    float32 per image, eV
 *   ImageInfo/PixelSize                 float32, µm
 *   ImageData<k>/Image<i>               image i (1-based), k = ceil(i / 100): H x W, row-major
 *   ReferenceData/Image, DataType       the reference (flat) image, when the file carries one
 *
 * readRows reads only the rows a tile needs from each image stream. An .xrm series is sorted
 * by energy; energies must be distinct.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { globSync } from 'tinyglobby';
import { InputError } from './errors.js';
import { openOle, type OleReader } from './ole.js';
import { checkRowRequest, type StackSource, type StackLayout } from '../stack/source.js';

/** Xradia files are little-endian; typed-array views are native-endian. */
const HOST_LE = os.endianness() === 'LE';

const DTYPES: Record<number, { name: 'uint16' | 'float32'; bytes: number }> = {
  5: { name: 'uint16', bytes: 2 },
  10: { name: 'float32', bytes: 4 },
};

/** Most .xrm files a series may have (a glob that matches more is a mistake). */
const MAX_SERIES = 10_000;

function u32(ole: OleReader, stream: string): number | undefined {
  const n = ole.size(stream);
  if (n === undefined || n < 4) return undefined;
  return Buffer.from(ole.read(stream, 0, 4)).readUInt32LE(0);
}

function f32s(ole: OleReader, stream: string, count: number): Float32Array | undefined {
  const n = ole.size(stream);
  if (n === undefined || n < 4 * count) return undefined;
  const b = Buffer.from(ole.read(stream, 0, 4 * count));
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = b.readFloatLE(4 * i);
  return out;
}

function imageStream(i: number): string {
  return `ImageData${Math.ceil(i / 100)}/Image${i}`;
}

interface ImageRef {
  ole: OleReader;
  stream: string;
}

interface XradiaHeader {
  width: number;
  height: number;
  dtype: { name: 'uint16' | 'float32'; bytes: number };
  images: number;
  energies?: Float32Array;
  pixelSizeUm?: number;
}

function header(ole: OleReader, wantImages: boolean): XradiaHeader {
  const where = ole.path;
  const width = u32(ole, 'ImageInfo/ImageWidth');
  const height = u32(ole, 'ImageInfo/ImageHeight');
  if (!width || !height) throw new InputError(where, 'no ImageInfo/ImageWidth and ImageHeight: not an Xradia image file');
  const code = u32(ole, 'ImageInfo/DataType');
  if (code === undefined) throw new InputError(where, 'no ImageInfo/DataType');
  const dtype = DTYPES[code];
  if (!dtype) throw new InputError(where, `ImageInfo/DataType ${code} is not supported (5 = uint16, 10 = float32)`);
  let images = 1;
  if (wantImages) {
    images = u32(ole, 'ImageInfo/ImagesTaken') ?? u32(ole, 'ImageInfo/NoOfImages') ?? 0;
    if (!images) {
      // Count the image streams when the header does not say.
      while (ole.size(imageStream(images + 1)) !== undefined) images++;
    }
  }
  const energies = f32s(ole, 'ImageInfo/Energy', images);
  const px = f32s(ole, 'ImageInfo/PixelSize', 1)?.[0];
  return {
    width, height, dtype, images,
    energies: energies && energies.every((e) => e > 0 && Number.isFinite(e)) ? energies : undefined,
    pixelSizeUm: px !== undefined && px > 0 && Number.isFinite(px) ? px : undefined,
  };
}

function checkImage(ref: ImageRef, h: { width: number; height: number; dtype: { bytes: number } }): void {
  const size = ref.ole.size(ref.stream);
  const want = h.width * h.height * h.dtype.bytes;
  if (size === undefined) throw new InputError(ref.ole.path, `no ${ref.stream} stream: the file holds no image data there (ImageData missing)`);
  if (size < want) throw new InputError(ref.ole.path, `${ref.stream} holds ${size} bytes, a ${h.width}x${h.height} ${h.dtype.bytes === 2 ? 'uint16' : 'float32'} image needs ${want}`);
}

/** Images of one size and type, one per energy, each read row range by row range. */
export class XradiaStack implements StackSource {
  readonly nE: number;
  energies?: Float64Array;
  pixelSizeUm?: { x: number; y: number };
  layout?: StackLayout;
  flatField?: StackSource;
  private closed = false;

  constructor(
    readonly path: string,
    private images: ImageRef[],
    readonly width: number,
    readonly height: number,
    private type: { name: 'uint16' | 'float32'; bytes: number },
    private owned: OleReader[],
  ) {
    this.nE = images.length;
  }

  get dtype(): string {
    return `Xradia ${this.type.name}`;
  }

  async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
    checkRowRequest(this, y0, rows, out);
    const W = this.width;
    const n = rows * W;
    const bs = this.type.bytes;
    for (let e = 0; e < this.nE; e++) {
      const { ole, stream } = this.images[e];
      let bytes = ole.read(stream, y0 * W * bs, n * bs);
      const o = e * n;
      if (HOST_LE) {
        // Typed-array views need aligned offsets: copy the (rare) unaligned slice once.
        if (bytes.byteOffset % bs !== 0) bytes = bytes.slice();
        out.set(bs === 2 ? new Uint16Array(bytes.buffer, bytes.byteOffset, n) : new Float32Array(bytes.buffer, bytes.byteOffset, n), o);
      } else {
        const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
        if (bs === 2) for (let i = 0; i < n; i++) out[o + i] = b.readUInt16LE(2 * i);
        else for (let i = 0; i < n; i++) out[o + i] = b.readFloatLE(4 * i);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.flatField?.close();
    for (const o of this.owned) o.close();
  }
}

/** A reference image stored in the file, as a one-frame stack (read lazily). */
function reference(ole: OleReader, h: XradiaHeader): XradiaStack | undefined {
  const stream = 'ReferenceData/Image';
  if (ole.size(stream) === undefined) return undefined;
  const code = u32(ole, 'ReferenceData/DataType');
  const dtype = code !== undefined ? DTYPES[code] : h.dtype;
  if (!dtype) throw new InputError(ole.path, `ReferenceData/DataType ${code} is not supported (5 = uint16, 10 = float32)`);
  const ref = { ole, stream };
  checkImage(ref, { ...h, dtype });
  return new XradiaStack(`${ole.path}#${stream}`, [ref], h.width, h.height, dtype, []);
}

export function isXradiaPath(p: string): boolean {
  return /\.(xrm|txrm)$/i.test(p) || /\.xrm(,|$)/i.test(p);
}

/** Opens a .txrm, or an .xrm series given as one file, a glob, a comma list or a folder. */
export function openXradia(spec: string): XradiaStack {
  if (/\.txrm$/i.test(spec) && fs.existsSync(spec)) return openTxrm(spec);
  let files: string[];
  if (fs.existsSync(spec) && fs.statSync(spec).isDirectory()) {
    files = fs.readdirSync(spec).filter((f) => /\.xrm$/i.test(f)).map((f) => path.join(spec, f));
    if (files.length === 0) throw new InputError(spec, 'folder holds no .xrm files');
  } else if (spec.includes(',')) {
    files = spec.split(',').map((s) => s.trim()).filter((s) => s !== '');
  } else if (/[*?[\]{}]/.test(spec)) {
    files = globSync(spec, { absolute: false, onlyFiles: true, expandDirectories: false }).filter((f) => /\.xrm$/i.test(f));
    if (files.length === 0) throw new InputError(spec, 'no .xrm file matches');
  } else {
    files = [spec];
  }
  if (files.length > MAX_SERIES) throw new InputError(spec, `${files.length} files: more than ${MAX_SERIES} in one series`);
  return openXrmSeries(spec, files);
}

function openTxrm(file: string): XradiaStack {
  const ole = openOle(file);
  try {
    const h = header(ole, true);
    if (h.images < 1) throw new InputError(file, 'no images (ImageInfo/ImagesTaken is 0 and no ImageData streams)');
    const refs: ImageRef[] = [];
    for (let i = 1; i <= h.images; i++) {
      const r = { ole, stream: imageStream(i) };
      checkImage(r, h);
      refs.push(r);
    }
    const s = new XradiaStack(file, refs, h.width, h.height, h.dtype, [ole]);
    finish(s, file, 'txrm', h.energies, h.pixelSizeUm, reference(ole, h), ole.path);
    return s;
  } catch (e) {
    ole.close();
    throw e;
  }
}

function openXrmSeries(spec: string, files: string[]): XradiaStack {
  const oles: OleReader[] = [];
  try {
    const items: { ole: OleReader; h: XradiaHeader }[] = [];
    for (const f of files) {
      if (!fs.existsSync(f)) throw new InputError(f, 'no such file');
      const ole = openOle(f);
      oles.push(ole);
      const h = header(ole, false);
      checkImage({ ole, stream: imageStream(1) }, h);
      items.push({ ole, h });
    }
    const first = items[0].h;
    for (const it of items) {
      if (it.h.width !== first.width || it.h.height !== first.height || it.h.dtype !== first.dtype) {
        throw new InputError(it.ole.path, `${it.h.width}x${it.h.height} ${it.h.dtype.name}, but ${items[0].ole.path} is ${first.width}x${first.height} ${first.dtype.name}: one series, one image size and type`);
      }
    }
    const withEnergy = items.every((it) => it.h.energies !== undefined);
    if (withEnergy && items.length > 1) {
      items.sort((a, b) => a.h.energies![0] - b.h.energies![0]);
      for (let i = 1; i < items.length; i++) {
        if (!(items[i].h.energies![0] > items[i - 1].h.energies![0])) {
          throw new InputError(items[i].ole.path, `energy ${items[i].h.energies![0]} eV is also the energy of ${items[i - 1].ole.path}: one image per energy`);
        }
      }
    } else {
      items.sort((a, b) => a.ole.path.localeCompare(b.ole.path, 'en', { numeric: true }));
    }
    const energies = withEnergy ? Float32Array.from(items, (it) => it.h.energies![0]) : undefined;
    const s = new XradiaStack(spec, items.map((it) => ({ ole: it.ole, stream: imageStream(1) })), first.width, first.height, first.dtype, oles);
    finish(s, spec, 'xrm', energies, first.pixelSizeUm, undefined, `${items.length} .xrm files`);
    return s;
  } catch (e) {
    for (const o of oles) o.close();
    throw e;
  }
}

function finish(s: XradiaStack, where: string, name: 'txrm' | 'xrm', energies: Float32Array | undefined, px: number | undefined, ref: XradiaStack | undefined, data: string): void {
  const datasets: Record<string, string> = { data: name === 'txrm' ? `ImageData*/Image1..${s.nE}` : data };
  const notes: string[] = [];
  if (energies) {
    const e = Float64Array.from(energies);
    for (let i = 1; i < e.length; i++) {
      if (!(e[i] > e[i - 1])) throw new InputError(where, `ImageInfo/Energy not strictly increasing at image ${i + 1}: ${e[i]} eV after ${e[i - 1]} eV`);
    }
    s.energies = e;
    datasets.energies = 'ImageInfo/Energy (eV)';
  }
  if (px) {
    // Stored as float32: 7 significant digits are what the instrument wrote.
    const um = Number(px.toPrecision(7));
    s.pixelSizeUm = { x: um, y: um };
    datasets.pixel_size = `ImageInfo/PixelSize (${um} um)`;
  }
  if (ref) {
    s.flatField = ref;
    datasets.flat = 'ReferenceData/Image';
  }
  s.layout = { format: 'xradia', name, title: name === 'txrm' ? 'Xradia .txrm' : 'Xradia .xrm series', datasets, notes };
}
