/**
 * Standard base64 (RFC 4648 alphabet, '=' padding: the text Buffer.toString('base64')
 * gives) written into a byte array the caller reuses, so that encoding a map's chunks for
 * report.html creates no string per chunk (each would be garbage V8 collects only when it
 * decides to, which on a large map is tens of MiB of resident size).
 */
import fs from 'node:fs';

const ALPHABET = new TextEncoder().encode('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
const PAD = 0x3d; // '='

/** Bytes the base64 text of `n` bytes takes. */
export function base64Length(n: number): number {
  return 4 * Math.ceil(n / 3);
}

/** Writes the base64 text of `src` into `dst` from `at`; returns the index after it. */
export function base64Into(src: Uint8Array, dst: Uint8Array, at: number): number {
  if (dst.length - at < base64Length(src.length)) throw new RangeError(`base64Into: ${dst.length - at} bytes of room for ${base64Length(src.length)}`);
  const n = src.length - (src.length % 3);
  let o = at;
  for (let i = 0; i < n; i += 3) {
    const v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2];
    dst[o++] = ALPHABET[v >>> 18];
    dst[o++] = ALPHABET[(v >>> 12) & 63];
    dst[o++] = ALPHABET[(v >>> 6) & 63];
    dst[o++] = ALPHABET[v & 63];
  }
  const rest = src.length - n;
  if (rest > 0) {
    const v = (src[n] << 16) | (rest === 2 ? src[n + 1] << 8 : 0);
    dst[o++] = ALPHABET[v >>> 18];
    dst[o++] = ALPHABET[(v >>> 12) & 63];
    dst[o++] = rest === 2 ? ALPHABET[(v >>> 6) & 63] : PAD;
    dst[o++] = PAD;
  }
  return o;
}

/**
 * Writes script files of the form `<prefix><base64 of bytes>");\n` (the report's map and
 * spectrum chunks), each built in one buffer this writer keeps and grows, so a file costs no
 * string of its payload.
 */
export class Base64ScriptWriter {
  private line: Buffer | null = null;
  private readonly suffix = Buffer.from('");\n', 'latin1');

  write(file: string, prefix: string, bytes: Uint8Array): void {
    const head = Buffer.from(prefix, 'utf8');
    const size = head.length + base64Length(bytes.length) + this.suffix.length;
    if (!this.line || this.line.length < size) this.line = Buffer.allocUnsafe(size);
    head.copy(this.line, 0);
    let at = base64Into(bytes, this.line, head.length);
    at += this.suffix.copy(this.line, at);
    fs.writeFileSync(file, this.line.subarray(0, at));
  }
}
