/**
 * Incremental decoders for the bytes of one TIFF strip or tile: each hands out the
 * decompressed bytes in order, as many as asked, reading the compressed bytes from the file
 * a chunk at a time. Nothing is ever decompressed beyond what the caller asks for, so a
 * decompression bomb costs no more memory than a legitimate file of the declared size, and
 * a strip taller than a tile of rows is decoded once while tiles walk down it (the reader
 * keeps one decoder per page between tiles).
 *
 * Codecs: none (1), LZW (5, TIFF 6.0 section 13, MSB-first codes with the "early change"
 * of libtiff), Deflate (8 and the old 32946: zlib streams, inflated by Node's zlib as a
 * stream in paused mode, so it inflates only as far as its output is read; on the libuv
 * thread pool, so pages decode in parallel), PackBits (32773, TIFF 6.0 section 9). Predictors (2: horizontal differencing, 3: the
 * floating-point predictor of Adobe's TIFF Technical Note 3) are undone per row by the
 * reader, after decoding, as libtiff does.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import { InputError } from './errors.js';

export const COMPRESSION_NAMES: Record<number, string> = {
  1: 'none',
  2: 'CCITT modified Huffman',
  3: 'CCITT Group 3 fax',
  4: 'CCITT Group 4 fax',
  5: 'LZW',
  6: 'old-style JPEG',
  7: 'JPEG',
  8: 'Deflate',
  32773: 'PackBits',
  32946: 'Deflate',
  34887: 'LERC',
  34925: 'LZMA',
  50000: 'Zstandard',
  50001: 'WebP',
  50002: 'JPEG XL',
};

export const SUPPORTED_COMPRESSIONS = [1, 5, 8, 32946, 32773];

/** Compressed bytes read from the file at a time, per decoder. */
const INPUT_CHUNK = 64 * 1024;

/** Hands out the decoded bytes of one strip/tile, in order. */
export interface BlockDecoder {
  /** Fills `dst` completely with the next decoded bytes, or rejects with an InputError if the block ends first. */
  read(dst: Uint8Array): Promise<void>;
  /** Releases what the decoder holds (Deflate: its zlib stream). */
  close(): void;
}

/** Reads the compressed bytes [offset, offset + count) of the file in chunks. */
class Input {
  private pos = 0;
  constructor(
    private fd: number,
    private offset: number,
    readonly count: number,
    private path: string,
    private where: string,
  ) {}

  get done(): boolean {
    return this.pos >= this.count;
  }

  /** The next chunk (at most `max` bytes), or null at the end of the block. */
  next(max = INPUT_CHUNK): Uint8Array | null {
    if (this.pos >= this.count) return null;
    const n = Math.min(max, this.count - this.pos);
    const buf = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      let k: number;
      try {
        k = fs.readSync(this.fd, buf, got, n - got, this.offset + this.pos + got);
      } catch (e) {
        throw new InputError(this.path, `cannot read ${this.where}: ${(e as Error).message}`);
      }
      if (k === 0) throw new InputError(this.path, `cannot read ${this.where}: the file ended at byte ${this.offset + this.pos + got} (truncated while open?)`);
      got += k;
    }
    this.pos += n;
    return buf;
  }
}

function endedEarly(path: string, where: string, got: number, want: number): InputError {
  return new InputError(path, `${where}: the compressed data ends after ${got} of ${want} bytes: truncated or corrupt`);
}

/** Uncompressed bytes straight from the file. */
class RawDecoder implements BlockDecoder {
  private produced = 0;
  constructor(private input: Input, private path: string, private where: string, private total: number) {}

  close(): void {}

  async read(dst: Uint8Array): Promise<void> {
    for (let at = 0; at < dst.length; ) {
      const chunk = this.input.next(dst.length - at);
      if (!chunk) throw endedEarly(this.path, this.where, this.produced, this.total);
      dst.set(chunk, at);
      at += chunk.length;
      this.produced += chunk.length;
    }
  }
}

/**
 * Zlib streams through Node's zlib in paused mode: it inflates until its readable buffer
 * holds READ_AHEAD bytes, then waits for them to be read, so a decoder holds at most about
 * READ_AHEAD + 2 x INPUT_CHUNK bytes whatever the compression ratio.
 */
