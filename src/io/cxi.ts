/**
 * CXI ptychography reconstructions (HDF5, the Coherent X-ray Imaging format, cxidb.org): the
 * object of a reconstruction as [H,W] (one file per energy: a glob, a comma list) or [E,H,W]
 * (one file with a stack). Two stacks come from it, in the amplitude convention:
 *   absorption  -ln|T|           (file.cxi or file.cxi#absorption; the default)
 *   phase       arg T = atan2(Im T, Re T), in radians, wrapped as the file gives it
 *               (file.cxi#phase): the stack the fit issue's composition maps take.
 *
 * What is read, and how (recorded in summary.json's read.layout):
 *  - the data: the first of /entry_last/result_1/data, /entry_last/image_1/data (PyNX writes
 *    its object to /entry_N/result_1/data, an [L,H,W] virtual dataset of object layers, with
 *    /entry_last pointing at the newest entry), /entry_1/image_1/data (the CXI Image class),
 *    /entry_1/result_1/data, /entry_1/data_1/data. An [1,H,W] object is one image; an object
 *    of several layers (multislice, PyNX "Object-layer01") is refused.
 *  - what the values are: the group's data_type (a dataset, as CXI 1.6 and PyNX write it, or
 *    an attribute of the data or the group). Complex data is the transmission T (PyNX writes
 *    data_type "electron density" for it). Real data must say what it is:
 *      amplitude | transmission | modulus   |T|:          absorption -ln|T|, no phase
 *      intensity                            |T|^2:        absorption -ln(I)/2, no phase
 *      optical density                      -ln|T|^2:     absorption OD/2 (the STXM OD is twice -ln|T|)
 *      absorption                           -ln|T|:       as stored
 *      phase                                arg T, rad:   the phase stack, no absorption
 *  - data_space: "real" (or absent) is read; "diffraction" (detector frames) is refused.
 *  - is_fft_shifted: 1 means the stored image has its origin at the corner (index 0,0);
 *    the image is shifted back to the centred view (numpy fftshift over y and x), as PyNX
 *    does for its frames ("iobs_is_fft_shifted").
 *  - energies from /entry_N/instrument_1/source_1/energy (J per CXI, or its @units), pixel
 *    size from x_pixel_size / y_pixel_size (m) beside the data or in image_1 / result_1.
 * |T| <= 0 or a non-finite value is NaN (the kernels skip NaN points).
 */
import fs from 'node:fs';
import path from 'node:path';
import { globSync } from 'tinyglobby';
import { InputError } from './errors.js';
import { H5File, hdf5Message, describeType, numericDtype } from './hdf5.js';
import { energyFactor, lengthFactor } from './units.js';
import { checkRowRequest, type StackSource, type StackLayout } from '../stack/source.js';

const DATA_PATHS = ['/entry_last/result_1/data', '/entry_last/image_1/data', '/entry_1/image_1/data', '/entry_1/result_1/data', '/entry_1/data_1/data'];
/** Complex slices come back from h5wasm as JS arrays of [re, im]: read them in small blocks. */
const CXI_SLICE_VALUES = 1 << 17;

export type CxiPart = 'absorption' | 'phase';

/** What the stored values are (from data_type; complex data is the transmission T). */
export type CxiConvention = 'complex' | 'amplitude' | 'intensity' | 'optical density' | 'absorption' | 'phase';

/** data_type values of real data, lower case, to their convention. */
const REAL_TYPES: Record<string, CxiConvention> = {
  amplitude: 'amplitude', transmission: 'amplitude', modulus: 'amplitude',
  intensity: 'intensity', 'optical density': 'optical density', absorption: 'absorption', phase: 'phase',
};

/** The stacks each convention gives. */
const GIVES: Record<CxiConvention, CxiPart[]> = {
  complex: ['absorption', 'phase'], amplitude: ['absorption'], intensity: ['absorption'], 'optical density': ['absorption'], absorption: ['absorption'], phase: ['phase'],
};

