/**
 * Builds TIFF files for tests, independently of the reader under test: any sample format,
 * byte order, strips or tiles, compression (Deflate by node:zlib, LZW and PackBits by the
 * small encoders below), predictors 2 and 3, and raw tag overrides to make damaged files
 * (wrong counts, directory loops, bombs).
 */
import zlib from 'node:zlib';

export type Sample = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';

const INFO: Record<Sample, { bits: number; format: number; ctor: { new (n: number): ArrayLike<number> & { [i: number]: number; buffer: ArrayBufferLike } } }> = {
  uint8: { bits: 8, format: 1, ctor: Uint8Array },
  int8: { bits: 8, format: 2, ctor: Int8Array },
  uint16: { bits: 16, format: 1, ctor: Uint16Array },
  int16: { bits: 16, format: 2, ctor: Int16Array },
  uint32: { bits: 32, format: 1, ctor: Uint32Array },
  int32: { bits: 32, format: 2, ctor: Int32Array },
  float32: { bits: 32, format: 3, ctor: Float32Array },
  float64: { bits: 64, format: 3, ctor: Float64Array },
};

export interface TiffPageSpec {
  width: number;
  height: number;
  /** Pixel values, row-major (ignored when `raw` is given). */
  values?: ArrayLike<number>;
  sample?: Sample;
  /** 1 none, 5 LZW, 8 Deflate, 32773 PackBits. */
  compression?: number;
  predictor?: 1 | 2 | 3;
  /** Strips of this many rows (default: the whole image in one strip). */
  rowsPerStrip?: number;
  /** Tiles instead of strips. */
  tile?: { width: number; height: number };
  /** Extra or replacing tags: tag -> values (SHORT if all < 65536 and tag is not an offset, else LONG). */
  tags?: Record<number, number[]>;
  /** Replaces the block bytes as stored (after compression), e.g. a bomb's payload. */
  blocks?: Uint8Array[];
}

export interface TiffFileSpec {
  bigEndian?: boolean;
  pages: TiffPageSpec[];
  /** Page index the last page points back to (a directory loop). */
  loopTo?: number;
}

/** Samples of one page as bytes in the file's order. */
function sampleBytes(values: ArrayLike<number>, sample: Sample, bigEndian: boolean): Uint8Array {
  const { bits, ctor } = INFO[sample];
  const typed = new ctor(values.length);
  for (let i = 0; i < values.length; i++) typed[i] = values[i];
  const bytes = new Uint8Array(typed.buffer as ArrayBuffer).slice();
  const size = bits / 8;
  if (bigEndian && size > 1) for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
  return bytes;
}

/** Predictor 2 on rows of `rowSamples` samples (file-order bytes). */
function differenceHorizontal(bytes: Uint8Array, size: number, rowSamples: number, bigEndian: boolean): Uint8Array {
  const out = bytes.slice();
  const read = (b: Uint8Array, i: number) => {
    let v = 0;
    for (let k = 0; k < size; k++) v = v * 256 + b[i * size + (bigEndian ? k : size - 1 - k)];
    return v;
  };
  const write = (b: Uint8Array, i: number, v: number) => {
    for (let k = 0; k < size; k++) {
      b[i * size + (bigEndian ? size - 1 - k : k)] = v % 256;
      v = Math.floor(v / 256);
    }
  };
  const mod = 2 ** (8 * size);
  const n = bytes.length / size;
  for (let i = 0; i < n; i++) {
    if (i % rowSamples === 0) continue;
    write(out, i, (read(bytes, i) - read(bytes, i - 1) + mod) % mod);
  }
  return out;
}

/** Predictor 3 (TIFF Technical Note 3) on rows of `rowSamples` samples; input in file order. */
function differenceFloat(bytes: Uint8Array, size: number, rowSamples: number, bigEndian: boolean): Uint8Array {
  const out = new Uint8Array(bytes.length);
  const rowBytes = rowSamples * size;
  for (let r = 0; r < bytes.length / rowBytes; r++) {
    const row = new Uint8Array(rowBytes);
    for (let i = 0; i < rowSamples; i++) {
      for (let b = 0; b < size; b++) {
        // byte b of the big-endian value
        const fileByte = bigEndian ? b : size - 1 - b;
        row[b * rowSamples + i] = bytes[r * rowBytes + i * size + fileByte];
      }
    }
    for (let i = rowBytes - 1; i > 0; i--) row[i] = (row[i] - row[i - 1]) & 0xff;
    out.set(row, r * rowBytes);
  }
  return out;
}