const READ_AHEAD = 256 * 1024;

class DeflateDecoder implements BlockDecoder {
  private z: zlib.Inflate;
  private head: Buffer | null = null;
  private headAt = 0;
  private failure: Error | null = null;
  private inputEnded = false;
  private produced = 0;

  constructor(private input: Input, private path: string, private where: string, private total: number) {
    this.z = zlib.createInflate({ chunkSize: 64 * 1024, readableHighWaterMark: READ_AHEAD } as zlib.ZlibOptions);
    this.z.on('error', (e) => {
      this.failure ??= e;
    });
  }

  close(): void {
    this.z.destroy();
  }

  /** The next piece of inflated output, or null at the end of the stream. */
  private async piece(got: number): Promise<Buffer | null> {
    for (;;) {
      if (this.failure) {
        const code = (this.failure as NodeJS.ErrnoException).code;
        if (code === 'Z_BUF_ERROR' || /unexpected end/i.test(this.failure.message)) throw endedEarly(this.path, this.where, got, this.total);
        throw new InputError(this.path, `${this.where}: damaged Deflate data (${this.failure.message})`);
      }
      const b = this.z.read() as Buffer | null;
      if (b) return b;
      if (this.z.readableEnded) return null;
      if (!this.inputEnded && this.z.writableLength < INPUT_CHUNK) {
        const chunk = this.input.next();
        if (chunk) this.z.write(chunk);
        else {
          this.inputEnded = true;
          this.z.end();
        }
        continue;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          this.z.off('readable', done);
          this.z.off('end', done);
          this.z.off('error', done);
          this.z.off('close', done);
          resolve();
        };
        this.z.on('readable', done);
        this.z.on('end', done);
        this.z.on('error', done);
        this.z.on('close', done);
      });
    }
  }

  async read(dst: Uint8Array): Promise<void> {
    let at = 0;
    while (at < dst.length) {
      if (!this.head || this.headAt === this.head.length) {
        this.head = await this.piece(this.produced + at);
        this.headAt = 0;
        if (!this.head) throw endedEarly(this.path, this.where, this.produced + at, this.total);
        continue;
      }
      const k = Math.min(this.head.length - this.headAt, dst.length - at);
      dst.set(this.head.subarray(this.headAt, this.headAt + k), at);
      this.headAt += k;
      at += k;
    }
    this.produced += dst.length;
  }
}

/** PackBits (TIFF 6.0 section 9): a header byte n, then n+1 literal bytes or one byte repeated 1-n+1 times. */
class PackBitsDecoder implements BlockDecoder {
  private buf: Uint8Array = new Uint8Array(0);
  private i = 0;
  /** An unfinished run: `runLeft` copies of `runByte`, or `litLeft` literal bytes. */
  private runLeft = 0;
  private runByte = 0;
  private litLeft = 0;
  private produced = 0;

  constructor(private input: Input, private path: string, private where: string, private total: number) {}

  close(): void {}

  private byte(at: number): number {
    if (this.i >= this.buf.length) {
      const next = this.input.next();
      if (!next) throw endedEarly(this.path, this.where, this.produced + at, this.total);
      this.buf = next;
      this.i = 0;
    }
    return this.buf[this.i++];
  }

  async read(dst: Uint8Array): Promise<void> {
    let at = 0;
    while (at < dst.length) {
      if (this.runLeft > 0) {
        const k = Math.min(this.runLeft, dst.length - at);
        dst.fill(this.runByte, at, at + k);
        at += k;
        this.runLeft -= k;
      } else if (this.litLeft > 0) {
        dst[at] = this.byte(at);
        at++;
        this.litLeft--;
      } else {
        const h = this.byte(at);
        const n = h > 127 ? h - 256 : h;
        if (n >= 0) this.litLeft = n + 1;
        else if (n !== -128) {
          this.runByte = this.byte(at);
          this.runLeft = 1 - n;
        } // -128: no operation
      }
    }
    this.produced += dst.length;
  }
}

const LZW_CLEAR = 256;
const LZW_EOI = 257;

/**
 * TIFF LZW: codes of 9 to 12 bits, most significant bit first; the code width grows one
 * code early (at 511, 1023, 2047: libtiff's "early change", which every TIFF LZW writer uses).
 */