/** The formula of each stack, for the layout record. */
const FORMULA: Record<CxiConvention, string> = {
  complex: 'complex transmission T: absorption -ln|T|, phase arg T (rad)',
  amplitude: 'amplitude |T|: absorption -ln|T|',
  intensity: 'intensity |T|^2: absorption -ln(I)/2 = -ln|T|',
  'optical density': 'optical density -ln|T|^2: absorption OD/2 = -ln|T|',
  absorption: 'absorption -ln|T|, as stored',
  phase: 'phase arg T (rad), as stored',
};

interface Item {
  file: H5File;
  ds: import('h5wasm/node').Dataset;
  /** Index along the first axis of a stacked dataset, or -1 for a 2-D image. */
  index: number;
}

/** One stored value (re, im; im = 0 for real data) as the requested stack's value. */
function convert(conv: CxiConvention, part: CxiPart, re: number, im: number): number {
  let x: number;
  switch (conv) {
    case 'complex':
      if (part === 'phase') x = Math.atan2(im, re);
      else {
        const a = Math.hypot(re, im);
        x = a > 0 ? -Math.log(a) : NaN;
      }
      break;
    case 'amplitude': x = re > 0 ? -Math.log(re) : NaN; break;
    case 'intensity': x = re > 0 ? -0.5 * Math.log(re) : NaN; break;
    case 'optical density': x = 0.5 * re; break;
    default: x = re; // absorption or phase, as stored
  }
  return Number.isFinite(x) ? x : NaN;
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

  constructor(readonly path: string, private items: Item[], readonly height: number, readonly width: number, readonly part: CxiPart, readonly convention: CxiConvention = 'complex', readonly fftShifted = false) {
    this.nE = items.length;
  }

  get dtype(): string {
    return `CXI ${this.convention === 'complex' ? 'complex' : this.convention} (${this.part === 'phase' ? 'phase arg T, rad' : 'absorption -ln|T|'})`;
  }

  async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
    checkRowRequest(this, y0, rows, out);
    const W = this.width, H = this.height;
    const n = rows * W;
    const rb = Math.max(1, Math.floor(CXI_SLICE_VALUES / W));
    // is_fft_shifted: output row y is stored row (y - H/2) mod H, column x stored (x - W/2) mod W.
    const hy = this.fftShifted ? Math.floor(H / 2) : 0, hx = this.fftShifted ? Math.floor(W / 2) : 0;
    const rowBuf = hx ? new Float64Array(2 * W) : null;
    for (let e = 0; e < this.nE; e++) {
      const it = this.items[e];
      for (let r0 = 0; r0 < rows; ) {
        // A run of output rows whose stored rows are contiguous (a shift wraps once).
        const s0 = (y0 + r0 - hy + H) % H;
        const r1 = Math.min(rows, r0 + rb, r0 + (H - s0));
        const ranges: [number, number][] = it.index >= 0 ? [[it.index, it.index + 1], [s0, s0 + r1 - r0], [0, W]] : [[s0, s0 + r1 - r0], [0, W]];
        let v: unknown;
        try {
          v = it.ds.slice(ranges);
        } catch (err) {
          throw new InputError(it.file.path, hdf5Message(err));
        }
        const values = v as ArrayLike<number | [number, number]>;
        if (!values || values.length !== (r1 - r0) * W) throw new InputError(it.file.path, 'a read of the reconstruction returned no data (damaged file?)');
        const o = e * n + r0 * W;
        const complex = this.convention === 'complex';
        for (let r = 0; r < r1 - r0; r++) {
          for (let x = 0; x < W; x++) {
            const i = r * W + x;
            const val = values[i];
            const [re, im] = complex ? (val as [number, number]) : [val as number, 0];
            const y = convert(this.convention, this.part, re, im);
            if (rowBuf) rowBuf[x] = y;
            else out[o + i] = y;
          }
          if (rowBuf) for (let x = 0; x < W; x++) out[o + r * W + x] = rowBuf[(x - hx + W) % W];
        }
        r0 = r1;
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

/**
 * A CXI field of the data's group (data_type, data_space, is_fft_shifted): a scalar dataset
 * in the group (as CXI 1.6 and PyNX write them), else an attribute of the data or the group.
 */
function field(f: H5File, dataPath: string, ds: import('h5wasm/node').Dataset, name: string): string | number | null {
  const p = `${path.posix.dirname(dataPath)}/${name}`;
  const d = f.dataset(p);
  let v: unknown = null;
  if (d) {
    try {
      v = d.value;
    } catch {
      v = null;
    }
  }
  if (v === null) v = f.attrValue(ds, name);
  if (v === null) {
    const g = f.group(path.posix.dirname(dataPath));
    if (g) v = f.attrValue(g, name);
  }
  if (Array.isArray(v) || ArrayBuffer.isView(v)) v = (v as ArrayLike<unknown>)[0];
  if (typeof v === 'bigint') v = Number(v);
  return typeof v === 'string' || typeof v === 'number' ? v : typeof v === 'boolean' ? Number(v) : null;
}

/** What the file says its data is, and how it is stored. */
function conventionOf(f: H5File, dataPath: string, ds: import('h5wasm/node').Dataset): { convention: CxiConvention; dataType: string | null; dataSpace: string | null; fftShifted: boolean } {
  const where = `${f.path}#${dataPath}`;
  const meta = ds.metadata;
  const dt = field(f, dataPath, ds, 'data_type');
  const dataType = dt === null ? null : String(dt).trim();
  const sp = field(f, dataPath, ds, 'data_space');
  const dataSpace = sp === null ? null : String(sp).trim().toLowerCase();
  if (dataSpace && dataSpace !== 'real') throw new InputError(where, `data_space is '${dataSpace}': detector frames, not a real-space reconstruction (reconstruct them first, e.g. with PyNX or PtyPy)`);
  const sh = field(f, dataPath, ds, 'is_fft_shifted');
  const fftShifted = sh !== null && (typeof sh === 'number' ? sh !== 0 : /^(1|true|yes)$/i.test(sh.trim()));
  if (isComplex(meta)) return { convention: 'complex', dataType, dataSpace, fftShifted };
  if (!numericDtype(meta)) throw new InputError(where, `is ${describeType(meta)}, not a complex or numeric reconstruction`);
  const known = Object.keys(REAL_TYPES).join(', ');
  if (dataType === null) throw new InputError(where, `is ${describeType(meta)} and says nothing of what it holds (no data_type): give the complex transmission T, or state data_type (${known})`);
  const convention = REAL_TYPES[dataType.toLowerCase()];
  if (!convention) throw new InputError(where, `is ${describeType(meta)} with data_type '${dataType}', which is not one this reader knows for real values (${known}); a complex T needs no data_type`);
  return { convention, dataType, dataSpace, fftShifted };
}

function energiesOf(f: H5File, dataPath: string, count: number): { e: Float64Array; path: string } | undefined {
  const entry = dataPath.split('/')[1];
  for (const p of [`/${entry}/instrument_1/source_1/energy`, '/entry_1/instrument_1/source_1/energy']) {
    const d = f.dataset(p);
    if (!d) continue;
    const v = f.readVector(p, 1 << 20);
    const unit = f.attrString(d, 'units') ?? 'J';
    const k = energyFactor(unit, `${f.path}#${p}`);
    if (v.length !== count && !(v.length === 1 && count === 1)) {
      throw new InputError(`${f.path}#${p}`, `${v.length} energies, but the reconstruction has ${count} images`);
    }
    return { e: Float64Array.from(v, (x) => x * k), path: `${p} (${unit})` };
  }
  return undefined;
}

function pixelOf(f: H5File, dataPath: string): { px: { x: number; y: number }; path: string } | undefined {
  const entry = dataPath.split('/')[1];
  for (const g of [path.posix.dirname(dataPath), `/${entry}/image_1`, `/${entry}/result_1`]) {
    const get = (name: string) => {
      const p = `${g}/${name}`;
      const d = f.dataset(p);
      if (!d) return undefined;
      const v = f.readVector(p, 4)[0];
      return v > 0 ? v * lengthFactor(f.attrString(d, 'units') ?? 'm', `${f.path}#${p}`) : undefined;
    };
    const x = get('x_pixel_size'), y = get('y_pixel_size');
    if (x) return { px: { x, y: y ?? x }, path: `${g}/x_pixel_size (m)` };
  }
  return undefined;
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
    let first: (ReturnType<typeof conventionOf> & { path: string; energyPath?: string; pxPath?: string }) | null = null;
    for (const file of files) {
      if (!fs.existsSync(file)) throw new InputError(file, 'no such file');
      const f = await H5File.open(file);
      opened.push(f);
      const { ds, path: dataPath } = dataOf(f);
      const conv = conventionOf(f, dataPath, ds);
      if (!GIVES[conv.convention].includes(part)) {
        throw new InputError(`${file}#${dataPath}`, `holds ${conv.convention} (data_type '${conv.dataType}'), which gives no ${part} stack${part === 'phase' ? ' (the phase needs the complex T or data_type phase)' : ''}`);
      }
      if (first && (conv.convention !== first.convention || conv.fftShifted !== first.fftShifted)) {
        throw new InputError(file, `holds ${conv.convention}${conv.fftShifted ? ' (fft-shifted)' : ''}, ${files[0]} ${first.convention}${first.fftShifted ? ' (fft-shifted)' : ''}: one series needs one convention`);
      }
      const shape = ds.shape ?? [];
      if (shape.length !== 2 && shape.length !== 3) throw new InputError(`${file}#${dataPath}`, `expected [H,W] or [E,H,W], got shape [${shape.join(', ')}]`);
      // PyNX: an object of several layers (multislice) is not one image per energy.
      if (shape.length === 3 && shape[0] > 1 && f.dataset(`${path.posix.dirname(dataPath)}/Object-layer01`)) {
        throw new InputError(`${file}#${dataPath}`, `a multislice object of ${shape[0]} layers, not one image per energy; export one layer (or their product) as image_1/data`);
      }
      const [h, w] = shape.slice(-2);
      if (H < 0) [H, W] = [h, w];
      else if (h !== H || w !== W) throw new InputError(file, `images are ${h}x${w}, those of ${files[0]} ${H}x${W}`);
      if (files.length > 1 && shape.length === 3 && shape[0] !== 1) throw new InputError(file, 'a series of CXI files must hold one image each; give a file with a stack on its own');
      const nHere = shape.length === 3 ? shape[0] : 1;
      const e = energiesOf(f, dataPath, nHere);
      const px = pixelOf(f, dataPath);
      first ??= { ...conv, path: dataPath, energyPath: e?.path, pxPath: px?.path };
      for (let k = 0; k < nHere; k++) {
        if (k > 0) opened.push(f.retain());
        items.push({ item: { file: f, ds, index: shape.length === 3 ? k : -1 }, energy: e?.e[k], px: px?.px });
      }
    }
    const withEnergy = items.every((i) => i.energy !== undefined);
    if (withEnergy && files.length > 1) items.sort((a, b) => a.energy! - b.energy!);
    const e = withEnergy ? Float64Array.from(items, (i) => i.energy!) : undefined;
    if (e) for (let i = 1; i < e.length; i++) if (!(e[i] > e[i - 1])) throw new InputError(spec, `energies not strictly increasing at image ${i + 1}: ${e[i]} eV after ${e[i - 1]} eV`);
    const c = first!;
    const s = new CxiStack(spec, items.map((i) => i.item), H, W, part, c.convention, c.fftShifted);
    opened.length = 0; // the stack owns the files now (one reference per image)
    const datasets: Record<string, string> = { data: `${c.path} (${part})` };
    if (e) {
      s.energies = e;
      datasets.energies = c.energyPath ?? '';
    }
    if (items[0].px) {
      s.pixelSizeUm = items[0].px;
      datasets.pixel_size = c.pxPath ?? '';
    }
    const notes = [
      `values: ${FORMULA[c.convention]}; data_type ${c.dataType === null ? '(none)' : `'${c.dataType}'`}, data_space ${c.dataSpace ?? '(none: real)'}`,
      ...(c.fftShifted ? ['is_fft_shifted = 1: the image was shifted back to its centred view (fftshift over y and x)'] : []),
    ];
    s.layout = { format: 'hdf5', name: 'cxi', title: `CXI ptychography (${part})`, datasets, notes };
    return s;
  } catch (e) {
    for (const f of opened) f.release();
    throw e;
  }
}