export function packBits(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  while (i < data.length) {
    let run = 1;
    while (i + run < data.length && run < 128 && data[i + run] === data[i]) run++;
    if (run >= 2) {
      out.push(257 - run, data[i]);
      i += run;
      continue;
    }
    let lit = 1;
    while (i + lit < data.length && lit < 128 && !(i + lit + 1 < data.length && data[i + lit] === data[i + lit + 1])) lit++;
    out.push(lit - 1, ...data.subarray(i, i + lit));
    i += lit;
  }
  return Uint8Array.from(out);
}

/** TIFF LZW (MSB-first codes, early change), clearing the table when it fills. */
export function lzw(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  let acc = 0;
  let nacc = 0;
  let width = 9;
  const put = (code: number) => {
    acc = acc * 2 ** width + code;
    nacc += width;
    while (nacc >= 8) {
      nacc -= 8;
      out.push(Math.floor(acc / 2 ** nacc) & 0xff);
      acc %= 2 ** nacc;
    }
  };
  let table = new Map<string, number>();
  let next = 258;
  const reset = () => {
    table = new Map();
    next = 258;
    width = 9;
  };
  put(256);
  let w = '';
  for (const byte of data) {
    const wc = w === '' ? String.fromCharCode(byte) : w + String.fromCharCode(byte);
    if (wc.length === 1 || table.has(wc)) {
      w = wc;
      continue;
    }
    put(w.length === 1 ? w.charCodeAt(0) : table.get(w)!);
    table.set(wc, next++);
    if (next >= 1 << width && width < 12) width++;
    if (next >= 4093) {
      put(256);
      reset();
    }
    w = String.fromCharCode(byte);
  }
  if (w !== '') put(w.length === 1 ? w.charCodeAt(0) : table.get(w)!);
  put(257);
  if (nacc > 0) out.push((acc * 2 ** (8 - nacc)) & 0xff);
  return Uint8Array.from(out);
}

export function compress(bytes: Uint8Array, compression: number): Uint8Array {
  switch (compression) {
    case 1:
      return bytes;
    case 5:
      return lzw(bytes);
    case 8:
    case 32946:
      return new Uint8Array(zlib.deflateSync(bytes));
    case 32773:
      return packBits(bytes);
    default:
      throw new Error(`test builder: no encoder for compression ${compression}`);
  }
}

/** The bytes of each strip/tile of a page, before compression (tiles padded with zeros). */
function blocksOf(p: TiffPageSpec, bytes: Uint8Array, size: number): { raw: Uint8Array[]; rowSamples: number } {
  const rowBytes = p.width * size;
  if (p.tile) {
    const { width: tw, height: th } = p.tile;
    const raw: Uint8Array[] = [];
    for (let ty = 0; ty < Math.ceil(p.height / th); ty++) {
      for (let tx = 0; tx < Math.ceil(p.width / tw); tx++) {
        const t = new Uint8Array(tw * th * size);
        for (let r = 0; r < th && ty * th + r < p.height; r++) {
          const cols = Math.min(tw, p.width - tx * tw);
          const from = (ty * th + r) * rowBytes + tx * tw * size;
          t.set(bytes.subarray(from, from + cols * size), r * tw * size);
        }
        raw.push(t);
      }
    }
    return { raw, rowSamples: tw };
  }
  const rps = p.rowsPerStrip ?? p.height;
  const raw: Uint8Array[] = [];
  for (let y = 0; y < p.height; y += rps) raw.push(bytes.subarray(y * rowBytes, Math.min(p.height, y + rps) * rowBytes));
  return { raw, rowSamples: p.width };
}

