/**
 * Transmitted counts to absorbance, tile by tile: A = -ln((I - D) / (F - D)) with flat F
 * and dark D stacks of the same shape (D = 0 without a dark). A non-positive ratio (or
 * non-finite counts) masks the pixel at that energy only (NaN), and is counted; the
 * kernels skip NaN points. The conversion runs on worker threads (transmission.ts); this
 * thread only reads the three stacks. Where every stack can hand over its values as stored
 * (rawType: .npy uint8/uint16/int16, all exact in float32) the bytes go from the
 * files straight into shared memory and the integer-to-float conversion happens on the
 * workers too, in the same arithmetic (so the same floats). Where every stack is a plain
 * file the workers read by position (rawFile: .npy), the workers read the counts themselves,
 * straight into the conversion kernel's memory, and write the absorbance into the tile when
 * the tile is in shared memory: this thread then neither reads nor copies.
 */
import { checkRowRequest, rawSize, sharedRaw, type RawArray, type StackSource } from './source.js';
import { InputError } from '../io/errors.js';
import { TransmissionThreads, type Counts, type RawFile } from './transmission.js';
import { isShared, sharedFloat32 } from '../cpu/threads.js';

/** One set of shared buffers: counts I, F, D as read, and the absorbance O (I itself unless raw). */
interface CountSet { n: number; I: Counts; F: Counts; D: Counts | null; O: Float32Array }

export class AbsorbanceStack implements StackSource {
  readonly dtype: string;
  readonly nE: number;
  readonly height: number;
  readonly width: number;
  /** Pixel-energy points masked because the transmission was not positive. */
  maskedPoints = 0;
  /** Two sets of shared buffers (sample, flat, dark): one converting, one being read ahead. */
  private sets: CountSet[] = [];
  /** Every stack delivers raw values (readRowsRaw). */
  private readonly raw: boolean;
  private which = 0;
  /** The tile read ahead (rows y0..y0+rows into sets[1 - which]), if any. */
  private ahead: { y0: number; rows: number } | null = null;
  private readonly threads: TransmissionThreads;
  /** The three stacks as files the workers read themselves, or null. */
  private readonly files: [RawFile, RawFile, RawFile | null] | null;
  /** File mode, a tile not in shared memory: the workers' output, copied into the tile. */
  private scratch: Float32Array | null = null;

  /** `threads`: worker threads for the conversion (default: every core). */
  constructor(private sample: StackSource, private flat: StackSource, private dark: StackSource | null, threads?: number) {
    this.threads = new TransmissionThreads(threads);
    for (const other of [flat, dark]) {
      if (!other) continue;
      if (other.nE !== sample.nE || other.height !== sample.height || other.width !== sample.width) {
        throw new InputError(other.path, `shape (${other.nE},${other.height},${other.width}) differs from the stack ${sample.path} (${sample.nE},${sample.height},${sample.width})`);
      }
    }
    this.dtype = `absorbance from ${sample.dtype} counts`;
    this.raw = [sample, flat, dark].every((x) => !x || (x.rawType !== undefined && typeof x.readRowsRaw === 'function'));
    this.nE = sample.nE;
    this.height = sample.height;
    this.width = sample.width;
    const rf = (x: StackSource | null) => (x && typeof x.rawFile === 'function' ? x.rawFile() : undefined);
    const [fs, ff, fd] = [rf(sample), rf(flat), rf(dark)];
    this.files = fs && ff && (!dark || fd) ? [fs, ff, fd ?? null] : null;
  }

  get path(): string {
    return this.sample.path;
  }

  private set(k: number, n: number): CountSet {
    const cur = this.sets[k];
    if (cur && cur.n >= n) return cur;
    const mk = (src: StackSource): Counts => (this.raw ? sharedRaw(src.rawType!, n) : sharedFloat32(n));
    const I = mk(this.sample);
    const s: CountSet = { n, I, F: mk(this.flat), D: this.dark ? mk(this.dark) : null, O: this.raw ? sharedFloat32(n) : (I as Float32Array) };
    this.sets[k] = s;
    return s;
  }

