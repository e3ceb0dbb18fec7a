/**
 * NumPy .npy reader and writer.
 *
 * Stacks can be larger than RAM, so NpyFile reads only the header when opened and then
 * serves element ranges with positioned reads (fs.readSync at an offset), in chunks of at
 * most CHUNK_BYTES. readNpy (whole file) is for small arrays such as energy grids.
 * Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */
import fs from 'node:fs';
import os from 'node:os';
import { InputError } from './errors.js';
import { parsePyLiteral, PyDict, PyLiteralError, PyTuple, type PyValue } from './pyliteral.js';

export type NpyDtype = 'float32' | 'float64' | 'uint16' | 'uint8' | 'int16' | 'int32' | 'uint32';
export type NpyArray =
  | Float32Array
  | Float64Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array;

export interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
  /** byte offset of the first element (= length of magic + version + header) */
  dataOffset: number;
}

/** Little-endian descriptors we accept; '|' is numpy's "byte order not applicable" for 1-byte types. */
const DESCR: Record<string, NpyDtype> = {
  '<f4': 'float32',
  '<f8': 'float64',
  '<u2': 'uint16',
  '|u1': 'uint8',
  '<u1': 'uint8',
  '<i2': 'int16',
  '<i4': 'int32',
  '<u4': 'uint32',
};
const CODE: Record<NpyDtype, string> = {
  float32: '<f4',
  float64: '<f8',
  uint16: '<u2',
  uint8: '|u1',
  int16: '<i2',
  int32: '<i4',
  uint32: '<u4',
};
const CTOR = {
  float32: Float32Array,
  float64: Float64Array,
  uint16: Uint16Array,
  uint8: Uint8Array,
  int16: Int16Array,
  int32: Int32Array,
  uint32: Uint32Array,
} as const;
const SUPPORTED = (Object.keys(CODE) as NpyDtype[]).map((d) => `${d} '${CODE[d]}'`).join(', ');
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // "\x93NUMPY"

/** Upper bound of one positioned read, so a huge range never needs a huge buffer. */
export const CHUNK_BYTES = 64 * 1024 * 1024;

/** Typed-array views are native-endian; .npy data here is little-endian. */
const HOST_LE = os.endianness() === 'LE';

export function itemSize(dtype: NpyDtype): number {
  return CTOR[dtype].BYTES_PER_ELEMENT;
}

/** A shape as Python prints it: (3,) for 1-D, (2, 3) otherwise. */
export function formatShape(shape: number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The bytes of a typed array in little-endian order (a copy only on big-endian hosts). */
export function littleEndianBytes(data: NpyArray): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_LE) return bytes;
  const copy = bytes.slice();
  toHostOrder(copy, data.BYTES_PER_ELEMENT);
  return copy;
}

