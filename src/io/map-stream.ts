/**
 * A step's maps written to disk as the tiles come (src/pipeline/run-tiles.ts MapSink), so a
 * run does not hold every whole-image map in memory: each tile's rows go straight into the
 * map's .npy at their offset. When the run has finished, each map's .tif is written from its
 * .npy one map at a time, then status.npy. The files are the bytes OutputDir.writeStepMaps
 * writes for the same maps.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { OutputDir } from './outdir.js';
import { littleEndianBytes, npyHeader } from './npy.js';
import type { MapSink } from '../pipeline/run-tiles.js';

/** A file-system error carrying the file it is about (for the one-line output error). */
function withPath(e: unknown, file: string): unknown {
  if (e && typeof e === 'object' && !(e as NodeJS.ErrnoException).path) (e as NodeJS.ErrnoException).path = file;
  return e;
}

export class StepMapStream implements MapSink {
  private files: { name: string; file: string; fd: number; dataAt: number }[] = [];

  constructor(
    private out: OutputDir,
    private names: readonly string[],
    private height: number,
    private width: number,
    private sub = '',
  ) {
    if (sub) fs.mkdirSync(out.file(sub), { recursive: true });
    try {
      for (const name of names) {
        const file = out.file(path.join(sub, `${name}.npy`));
        const header = npyHeader('float32', [height, width]);
        const fd = fs.openSync(file, 'w');
        this.files.push({ name, file, fd, dataAt: header.length });
        writeAll(fd, header, 0, file);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  rows(y0: number, rows: number, maps: Record<string, Float32Array>): void {
    for (const f of this.files) {
      const m = maps[f.name];
      if (m.length !== rows * this.width) throw new RangeError(`map ${f.name}: ${m.length} values for ${rows} rows of ${this.width}`);
      writeAll(f.fd, littleEndianBytes(m), f.dataAt + y0 * this.width * 4, f.file);
    }
  }

  /**
   * Closes the .npy files, then writes each map's .tif from its .npy, one map and one block
   * of rows at a time (OutputDir.writeMapFromNpy: the .tif with ImageJ metadata, the .npy in
   * the recorded volume shape: the bytes writeStepMaps writes), and status.npy. Call after
   * recordInput.
   */
  finish(status: Uint8Array, statusNames?: readonly string[]): void {
    this.close();
    for (const name of this.names) {
      // Read back in blocks of rows: no map is held whole.
      this.out.writeMapFromNpy(path.join(this.sub, name), this.height, this.width);
    }
    this.out.writeStepMaps([], {}, status, this.height, this.width, this.sub, statusNames);
  }

  /** Closes the files (a failed run: the output folder is removed anyway). */
  close(): void {
    for (const f of this.files) {
      if (f.fd >= 0) fs.closeSync(f.fd);
      f.fd = -1;
    }
  }
}

function writeAll(fd: number, bytes: Uint8Array, position: number, file: string): void {
  try {
    for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
  } catch (e) {
    throw withPath(e, file);
  }
}