  private async readRaw(k: number, y0: number, rows: number): Promise<void> {
    const n = this.nE * rows * this.width;
    const s = this.set(k, n);
    if (this.raw) {
      await this.sample.readRowsRaw!(y0, rows, s.I.subarray(0, n) as RawArray);
      await this.flat.readRowsRaw!(y0, rows, s.F.subarray(0, n) as RawArray);
      if (this.dark) await this.dark.readRowsRaw!(y0, rows, s.D!.subarray(0, n) as RawArray);
      return;
    }
    await this.sample.readRows(y0, rows, s.I.subarray(0, n) as Float32Array);
    await this.flat.readRows(y0, rows, s.F.subarray(0, n) as Float32Array);
    if (this.dark) await this.dark.readRows(y0, rows, s.D!.subarray(0, n) as Float32Array);
  }

  /**
   * Reads the three stacks' rows into shared buffers, hands the conversion to the worker
   * threads and, while they work, reads the next tile of the same height ahead (tiles are
   * read in order by every runner), so file reading overlaps the conversion.
   */
  async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
    const n = this.nE * rows * this.width;
    if (this.files && this.threads.threaded(n)) return this.readFromFiles(y0, rows, out, n);
    if (this.ahead && this.ahead.y0 === y0 && this.ahead.rows === rows) this.which = 1 - this.which;
    else await this.readRaw(this.which, y0, rows);
    this.ahead = null;
    const s = this.set(this.which, n);
    const I = s.I.subarray(0, n), F = s.F.subarray(0, n), D = s.D ? s.D.subarray(0, n) : null, O = s.O.subarray(0, n);
    const converting = this.threads.run(n, (a, b) => ({ kind: 'absorbance', sample: I, flat: F, dark: D, out: O, a, b }));
    const next = y0 + rows;
    if (this.threads.threaded(n) && next < this.height) {
      const r = Math.min(rows, this.height - next);
      try {
        await this.readRaw(1 - this.which, next, r);
        this.ahead = { y0: next, rows: r };
      } catch (e) {
        await converting.catch(() => undefined);
        throw e;
      }
    }
    this.maskedPoints += await converting;
    out.set(O);
  }

  /** File mode: the workers read and convert ranges of the tile, into it if it is shared. */
  private async readFromFiles(y0: number, rows: number, out: Float32Array, n: number): Promise<void> {
    checkRowRequest(this, y0, rows, out);
    let into = out;
    if (!isShared(out)) {
      if (!this.scratch || this.scratch.length < n) this.scratch = sharedFloat32(n);
      into = this.scratch;
    }
    const files = this.files!;
    const got = await this.threads.run(n, (a, b) => ({ kind: 'absorbance-file', files, height: this.height, W: this.width, y0, rows, out: into, a, b }));
    if (got < 0) {
      const which = [this.sample, this.flat, this.dark][-got - 1]!;
      throw new InputError(which.path, `cannot read rows ${y0}..${y0 + rows - 1} (file changed or unreadable while reading)`);
    }
    this.maskedPoints += got;
    if (into !== out) out.set(into.subarray(0, n));
  }

  /** Host bytes per pixel this wrapper adds to a tile (flat and dark buffers). */
  extraBytesPerPixel(): number {
    // File mode: at most one float32 scratch tile (when the tile is not in shared memory).
    if (this.files) return 4 * this.nE;
    // Two sets (converting, read ahead) of sample, flat and dark (as read), plus the float32
    // absorbance of each set where the counts are raw integers.
    const size = (x: StackSource | null) => (!x ? 0 : this.raw ? rawSize(x.rawType!) : 4);
    return 2 * this.nE * (size(this.sample) + size(this.flat) + size(this.dark) + (this.raw ? 4 : 0));
  }

  close(): void {
    void this.threads.close();
    this.sample.close();
    this.flat.close();
    this.dark?.close();
  }
}
