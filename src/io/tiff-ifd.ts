/**
 * TIFF directories (IFDs), classic and BigTIFF, read with positioned reads and checked
 * against the file size: every directory, and every value it points to, must lie inside the
 * file, and the chain of directories must not loop. (TIFF 6.0 section 2; BigTIFF: version 43,
 * 8-byte offsets and counts, 20-byte entries.)
 *
 * Written here rather than taken from geotiff because geotiff reads out-of-line arrays
 * (strip offsets of multi-strip pages) of big-endian files as little-endian, and follows the
 * chain without a cycle check.
 */
import fs from 'node:fs';
import { InputError } from './errors.js';

/** Bytes per value of each TIFF field type. */
const TYPE_SIZE: Record<number, number> = {
  1: 1, // BYTE
  2: 1, // ASCII
  3: 2, // SHORT
  4: 4, // LONG
  5: 8, // RATIONAL
  6: 1, // SBYTE
  7: 1, // UNDEFINED
  8: 2, // SSHORT
  9: 4, // SLONG
  10: 8, // SRATIONAL
  11: 4, // FLOAT
  12: 8, // DOUBLE
  13: 4, // IFD
  16: 8, // LONG8
  17: 8, // SLONG8
  18: 8, // IFD8
};

interface Entry {
  type: number;
  count: number;
  /** Where the values are: inside the entry, or at an offset in the file. */
  at: number;
}

/** One directory: its entries, read lazily by tag. */
export class Ifd {
  constructor(
    private file: TiffFile,
    readonly index: number,
    readonly offset: number,
    private entries: Map<number, Entry>,
    readonly next: number,
  ) {}

  has(tag: number): boolean {
    return this.entries.has(tag);
  }

  /** The numeric values of a tag, or undefined when it is absent. */
  numbers(tag: number): number[] | undefined {
    const e = this.entries.get(tag);
    if (!e) return undefined;
    return this.file.values(e, this.index, tag);
  }

  /** The first value of a tag, or `fallback` when absent. */
  number(tag: number, fallback: number): number {
    const v = this.numbers(tag);
    if (!v || v.length === 0) return fallback;
    return v[0];
  }

  /** An ASCII tag (e.g. ImageDescription), or '' when absent. */
  text(tag: number): string {
    const e = this.entries.get(tag);
    if (!e || e.type !== 2) return '';
    return Buffer.from(this.file.bytes(e.at, Math.min(e.count, 1 << 20), this.index)).toString('latin1').replace(/\0[\s\S]*$/, '');
  }
}

/** An open TIFF file: byte order, format, and its directories. */
export class TiffFile {
  private constructor(
    readonly path: string,
    private fd: number,
    readonly size: number,
    readonly littleEndian: boolean,
    readonly bigTiff: boolean,
    readonly firstIfd: number,
  ) {}

  /** Reads the header; the descriptor stays owned by the caller. */
  static open(path: string, fd: number, size: number): TiffFile {
    if (size < 8) throw new InputError(path, `not a TIFF file (only ${size} bytes)`);
    const head = Buffer.alloc(Math.min(16, size));
    readAt(path, fd, head, 0, 'the header');
    const order = head.toString('latin1', 0, 2);
    if (order !== 'II' && order !== 'MM') throw new InputError(path, 'not a TIFF file (no II or MM byte-order mark)');
    const le = order === 'II';
    const version = le ? head.readUInt16LE(2) : head.readUInt16BE(2);
    if (version === 42) {
      return new TiffFile(path, fd, size, le, false, le ? head.readUInt32LE(4) : head.readUInt32BE(4));
    }
    if (version === 43) {
      if (head.length < 16) throw new InputError(path, 'truncated BigTIFF header');
      const first = Number(le ? head.readBigUInt64LE(8) : head.readBigUInt64BE(8));
      return new TiffFile(path, fd, size, le, true, first);
    }
    throw new InputError(path, `not a TIFF file (version ${version}, expected 42 or BigTIFF 43)`);
  }

  /** `length` bytes at `offset`, which must lie inside the file. */
  bytes(offset: number, length: number, page: number): Buffer {
    if (offset < 0 || offset + length > this.size) {
      throw new InputError(this.path, `cannot read TIFF page ${page}: a value at bytes ${offset}..${offset + length} lies past the end of the file (${this.size} bytes): truncated or corrupt`);
    }
    const b = Buffer.alloc(length);
    readAt(this.path, this.fd, b, offset, `TIFF page ${page}`);
    return b;
  }