/** Byte-swaps in place; a no-op on little-endian hosts (all the ones Node usually runs on). */
function toHostOrder(bytes: Uint8Array, size: number): void {
  if (HOST_LE || size === 1) return;
  for (let i = 0; i + size <= bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

/**
 * Parses the magic, version and header dict. `buf` must hold at least the whole header;
 * if it does not, the file is truncated.
 */
export function parseNpyHeader(buf: Buffer, path: string): NpyHeader {
  if (buf.length < 10) {
    if (buf.length >= MAGIC.length && !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new InputError(path, 'not a .npy file (bad magic bytes)');
    }
    throw new InputError(path, `truncated .npy: header needs at least 10 bytes, found ${buf.length}`);
  }
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new InputError(path, 'not a .npy file (bad magic bytes)');
  }
  const major = buf[6];
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) {
      throw new InputError(path, `truncated .npy: header needs at least 12 bytes, found ${buf.length}`);
    }
    headerLen = buf.readUInt32LE(8);
    start = 12;
  } else {
    throw new InputError(path, `unsupported .npy format version ${major}.${buf[7]} (supported: 1.0, 2.0, 3.0)`);
  }
  const dataOffset = start + headerLen;
  if (buf.length < dataOffset) {
    throw new InputError(path, `truncated .npy: header needs ${dataOffset} bytes, found ${buf.length}`);
  }
  // Version 3 only differs by allowing utf-8 in the header (for structured field names).
  const text = buf.toString(major === 3 ? 'utf8' : 'latin1', start, dataOffset);

  // The header is a Python dict literal, read as numpy reads it (ast.literal_eval): a key
  // given twice keeps its last value, and the keys must be exactly these three.
  const shown = JSON.stringify(text.trim().slice(0, 200));
  let parsed: PyValue;
  try {
    parsed = parsePyLiteral(text);
  } catch (e) {
    if (e instanceof PyLiteralError) throw new InputError(path, `corrupt .npy header (${e.message}): ${shown}`);
    throw e;
  }
  if (!(parsed instanceof PyDict)) throw new InputError(path, `corrupt .npy header (not a dict): ${shown}`);
  const keys = [...parsed.entries.keys()].map(String).sort();
  for (const k of ['descr', 'fortran_order', 'shape']) {
    if (!parsed.entries.has(k)) throw new InputError(path, `corrupt .npy header (no '${k}'): ${shown}`);
  }
  if (keys.length !== 3) {
    const extra = keys.filter((k) => !['descr', 'fortran_order', 'shape'].includes(k));
    throw new InputError(path, `corrupt .npy header (unexpected key${extra.length > 1 ? 's' : ''} ${extra.map((k) => `'${k}'`).join(', ')}; numpy expects exactly 'descr', 'fortran_order', 'shape')`);
  }
  const descrValue = parsed.entries.get('descr');
  if (typeof descrValue !== 'string') {
    throw new InputError(
      path,
      Array.isArray(descrValue)
        ? `unsupported dtype: structured array (supported: ${SUPPORTED})`
        : `corrupt .npy header ('descr' is not a string): ${shown}`,
    );
  }
  const descr = descrValue;
  const dtype = DESCR[descr];
  if (!dtype) {
    const hint = descr.startsWith('>') ? '; big-endian data: convert with arr.astype(arr.dtype.newbyteorder("<"))' : '';
    throw new InputError(path, `unsupported dtype '${descr}' (supported: ${SUPPORTED})${hint}`);
  }

  const fortran = parsed.entries.get('fortran_order');
  if (typeof fortran !== 'boolean') throw new InputError(path, `corrupt .npy header ('fortran_order' is not True or False): ${shown}`);
  if (fortran) {
    throw new InputError(path, 'fortran_order=True is not supported: save a C-ordered array (np.ascontiguousarray)');
  }

  const shapeValue = parsed.entries.get('shape');
  if (!(shapeValue instanceof PyTuple)) throw new InputError(path, `corrupt .npy header ('shape' is not a tuple): ${shown}`);
  const shape = shapeValue.items.map((v) => {
    if (typeof v !== 'bigint' || v < 0n) throw new InputError(path, `corrupt .npy header: bad shape entry '${String(v)}' (expected a non-negative integer)`);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new InputError(path, `corrupt .npy header: shape entry ${v} is too large`);
    return Number(v);
  });
  if (!Number.isSafeInteger(product(shape) * itemSize(dtype))) {
    throw new InputError(path, `corrupt .npy header: shape ${formatShape(shape)} is too large`);
  }
  return { dtype, shape, dataOffset };
}

/** Reads exactly `length` bytes at `position`, or says the file is truncated. */
function readFully(fd: number, path: string, into: Uint8Array, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    let n: number;
    try {
      n = fs.readSync(fd, into, done, length - done, position + done);
    } catch (e) {
      throw new InputError(path, `cannot read: ${(e as Error).message}`);
    }
    if (n === 0) {
      throw new InputError(path, `truncated .npy: read stopped at byte ${position + done} (file changed while reading?)`);
    }
    done += n;
  }
}

function openError(path: string, e: unknown): InputError {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return new InputError(path, 'no such file');
  if (err.code === 'EISDIR') return new InputError(path, 'is a directory, not a file');
  if (err.code === 'EACCES') return new InputError(path, 'permission denied');
  return new InputError(path, `cannot open: ${err.message}`);
}

