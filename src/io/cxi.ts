/**
 * CXI ptychography reconstructions (HDF5, the Coherent X-ray Imaging format): the complex
 * transmission T of the object, /entry_1/image_1/data, as [H,W] (one file per energy: a
 * glob, a comma list) or [E,H,W] (one file with a stack), complex64/128 (h5py's compound
 * {r, i}). Two stacks come from it:
 *   absorption  -ln|T|           (file.cxi or file.cxi#absorption; the default)
 *   phase       arg T = atan2(Im T, Re T), in radians, wrapped as the file gives it
 *               (file.cxi#phase): the stack the fit issue's composition maps take.
 * Energies from /entry_1/instrument_1/source_1/energy (J per CXI, or its @units), pixel size
 * from /entry_1/image_1/x_pixel_size and y_pixel_size (m) when present. |T| <= 0 or a
 * non-finite value is NaN (the kernels skip NaN points).
 */
import fs from 'node:fs';
import { globSync } from 'tinyglobby';
import { InputError } from './errors.js';
import { H5File, hdf5Message, describeType } from './hdf5.js';
import { energyFactor, lengthFactor } from './units.js';
import { checkRowRequest, type StackSource, type StackLayout } from '../stack/source.js';

const DATA_PATHS = ['/entry_1/image_1/data', '/entry_1/data_1/data'];
const ENERGY_PATH = '/entry_1/instrument_1/source_1/energy';
/** Complex slices come back from h5wasm as JS arrays of [re, im]: read them in small blocks. */
const CXI_SLICE_VALUES = 1 << 17;

export type CxiPart = 'absorption' | 'phase';

interface Item {
  file: H5File;
  ds: import('h5wasm/node').Dataset;
  /** Index along the first axis of a stacked dataset, or -1 for a 2-D image. */
  index: number;
}

