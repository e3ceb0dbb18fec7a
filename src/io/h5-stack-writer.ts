/**
 * An aligned stack as HDF5 (NeXus), written piece by piece with h5wasm's hyperslab writes,
 * so a stack larger than memory never sits in the process (each write is at most
 * SLICE_BYTES of the WebAssembly heap, which grows but never shrinks).
 *
 *   /entry        NXentry  @default=data
 *   /entry/data   NXdata   @signal=data @axes=[energy, y, x]
 *     data        float32 [E, H, W], chunks [1, rows, W], @units (as the stack), NaN outside the field
 *     energy      float64 [E] @units eV
 *     y, x        pixel indices (@units pixel)
 */
import { h5wasm, SLICE_BYTES } from './hdf5.js';
import { InputError } from './errors.js';

type File = import('h5wasm/node').File;
type Dataset = import('h5wasm/node').Dataset;

export class H5StackWriter {
  private constructor(private file: File, private ds: Dataset, readonly path: string, readonly nE: number, readonly height: number, readonly width: number) {}

  static async create(path: string, energies: Float64Array, height: number, width: number, what: string): Promise<H5StackWriter> {
    const h5 = await h5wasm();
    const nE = energies.length;
    let file: File;
    try {
      file = new h5.File(path, 'w');
    } catch (e) {
      throw new InputError(path, `cannot write: ${(e as Error).message}`);
    }
    const str = (o: { create_attribute(n: string, v: string | string[]): void }, n: string, v: string | string[]) => o.create_attribute(n, v);
    str(file, 'NX_class', 'NXroot');
    str(file, 'default', 'entry');
    const entry = file.create_group('entry');
    str(entry, 'NX_class', 'NXentry');
    str(entry, 'default', 'data');
    entry.create_dataset({ name: 'title', data: what });
    const g = entry.create_group('data');
    str(g, 'NX_class', 'NXdata');
    str(g, 'signal', 'data');
    str(g, 'axes', ['energy', 'y', 'x']);
    for (const [i, a] of ['energy', 'y', 'x'].entries()) g.create_attribute(`${a}_indices`, i, null, '<i8');
    const rows = Math.max(1, Math.min(height, Math.floor((1 << 20) / (4 * width))));
    // Created with one image and grown to E images: h5wasm needs data to create a dataset.
    const ds = g.create_dataset({ name: 'data', data: new Float32Array(rows * width), shape: [1, rows, width], maxshape: [nE, height, width], chunks: [1, rows, width], dtype: '<f4' });
    ds.resize([nE, height, width]);
    str(ds, 'long_name', 'aligned stack (NaN where the field left the frame)');
    const e = g.create_dataset({ name: 'energy', data: Float64Array.from(energies), shape: [nE], dtype: '<d' });
    str(e, 'units', 'eV');
    for (const [a, n] of [['y', height], ['x', width]] as const) {
      const d = g.create_dataset({ name: a, data: Float64Array.from({ length: n }, (_, k) => k), shape: [n], dtype: '<d' });
      str(d, 'units', 'pixel');
    }
    return new H5StackWriter(file, ds, path, nE, height, width);
  }

  /** Rows [y0, y0 + rows) of energy e from `data` ([rows][width]), in slices of at most SLICE_BYTES. */
  private writeBlock(e: number, y0: number, rows: number, data: Float32Array): void {
    const step = Math.max(1, Math.floor(SLICE_BYTES / (4 * this.width)));
    for (let r = 0; r < rows; r += step) {
      const n = Math.min(step, rows - r);
      this.ds.write_slice([[e, e + 1], [y0 + r, y0 + r + n], [0, this.width]], data.subarray(r * this.width, (r + n) * this.width));
    }
  }

  writeImage(e: number, img: Float32Array): void {
    this.writeBlock(e, 0, this.height, img);
  }

  /** A tile of rows [y0, y0 + rows) at every energy, energy-major. */
  writeRows(y0: number, rows: number, tile: Float32Array): void {
    const n = rows * this.width;
    for (let e = 0; e < this.nE; e++) this.writeBlock(e, y0, rows, tile.subarray(e * n, (e + 1) * n));
  }

  close(): void {
    this.file.close();
  }
}