/** An open .npy file; the data stays on disk and is read on demand. */
export class NpyFile {
  readonly nElements: number;
  /** Largest single read; tests lower it to exercise the chunk loop on small files. */
  chunkBytes = CHUNK_BYTES;
  private chunk: Uint8Array<ArrayBuffer> | null = null;

  private constructor(
    readonly path: string,
    private fd: number,
    readonly dtype: NpyDtype,
    readonly shape: number[],
    readonly dataOffset: number,
  ) {
    this.nElements = product(shape);
  }

  static open(path: string): NpyFile {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (e) {
      throw openError(path, e);
    }
    try {
      const st = fs.fstatSync(fd);
      if (st.isDirectory()) throw new InputError(path, 'is a directory, not a file');
      const size = st.size;
      // Preamble first (up to 12 bytes) to learn the header length, then the header.
      const pre = Buffer.alloc(Math.min(12, size));
      readFully(fd, path, pre, pre.length, 0);
      let headerBytes = pre.length;
      if (pre.length >= 10 && pre.subarray(0, 6).equals(MAGIC)) {
        if (pre[6] === 1) headerBytes = 10 + pre.readUInt16LE(8);
        else if ((pre[6] === 2 || pre[6] === 3) && pre.length >= 12) headerBytes = 12 + pre.readUInt32LE(8);
        // anything else: parseNpyHeader reports the version or the truncation
      }
      // numpy's own loader refuses headers over 10000 bytes; 1 MiB bounds the allocation.
      if (headerBytes > 1 << 20) throw new InputError(path, `corrupt .npy header: header length ${headerBytes} bytes is implausible`);
      const buf = Buffer.alloc(Math.min(headerBytes, size));
      readFully(fd, path, buf, buf.length, 0);
      const h = parseNpyHeader(buf, path);
      const expected = product(h.shape) * itemSize(h.dtype);
      const found = size - h.dataOffset;
      if (found < expected) {
        throw new InputError(path, `truncated .npy: expected ${expected} bytes of data, found ${found}`);
      }
      if (found > expected) {
        throw new InputError(path, `corrupt .npy: expected ${expected} bytes of data, found ${found} (extra bytes after the array)`);
      }
      return new NpyFile(path, fd, h.dtype, h.shape, h.dataOffset);
    } catch (e) {
      fs.closeSync(fd);
      throw e instanceof InputError ? e : new InputError(path, `cannot read: ${(e as Error).message}`);
    }
  }

  get itemSize(): number {
    return itemSize(this.dtype);
  }

  /**
   * The open descriptor and where the data start, for positioned reads from other threads
   * (a descriptor is the process's), where the stored bytes are the host's (little-endian
   * data on a little-endian host); else null. Valid until close().
   */
  positioned(): { fd: number; dataOffset: number } | null {
    if (this.fd < 0 || !(HOST_LE || this.itemSize === 1)) return null;
    return { fd: this.fd, dataOffset: this.dataOffset };
  }