class LzwDecoder implements BlockDecoder {
  private prefix = new Int16Array(4096);
  private suffix = new Uint8Array(4096);
  private first = new Uint8Array(4096);
  private length = new Uint16Array(4096);
  private next = 258;
  private width = 9;
  private old = -1;
  private bitBuf = 0;
  private bitCount = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private i = 0;
  private ended = false;
  /** Bytes of the last string not yet handed out. */
  private out = new Uint8Array(4096);
  private outStart = 0;
  private outEnd = 0;
  private produced = 0;

  constructor(private input: Input, private path: string, private where: string, private total: number) {
    for (let c = 0; c < 256; c++) {
      this.prefix[c] = -1;
      this.suffix[c] = c;
      this.first[c] = c;
      this.length[c] = 1;
    }
  }

  private code(): number {
    while (this.bitCount < this.width) {
      if (this.i >= this.buf.length) {
        const next = this.input.next();
        if (!next) return LZW_EOI; // ran out without an EOI code: treated as the end
        this.buf = next;
        this.i = 0;
      }
      this.bitBuf = ((this.bitBuf << 8) | this.buf[this.i++]) >>> 0;
      this.bitCount += 8;
    }
    this.bitCount -= this.width;
    const c = (this.bitBuf >>> this.bitCount) & ((1 << this.width) - 1);
    this.bitBuf &= (1 << this.bitCount) - 1;
    return c;
  }

  /** Writes the string of `c` into this.out. */
  private emit(c: number): void {
    let n = this.length[c];
    this.outStart = 0;
    this.outEnd = n;
    while (c >= 0) {
      this.out[--n] = this.suffix[c];
      c = this.prefix[c];
    }
  }

  close(): void {}

  private corrupt(why: string): InputError {
    return new InputError(this.path, `${this.where}: damaged LZW data (${why})`);
  }

  async read(dst: Uint8Array): Promise<void> {
    let at = 0;
    while (at < dst.length) {
      if (this.outStart < this.outEnd) {
        const k = Math.min(this.outEnd - this.outStart, dst.length - at);
        dst.set(this.out.subarray(this.outStart, this.outStart + k), at);
        this.outStart += k;
        at += k;
        continue;
      }
      if (this.ended) throw endedEarly(this.path, this.where, this.produced + at, this.total);
      const c = this.code();
      if (c === LZW_EOI) {
        this.ended = true;
        continue;
      }
      if (c === LZW_CLEAR) {
        this.next = 258;
        this.width = 9;
        this.old = -1;
        continue;
      }
      if (this.old < 0) {
        if (c > 255) throw this.corrupt(`code ${c} right after a clear code`);
        this.emit(c);
        this.old = c;
        continue;
      }
      if (c > this.next) throw this.corrupt(`code ${c} before it was defined`);
      if (this.next >= 4096) throw this.corrupt('the code table overflowed without a clear code');
      // New entry: old string + first byte of the current one (or of old, for the KwKwK case).
      const firstByte = c < this.next ? this.first[c] : this.first[this.old];
      const e = this.next++;
      this.prefix[e] = this.old;
      this.suffix[e] = firstByte;
      this.first[e] = this.first[this.old];
      this.length[e] = this.length[this.old] + 1;
      this.emit(c);
      this.old = c;
      if (this.next + 1 >= 1 << this.width && this.width < 12) this.width++;
    }
    this.produced += dst.length;
  }
}

/** A decoder for the block of `count` compressed bytes at `offset` that decodes to `total` bytes. */
export function blockDecoder(
  compression: number,
  fd: number,
  offset: number,
  count: number,
  total: number,
  path: string,
  where: string,
): BlockDecoder {
  const input = new Input(fd, offset, count, path, where);
  switch (compression) {
    case 1:
      return new RawDecoder(input, path, where, total);
    case 5:
      return new LzwDecoder(input, path, where, total);
    case 8:
    case 32946:
      return new DeflateDecoder(input, path, where, total);
    case 32773:
      return new PackBitsDecoder(input, path, where, total);
    default:
      throw new InputError(path, `${where}: unsupported compression ${COMPRESSION_NAMES[compression] ?? compression}`);
  }
}