  private uint(b: Buffer, at: number, size: number): number {
    const le = this.littleEndian;
    if (size === 1) return b[at];
    if (size === 2) return le ? b.readUInt16LE(at) : b.readUInt16BE(at);
    if (size === 4) return le ? b.readUInt32LE(at) : b.readUInt32BE(at);
    return Number(le ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at));
  }

  /** Every directory of the chain, in order, refusing loops and offsets outside the file. */
  directories(): Ifd[] {
    const seen = new Set<number>();
    const out: Ifd[] = [];
    for (let offset = this.firstIfd, k = 0; offset !== 0; k++) {
      if (offset < 8 || offset >= this.size) {
        throw new InputError(this.path, `cannot read TIFF page ${k}: its directory offset ${offset} is outside the file (${this.size} bytes): truncated or corrupt`);
      }
      if (seen.has(offset)) throw new InputError(this.path, `corrupt TIFF: page ${k} points back to an earlier page (directory loop)`);
      seen.add(offset);
      const ifd = this.directory(offset, k);
      out.push(ifd);
      offset = ifd.next;
    }
    return out;
  }

  private directory(offset: number, k: number): Ifd {
    const countSize = this.bigTiff ? 8 : 2;
    const entrySize = this.bigTiff ? 20 : 12;
    const valueSize = this.bigTiff ? 8 : 4;
    if (offset + countSize > this.size) throw new InputError(this.path, `cannot read TIFF page ${k}: its directory at byte ${offset} is cut off by the end of the file: truncated`);
    const n = this.uint(this.bytes(offset, countSize, k), 0, countSize);
    const length = n * entrySize + valueSize;
    if (offset + countSize + length > this.size) {
      throw new InputError(this.path, `cannot read TIFF page ${k}: its directory of ${n} entries at byte ${offset} runs past the end of the file (${this.size} bytes): truncated or corrupt`);
    }
    const b = this.bytes(offset + countSize, length, k);
    const entries = new Map<number, Entry>();
    for (let i = 0; i < n; i++) {
      const e = i * entrySize;
      const tag = this.uint(b, e, 2);
      const type = this.uint(b, e + 2, 2);
      const count = this.uint(b, e + 4, this.bigTiff ? 8 : 4);
      const size = TYPE_SIZE[type];
      if (size === undefined) continue; // unknown types are skipped, as the TIFF spec asks
      const inline = count * size <= valueSize;
      const fieldAt = offset + countSize + e + (this.bigTiff ? 12 : 8);
      const at = inline ? fieldAt : this.uint(b, e + (this.bigTiff ? 12 : 8), valueSize);
      entries.set(tag, { type, count, at });
    }
    const next = this.uint(b, n * entrySize, valueSize);
    return new Ifd(this, k, offset, entries, next);
  }

  /** The values of an entry as numbers (rationals as quotients). */
  values(e: Entry, page: number, tag: number): number[] {
    const size = TYPE_SIZE[e.type];
    if (e.count * size > this.size) {
      throw new InputError(this.path, `cannot read TIFF page ${page}: tag ${tag} claims ${e.count} values, more than the file holds: corrupt`);
    }
    const b = this.bytes(e.at, e.count * size, page);
    const le = this.littleEndian;
    const out = new Array<number>(e.count);
    for (let i = 0; i < e.count; i++) {
      const at = i * size;
      switch (e.type) {
        case 6: out[i] = b.readInt8(at); break;
        case 8: out[i] = le ? b.readInt16LE(at) : b.readInt16BE(at); break;
        case 9: out[i] = le ? b.readInt32LE(at) : b.readInt32BE(at); break;
        case 5: out[i] = this.uint(b, at, 4) / this.uint(b, at + 4, 4); break;
        case 10: out[i] = (le ? b.readInt32LE(at) : b.readInt32BE(at)) / (le ? b.readInt32LE(at + 4) : b.readInt32BE(at + 4)); break;
        case 11: out[i] = le ? b.readFloatLE(at) : b.readFloatBE(at); break;
        case 12: out[i] = le ? b.readDoubleLE(at) : b.readDoubleBE(at); break;
        case 17: out[i] = Number(le ? b.readBigInt64LE(at) : b.readBigInt64BE(at)); break;
        default: out[i] = this.uint(b, at, size);
      }
    }
    return out;
  }
}

function readAt(path: string, fd: number, into: Buffer, position: number, what: string): void {
  for (let done = 0; done < into.length; ) {
    let n: number;
    try {
      n = fs.readSync(fd, into, done, into.length - done, position + done);
    } catch (e) {
      throw new InputError(path, `cannot read ${what}: ${(e as Error).message}`);
    }
    if (n === 0) throw new InputError(path, `cannot read ${what}: the file ended at byte ${position + done}: truncated`);
    done += n;
  }
}