  /**
   * Reads elements [offset, offset+count) (flat, C order) into out[outOffset..], converted
   * to float32. Bounds violations are programming errors (RangeError), not input errors.
   */
  readElements(offset: number, count: number, out: Float32Array, outOffset: number): void {
    if (this.fd < 0) throw new Error(`${this.path}: NpyFile is closed`);
    if (!(offset >= 0 && count >= 0 && offset + count <= this.nElements)) {
      throw new RangeError(`${this.path}: elements [${offset}, ${offset + count}) outside [0, ${this.nElements})`);
    }
    if (!(outOffset >= 0 && outOffset + count <= out.length)) {
      throw new RangeError(`${this.path}: output [${outOffset}, ${outOffset + count}) outside [0, ${out.length})`);
    }
    const size = this.itemSize;
    const pos0 = this.dataOffset + offset * size;
    if (this.dtype === 'float32') {
      // Same type: read straight into the caller's array, no conversion copy.
      const bytes = new Uint8Array(out.buffer, out.byteOffset + outOffset * 4, count * 4);
      const step = Math.max(4, this.chunkBytes - (this.chunkBytes % 4));
      for (let done = 0; done < bytes.length; done += step) {
        const n = Math.min(step, bytes.length - done);
        readFully(this.fd, this.path, bytes.subarray(done, done + n), n, pos0 + done);
      }
      toHostOrder(bytes, 4);
      return;
    }
    const perChunk = Math.max(1, Math.floor(this.chunkBytes / size));
    const needed = Math.min(perChunk, count) * size;
    // A fresh ArrayBuffer is aligned for any element size (Buffer's shared pool is not).
    if (!this.chunk || this.chunk.length < needed) this.chunk = new Uint8Array(needed);
    const Ctor = CTOR[this.dtype];
    for (let done = 0; done < count; ) {
      const n = Math.min(perChunk, count - done);
      const bytes = this.chunk.subarray(0, n * size);
      readFully(this.fd, this.path, bytes, bytes.length, pos0 + done * size);
      toHostOrder(bytes, size);
      out.set(new Ctor(bytes.buffer, 0, n), outOffset + done);
      done += n;
    }
  }

  /**
   * Reads elements [offset, offset+count) as stored (no conversion) into `out`, an array of
   * the file's own type (it may live in shared memory), at outOffset.
   */
  readElementsRaw(offset: number, count: number, out: NpyArray, outOffset: number): void {
    if (this.fd < 0) throw new Error(`${this.path}: NpyFile is closed`);
    if (!(offset >= 0 && count >= 0 && offset + count <= this.nElements)) {
      throw new RangeError(`${this.path}: elements [${offset}, ${offset + count}) outside [0, ${this.nElements})`);
    }
    if (!(out instanceof CTOR[this.dtype]) || !(outOffset >= 0 && outOffset + count <= out.length)) {
      throw new RangeError(`${this.path}: raw output must be a ${this.dtype} array holding [${outOffset}, ${outOffset + count})`);
    }
    const size = this.itemSize;
    const bytes = new Uint8Array(out.buffer, out.byteOffset + outOffset * size, count * size);
    const step = Math.max(size, this.chunkBytes - (this.chunkBytes % size));
    const pos0 = this.dataOffset + offset * size;
    for (let done = 0; done < bytes.length; done += step) {
      const n = Math.min(step, bytes.length - done);
      readFully(this.fd, this.path, bytes.subarray(done, done + n), n, pos0 + done);
    }
    toHostOrder(bytes, size);
  }

  /** Elements [offset, offset+count) (flat, C order) in the file's own type. */
  readRange(offset: number, count: number, into?: NpyArray): NpyArray {
    if (!(offset >= 0 && count >= 0 && offset + count <= this.nElements)) {
      throw new RangeError(`${this.path}: elements [${offset}, ${offset + count}) outside [0, ${this.nElements})`);
    }
    // `into` (an array of the file's type, at least `count` long) is reused: the values go
    // into its first `count` elements and that view is returned, so a reader that visits a
    // file block by block leaves no garbage behind (each new block would be an allocation
    // V8 collects only when it decides to).
    if (into && !(into instanceof CTOR[this.dtype] && into.length >= count)) {
      throw new RangeError(`${this.path}: readRange into ${into.constructor.name}[${into.length}] for ${count} ${this.dtype} values`);
    }
    const data = into ? into.subarray(0, count) : new CTOR[this.dtype](count);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    readFully(this.fd, this.path, bytes, bytes.length, this.dataOffset + offset * this.itemSize);
    toHostOrder(bytes, this.itemSize);
    return data;
  }

  /** An empty array of the file's type (e.g. to name the type to a writer). */
  emptyOfType(): NpyArray {
    return new CTOR[this.dtype](0);
  }

