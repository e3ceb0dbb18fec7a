/**
 * A float32 .npy [E, H, W] written piece by piece (whole images, or row tiles across every
 * energy), so a stack larger than memory can be written as it is produced.
 */
import fs from 'node:fs';
import { InputError } from './errors.js';
import { writeNpy } from './npy.js';

export class NpyStackWriter {
  private fd: number;
  private readonly dataOffset: number;

  constructor(readonly path: string, readonly nE: number, readonly height: number, readonly width: number) {
    // The header exactly as writeNpy makes it (an empty array of this shape has it).
    writeNpy(path, new Float32Array(0), [0, height, width]);
    const empty = fs.readFileSync(path);
    const header = Buffer.from(empty.toString('latin1').replace(`(0, ${height}, ${width})`, `(${nE}, ${height}, ${width})`), 'latin1');
    // Re-pad to a multiple of 64 bytes (the shape string grew).
    const dictLen = header.readUInt16LE(8);
    let dict = header.subarray(10, 10 + dictLen).toString('latin1').trimEnd();
    const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
    dict = dict.padEnd(total - 10 - 1, ' ') + '\n';
    const h = Buffer.alloc(10 + dict.length);
    header.copy(h, 0, 0, 8);
    h.writeUInt16LE(dict.length, 8);
    h.write(dict, 10, 'latin1');
    try {
      this.fd = fs.openSync(path, 'w');
      fs.writeSync(this.fd, h, 0, h.length, 0);
      fs.ftruncateSync(this.fd, h.length + 4 * nE * height * width);
    } catch (e) {
      throw new InputError(path, `cannot write: ${(e as Error).message}`);
    }
    this.dataOffset = h.length;
  }

  private write(data: Float32Array, element: number): void {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('big-endian hosts are not supported');
    for (let done = 0; done < bytes.length; ) done += fs.writeSync(this.fd, bytes, done, bytes.length - done, this.dataOffset + 4 * element + done);
  }

  writeImage(e: number, img: Float32Array): void {
    this.write(img.subarray(0, this.height * this.width), e * this.height * this.width);
  }

  /** A tile of rows [y0, y0 + rows) at every energy, energy-major. */
  writeRows(y0: number, rows: number, tile: Float32Array): void {
    const n = rows * this.width;
    for (let e = 0; e < this.nE; e++) this.write(tile.subarray(e * n, (e + 1) * n), e * this.height * this.width + y0 * this.width);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