/** A classic TIFF with one IFD per page. */
export function buildTiff(spec: TiffFileSpec): Buffer {
  const be = spec.bigEndian ?? false;
  const chunks: Uint8Array[] = [];
  let pos = 8;
  const append = (b: Uint8Array): number => {
    const at = pos;
    chunks.push(b);
    pos += b.length;
    if (pos % 2) {
      chunks.push(new Uint8Array(1));
      pos++;
    }
    return at;
  };
  const u16 = (v: number) => {
    const b = Buffer.alloc(2);
    if (be) b.writeUInt16BE(v);
    else b.writeUInt16LE(v);
    return b;
  };
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    if (be) b.writeUInt32BE(v >>> 0);
    else b.writeUInt32LE(v >>> 0);
    return b;
  };
  const ifdOffsets: number[] = [];
  const nextFieldAt: number[] = [];
  for (const p of spec.pages) {
    const sample = p.sample ?? 'uint16';
    const { bits, format } = INFO[sample];
    const size = bits / 8;
    let blockBytes: Uint8Array[];
    let rowSamples = p.width;
    if (p.blocks) blockBytes = p.blocks;
    else {
      const bytes = sampleBytes(p.values ?? new Uint8Array(p.width * p.height), sample, be);
      const b = blocksOf(p, bytes, size);
      rowSamples = b.rowSamples;
      const pred = p.predictor ?? 1;
      blockBytes = b.raw.map((raw) => {
        const d = pred === 2 ? differenceHorizontal(raw, size, rowSamples, be) : pred === 3 ? differenceFloat(raw, size, rowSamples, be) : raw;
        return compress(d, p.compression ?? 1);
      });
    }
    const offsets = blockBytes.map(append);
    const counts = blockBytes.map((b) => b.length);
    const tags: Record<number, { type: number; values: number[] }> = {
      256: { type: 4, values: [p.width] },
      257: { type: 4, values: [p.height] },
      258: { type: 3, values: [bits] },
      259: { type: 3, values: [p.compression ?? 1] },
      262: { type: 3, values: [1] },
      277: { type: 3, values: [1] },
      339: { type: 3, values: [format] },
    };
    if (p.predictor && p.predictor !== 1) tags[317] = { type: 3, values: [p.predictor] };
    if (p.tile) {
      tags[322] = { type: 4, values: [p.tile.width] };
      tags[323] = { type: 4, values: [p.tile.height] };
      tags[324] = { type: 4, values: offsets };
      tags[325] = { type: 4, values: counts };
    } else {
      tags[273] = { type: 4, values: offsets };
      tags[278] = { type: 4, values: [p.rowsPerStrip ?? p.height] };
      tags[279] = { type: 4, values: counts };
    }
    for (const [t, values] of Object.entries(p.tags ?? {})) {
      const tag = Number(t);
      if (values.length === 0) delete tags[tag];
      else if (tag === 270) tags[tag] = { type: 2, values }; // ImageDescription: ASCII bytes
      else tags[tag] = { type: values.every((v) => v < 65536) && ![273, 279, 324, 325].includes(tag) ? 3 : 4, values };
    }
    const sorted = Object.keys(tags).map(Number).sort((a, b) => a - b);
    // Out-of-line values first, then the IFD.
    const valueAt = new Map<number, number>();
    for (const tag of sorted) {
      const { type, values } = tags[tag];
      const bytes = values.length * (type === 2 ? 1 : type === 3 ? 2 : 4);
      if (bytes > 4) valueAt.set(tag, append(type === 2 ? Uint8Array.from(values) : Buffer.concat(values.map((v) => (type === 3 ? u16(v) : u32(v))))));
    }
    const ifd: Uint8Array[] = [u16(sorted.length)];
    for (const tag of sorted) {
      const { type, values } = tags[tag];
      const field = Buffer.alloc(4);
      if (valueAt.has(tag)) u32(valueAt.get(tag)!).copy(field);
      else (type === 2 ? Buffer.from(values) : Buffer.concat(values.map((v) => (type === 3 ? u16(v) : u32(v))))).copy(field);
      ifd.push(u16(tag), u16(type), u32(values.length), field);
    }
    ifd.push(u32(0));
    const ifdBuf = Buffer.concat(ifd);
    const at = append(ifdBuf);
    ifdOffsets.push(at);
    nextFieldAt.push(at + ifdBuf.length - 4);
  }
  const header = Buffer.concat([Buffer.from(be ? 'MM' : 'II', 'latin1'), u16(42), u32(ifdOffsets[0])]);
  const file = Buffer.concat([header, ...chunks]);
  const link = (from: number, to: number) => {
    if (be) file.writeUInt32BE(to, from);
    else file.writeUInt32LE(to, from);
  };
  for (let k = 0; k + 1 < ifdOffsets.length; k++) link(nextFieldAt[k], ifdOffsets[k + 1]);
  if (spec.loopTo !== undefined) link(nextFieldAt[ifdOffsets.length - 1], ifdOffsets[spec.loopTo]);
  return file;
}