  /** The whole array in its own type (for small files). */
  readAll(): NpyArray {
    const Ctor = CTOR[this.dtype];
    const data = new Ctor(this.nElements);
    const bytes = new Uint8Array(data.buffer);
    for (let done = 0; done < bytes.length; done += CHUNK_BYTES) {
      const n = Math.min(CHUNK_BYTES, bytes.length - done);
      readFully(this.fd, this.path, bytes.subarray(done, done + n), n, this.dataOffset + done);
    }
    toHostOrder(bytes, this.itemSize);
    return data;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    this.chunk = null;
  }
}

/** Reads a whole (small) .npy file, keeping its element type. */
export function readNpy(path: string): { data: NpyArray; shape: number[]; dtype: NpyDtype } {
  const f = NpyFile.open(path);
  try {
    return { data: f.readAll(), shape: f.shape, dtype: f.dtype };
  } finally {
    f.close();
  }
}

function dtypeOf(data: NpyArray): NpyDtype {
  for (const d of Object.keys(CTOR) as NpyDtype[]) if (data instanceof CTOR[d]) return d;
  throw new TypeError('writeNpy: unsupported array type');
}

/** The version 1.0 header of a C-ordered little-endian array (magic to newline, 64-byte aligned). */
export function npyHeader(dtype: NpyDtype, shape: number[], path = ''): Buffer {
  let dict = `{'descr': '${CODE[dtype]}', 'fortran_order': False, 'shape': ${formatShape(shape)}, }`;
  // Pad with spaces so magic+version+len+dict+'\n' is a multiple of 64 (numpy's alignment).
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  dict = dict.padEnd(total - 10 - 1, ' ') + '\n';
  if (dict.length > 0xffff) throw new RangeError(`writeNpy ${path}: header too long for format 1.0`);
  const header = Buffer.alloc(10 + dict.length);
  MAGIC.copy(header, 0);
  header[6] = 1;
  header[7] = 0;
  header.writeUInt16LE(dict.length, 8);
  header.write(dict, 10, 'latin1');
  return header;
}

/** Writes a version 1.0 .npy file (C order, little-endian). */
export function writeNpy(path: string, data: NpyArray, shape: number[]): void {
  if (!shape.every((n) => Number.isSafeInteger(n) && n >= 0) || product(shape) !== data.length) {
    throw new RangeError(`writeNpy ${path}: shape ${formatShape(shape)} does not match ${data.length} elements`);
  }
  const header = npyHeader(dtypeOf(data), shape, path);

  const bytes = littleEndianBytes(data);
  let fd: number;
  try {
    fd = fs.openSync(path, 'w');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new InputError(path, `cannot write: ${err.code === 'ENOENT' ? 'no such directory' : err.message}`);
  }
  try {
    writeFully(fd, header);
    for (let done = 0; done < bytes.length; done += CHUNK_BYTES) {
      writeFully(fd, bytes.subarray(done, Math.min(bytes.length, done + CHUNK_BYTES)));
    }
  } catch (e) {
    throw new InputError(path, `cannot write: ${(e as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
}

function writeFully(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}

/**
 * The rows of a 2-D map file [height, width] (or any C-ordered array of height x width
 * values) as float32 blocks of about `blockBytes`, one block in memory at a time:
 * `visit(block, y0)` for rows y0.. of each block, from the top; a block is valid only during
 * its visit (the next one reuses its memory). Each call reads the file again.
 */
export function npyRowBlocks(file: string, width: number, height: number, blockBytes = 2 ** 20): (visit: (block: Float32Array, y0: number) => void) => void {
  const rows = Math.max(1, Math.floor(blockBytes / (4 * width)));
  return (visit) => {
    const f = NpyFile.open(file);
    try {
      if (f.nElements !== width * height) throw new RangeError(`${file}: ${f.nElements} values, not ${height} x ${width}`);
      // One block buffer for the whole pass: a block is valid only during its visit.
      const buf = f.dtype === 'float32' ? new Float32Array(Math.min(rows, height) * width) : undefined;
      for (let y0 = 0; y0 < height; y0 += rows) {
        const d = f.readRange(y0 * width, Math.min(rows, height - y0) * width, buf);
        visit(d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>), y0);
      }
    } finally {
      f.close();
    }
  };
}