export function isCxiSpec(spec: string): boolean {
  return /\.cxi(#(absorption|phase))?$/i.test(spec) || /\.cxi(,|#(absorption|phase),)/i.test(spec);
}

export class CxiStack implements StackSource {
  readonly nE: number;
  energies?: Float64Array;
  pixelSizeUm?: { x: number; y: number };
  layout?: StackLayout;
  private closed = false;

  constructor(readonly path: string, private items: Item[], readonly height: number, readonly width: number, readonly part: CxiPart) {
    this.nE = items.length;
  }

  get dtype(): string {
    return `CXI complex (${this.part === 'phase' ? 'phase arg T, rad' : 'absorption -ln|T|'})`;
  }

  async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
    checkRowRequest(this, y0, rows, out);
    const W = this.width;
    const n = rows * W;
    const rb = Math.max(1, Math.floor(CXI_SLICE_VALUES / W));
    for (let e = 0; e < this.nE; e++) {
      const it = this.items[e];
      for (let r0 = 0; r0 < rows; r0 += rb) {
        const r1 = Math.min(rows, r0 + rb);
        const ranges: [number, number][] = it.index >= 0 ? [[it.index, it.index + 1], [y0 + r0, y0 + r1], [0, W]] : [[y0 + r0, y0 + r1], [0, W]];
        let v: unknown;
        try {
          v = it.ds.slice(ranges);
        } catch (err) {
          throw new InputError(it.file.path, hdf5Message(err));
        }
        const pairs = v as [number, number][];
        if (!Array.isArray(pairs) || pairs.length !== (r1 - r0) * W) throw new InputError(it.file.path, 'a read of the reconstruction returned no data (damaged file?)');
        const o = e * n + r0 * W;
        for (let i = 0; i < pairs.length; i++) {
          const [re, im] = pairs[i];
          let x: number;
          if (this.part === 'phase') x = Math.atan2(im, re);
          else {
            const a = Math.hypot(re, im);
            x = a > 0 ? -Math.log(a) : NaN;
          }
          out[o + i] = Number.isFinite(x) ? x : NaN;
        }
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const i of this.items) i.file.release();
  }
}

function dataOf(f: H5File): { ds: import('h5wasm/node').Dataset; path: string } {
  for (const p of DATA_PATHS) {
    const ds = f.dataset(p);
    if (ds) return { ds, path: p };
  }
  throw new InputError(f.path, `no reconstruction: none of ${DATA_PATHS.join(', ')} in this CXI file`);
}

function isComplex(meta: { type: number; compound_type?: { members: { name: string; type: number }[] } }): boolean {
  const m = meta.compound_type?.members ?? [];
  return meta.type === 6 && m.length === 2 && m[0].name === 'r' && m[1].name === 'i' && m.every((x) => x.type === 1);
}

function energiesOf(f: H5File, count: number): Float64Array | undefined {
  const d = f.dataset(ENERGY_PATH);
  if (!d) return undefined;
  const v = f.readVector(ENERGY_PATH, 1 << 20);
  const unit = f.attrString(d, 'units') ?? 'J';
  const k = energyFactor(unit, `${f.path}#${ENERGY_PATH}`);
  if (v.length !== count && !(v.length === 1 && count === 1)) {
    throw new InputError(`${f.path}#${ENERGY_PATH}`, `${v.length} energies, but the reconstruction has ${count} images`);
  }
  return Float64Array.from(v, (x) => x * k);
}

function pixelOf(f: H5File): { x: number; y: number } | undefined {
  const get = (name: string) => {
    const p = `/entry_1/image_1/${name}`;
    const d = f.dataset(p);
    if (!d) return undefined;
    const v = f.readVector(p, 4)[0];
    return v > 0 ? v * lengthFactor(f.attrString(d, 'units') ?? 'm', `${f.path}#${p}`) : undefined;
  };
  const x = get('x_pixel_size'), y = get('y_pixel_size');
  return x ? { x, y: y ?? x } : undefined;
}

/** Opens a CXI file (a stack) or a series of CXI files (one image each), as absorption or phase. */
export async function openCxi(spec: string): Promise<CxiStack> {
  const m = /#(absorption|phase)$/i.exec(spec);
  const part: CxiPart = m ? (m[1].toLowerCase() as CxiPart) : 'absorption';
  const base = m ? spec.slice(0, m.index) : spec;
  let files: string[];
  if (base.includes(',')) files = base.split(',').map((s) => s.trim()).filter((s) => s !== '');
  else if (/[*?[\]{}]/.test(base)) {
    files = globSync(base, { onlyFiles: true, expandDirectories: false }).filter((f) => /\.cxi$/i.test(f));
    if (files.length === 0) throw new InputError(base, 'no .cxi file matches');
  } else files = [base];
  const opened: H5File[] = [];
  try {
    const items: { item: Item; energy?: number; px?: { x: number; y: number } }[] = [];
    let H = -1, W = -1;
    for (const file of files) {
      if (!fs.existsSync(file)) throw new InputError(file, 'no such file');
      const f = await H5File.open(file);
      opened.push(f);
      const { ds, path } = dataOf(f);
      const meta = ds.metadata;
      if (!isComplex(meta)) throw new InputError(`${file}#${path}`, `is ${describeType(meta)}, not a complex reconstruction`);
      const shape = ds.shape ?? [];
      if (shape.length !== 2 && shape.length !== 3) throw new InputError(`${file}#${path}`, `expected [H,W] or [E,H,W], got shape [${shape.join(', ')}]`);
      const [h, w] = shape.slice(-2);
      if (H < 0) [H, W] = [h, w];
      else if (h !== H || w !== W) throw new InputError(file, `images are ${h}x${w}, those of ${files[0]} ${H}x${W}`);
      if (files.length > 1 && shape.length === 3) throw new InputError(file, 'a series of CXI files must hold one image each; give a file with a stack on its own');
      const nHere = shape.length === 3 ? shape[0] : 1;
      const e = energiesOf(f, nHere);
      const px = pixelOf(f);
      for (let k = 0; k < nHere; k++) {
        if (k > 0) opened.push(f.retain());
        items.push({ item: { file: f, ds, index: shape.length === 3 ? k : -1 }, energy: e?.[k], px });
      }
    }
    const withEnergy = items.every((i) => i.energy !== undefined);
    if (withEnergy && files.length > 1) items.sort((a, b) => a.energy! - b.energy!);
    const e = withEnergy ? Float64Array.from(items, (i) => i.energy!) : undefined;
    if (e) for (let i = 1; i < e.length; i++) if (!(e[i] > e[i - 1])) throw new InputError(spec, `energies not strictly increasing at image ${i + 1}: ${e[i]} eV after ${e[i - 1]} eV`);
    const s = new CxiStack(spec, items.map((i) => i.item), H, W, part);
    opened.length = 0; // the stack owns the files now (one reference per image)
    const datasets: Record<string, string> = { data: `${dataOf(items[0].item.file).path} (${part})` };
    if (e) {
      s.energies = e;
      datasets.energies = `${ENERGY_PATH} (J)`;
    }
    if (items[0].px) {
      s.pixelSizeUm = items[0].px;
      datasets.pixel_size = '/entry_1/image_1/x_pixel_size (m)';
    }
    s.layout = { format: 'hdf5', name: 'cxi', title: `CXI ptychography (${part})`, datasets, notes: [] };
    return s;
  } catch (e) {
    for (const f of opened) f.release();
    throw e;
  }
}
