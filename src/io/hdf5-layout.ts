/**
 * Which datasets of a beamline HDF5 file hold the stack, its flat and dark fields, its
 * energies and its pixel size, detected from the file's own structure:
 *
 *   FXI (NSLS-II 18-ID)   /img_xanes [E,H,W] counts, /img_bkg flat, /img_dark dark,
 *                         /X_eng energies (keV unless a units attribute says otherwise),
 *                         pixel size from /Pixel Size ("21.3nm") when present.
 *   APS data exchange     /exchange/data, /exchange/data_white, /exchange/data_dark,
 *                         energies from /exchange/energy or the instrument's monochromator,
 *                         in the dataset's @units; pixel size from the detector.
 *   NeXus NXdata/NXstxm   the NXentry's default (or first) NXdata: its @signal dataset with
 *                         @axes; the energy axis first, @units respected; pixel size from
 *                         the last axis's spacing.
 *   CXI                   see src/io/cxi.ts (complex reconstructions).
 *   one 3-D dataset       any file holding exactly one 3-D/4-D numeric dataset.
 *
 * `file.h5#/path` names the dataset; when it is a known layout's data, the layout's flat,
 * dark and energies come with it.
 */
import { InputError } from './errors.js';
import { H5File, Hdf5Stack, numericDtype, formatDatasets, type DatasetInfo } from './hdf5.js';
import { energyFactor, isEnergyUnit, lengthFactor, parseLengthText } from './units.js';

type Group = import('h5wasm/node').Group;
type Dataset = import('h5wasm/node').Dataset;

export type LayoutName = 'fxi' | 'aps-dxchange' | 'nexus' | 'cxi' | 'dataset';

export const LAYOUT_TITLES: Record<LayoutName, string> = {
  fxi: 'FXI (NSLS-II 18-ID)',
  'aps-dxchange': 'APS data exchange',
  nexus: 'NeXus NXdata',
  cxi: 'CXI ptychography',
  dataset: 'a 3-D dataset',
};

export interface Hdf5Layout {
  name: LayoutName;
  data: string;
  flat?: string;
  dark?: string;
  /** eV, with where they came from. */
  energies?: { values: Float64Array; from: string };
  pixelSizeUm?: { value: number; from: string };
  notes: string[];
}

/** FXI stores X_eng in keV without a units attribute (its acquisition code writes keV). */
const FXI_DEFAULT_ENERGY_UNIT = 'keV';

export function detectLayout(f: H5File, explicit?: string): Hdf5Layout {
  const where = f.path;
  const candidates = [fxi, apsDxchange, nexus];
  for (const c of candidates) {
    const l = c(f);
    if (l && (explicit === undefined || samePath(l.data, explicit))) return l;
  }
  if (explicit !== undefined) {
    if (!f.get(explicit)) {
      throw new InputError(`${where}#${explicit}`, `no such dataset; the file has ${formatDatasets(f.listDatasets())}`);
    }
    return { name: 'dataset', data: normalise(explicit), notes: [] };
  }
  const all = f.listDatasets();
  const stacks = all.filter(isStackCandidate);
  if (stacks.length === 1) return { name: 'dataset', data: stacks[0].path, notes: [] };
  if (stacks.length === 0) {
    throw new InputError(where, `no 3-D numeric dataset [E,H,W] in the file; it has ${formatDatasets(all)}`);
  }
  throw new InputError(where, `${stacks.length} 3-D datasets and no known layout: name one as ${where}#/path (${formatDatasets(stacks)})`);
}

function isStackCandidate(d: DatasetInfo): boolean {
  return (d.shape.length === 3 || d.shape.length === 4) && /^(u?int|float)\d+$/.test(d.dtype) && d.shape.every((s) => s > 0);
}

function normalise(p: string): string {
  return p.startsWith('/') ? p : `/${p}`;
}

function samePath(a: string, b: string): boolean {
  return normalise(a).replace(/\/+$/, '') === normalise(b).replace(/\/+$/, '');
}

function isDataset3D(f: H5File, p: string): boolean {
  const d = f.dataset(p);
  const s = d?.shape;
  return !!d && !!s && (s.length === 3 || s.length === 4) && numericDtype(d.metadata) !== null;
}

/** Energies of a 1-D dataset converted to eV using its @units (or the default unit given). */
function energiesOf(f: H5File, p: string, defaultUnit: string | null, notes: string[]): { values: Float64Array; from: string } {
  const d = f.dataset(p)!;
  const where = `${f.path}#${p}`;
  const values = f.readVector(p);
  let unit = f.attrString(d, 'units') ?? f.attrString(d, 'unit');
  let from = `${p}`;
  if (unit === null) {
    if (defaultUnit) {
      unit = defaultUnit;
      from += ` (${defaultUnit}, the layout's unit; no units attribute)`;
    } else {
      // No unit anywhere: decide by magnitude, as a scientist would, and say so.
      unit = values[values.length - 1] < 100 ? 'keV' : 'eV';
      notes.push(`${p} has no units attribute; values up to ${values[values.length - 1]} read as ${unit}`);
      from += ` (${unit}, guessed from the values)`;
    }
  } else {
    from += ` (@units ${unit})`;
  }
  const k = energyFactor(unit, where);
  for (let i = 0; i < values.length; i++) values[i] *= k;
  return { values, from };
}

/** A pixel size: a number with @units, or text such as "21.3nm". */
function lengthOf(f: H5File, p: string, defaultUnit: string | null): { value: number; from: string } | undefined {
  const d = f.dataset(p);
  if (!d) return undefined;
  const meta = d.metadata;
  if (meta.type === 3) {
    let text: unknown;
    try {
      text = d.value;
    } catch {
      return undefined;
    }
    const s = Array.isArray(text) ? text[0] : text;
    const v = typeof s === 'string' ? parseLengthText(s) : null;
    return v !== null && v > 0 ? { value: v, from: `${p} ("${s}")` } : undefined;
  }
  if (!numericDtype(meta)) return undefined;
  const values = f.readVector(p, 16);
  const unit = f.attrString(d, 'units') ?? defaultUnit;
  if (!unit || !(values[0] > 0)) return undefined;
  return { value: values[0] * lengthFactor(unit, `${f.path}#${p}`), from: `${p} (${values[0]} ${unit})` };
}

function fxi(f: H5File): Hdf5Layout | null {
  if (!isDataset3D(f, '/img_xanes')) return null;
  const notes: string[] = [];
  const l: Hdf5Layout = { name: 'fxi', data: '/img_xanes', notes };
  if (isDataset3D(f, '/img_bkg')) l.flat = '/img_bkg';
  if (isDataset3D(f, '/img_dark')) l.dark = '/img_dark';
  if (f.dataset('/X_eng')) l.energies = energiesOf(f, '/X_eng', FXI_DEFAULT_ENERGY_UNIT, notes);
  l.pixelSizeUm = lengthOf(f, '/Pixel Size', null);
  return l;
}

function apsDxchange(f: H5File): Hdf5Layout | null {
  if (!isDataset3D(f, '/exchange/data')) return null;
  const notes: string[] = [];
  const l: Hdf5Layout = { name: 'aps-dxchange', data: '/exchange/data', notes };
  if (isDataset3D(f, '/exchange/data_white')) l.flat = '/exchange/data_white';
  if (isDataset3D(f, '/exchange/data_dark')) l.dark = '/exchange/data_dark';
  for (const p of ['/exchange/energy', '/measurement/instrument/monochromator/energy', '/measurement/instrument/source/energy']) {
    if (f.dataset(p)) {
      l.energies = energiesOf(f, p, null, notes);
      break;
    }
  }
  for (const p of ['/measurement/instrument/detection_system/objective/resolution', '/measurement/instrument/detector/actual_pixel_size_x', '/measurement/instrument/detector/pixel_size_x']) {
    const v = lengthOf(f, p, null);
    if (v) {
      l.pixelSizeUm = v;
      break;
    }
  }
  return l;
}

/** The NXentry to use: the root's @default, else the first group whose NX_class is NXentry. */
function nxEntry(f: H5File): { g: Group; path: string } | null {
  const def = f.attrString(f.file, 'default');
  if (def) {
    const g = f.group(`/${def}`);
    if (g) return { g, path: `/${def}` };
  }
  let keys: string[] = [];
  try {
    keys = f.file.keys();
  } catch {
    return null;
  }
  for (const k of keys) {
    const g = f.group(`/${k}`);
    if (g && f.attrString(g, 'NX_class') === 'NXentry') return { g, path: `/${k}` };
  }
  return null;
}

function nexus(f: H5File): Hdf5Layout | null {
  const entry = nxEntry(f);
  if (!entry) return null;
  // The NXdata: the entry's @default, else the first child group of class NXdata.
  let dataPath: string | null = null;
  const def = f.attrString(entry.g, 'default');
  if (def && f.group(`${entry.path}/${def}`)) dataPath = `${entry.path}/${def}`;
  if (!dataPath) {
    for (const k of safeKeys(entry.g)) {
      const g = f.group(`${entry.path}/${k}`);
      if (g && f.attrString(g, 'NX_class') === 'NXdata') {
        dataPath = `${entry.path}/${k}`;
        break;
      }
    }
  }
  if (!dataPath) return null;
  const nxdata = f.group(dataPath)!;
  let signal = f.attrString(nxdata, 'signal');
  if (!signal) {
    // NeXus before 2014: the signal dataset carries @signal = 1.
    signal = safeKeys(nxdata).find((k) => {
      const d = f.dataset(`${dataPath}/${k}`);
      return d && Number(f.attrValue(d, 'signal')) === 1;
    }) ?? null;
  }
  if (!signal) return null;
  const data = `${dataPath}/${signal}`;
  if (!isDataset3D(f, data)) return null;
  const notes: string[] = [];
  const l: Hdf5Layout = { name: 'nexus', data, notes };
  const rank = f.dataset(data)!.shape!.length;
  const sig = f.dataset(data)!;
  const axes = f.attrStrings(nxdata, 'axes') ?? f.attrStrings(sig, 'axes');
  if (axes && axes.length === rank) {
    const energyAxis = axes.findIndex((a, i) => a !== '.' && (/energy/i.test(a) || unitOf(f, `${dataPath}/${a}`, isEnergyUnit) !== null) && i >= 0);
    if (energyAxis > 0) {
      throw new InputError(`${f.path}#${data}`, `the energy axis '${axes[energyAxis]}' is dimension ${energyAxis}; the engine reads stacks with energy first [E,...,Y,X]`);
    }
    if (energyAxis === 0) l.energies = energiesOf(f, `${dataPath}/${axes[0]}`, null, notes);
    const xName = axes[rank - 1];
    if (xName !== '.' && f.dataset(`${dataPath}/${xName}`)) {
      const xPath = `${dataPath}/${xName}`;
      const unit = unitOf(f, xPath, () => true);
      const x = f.readVector(xPath, 1 << 20);
      if (unit && x.length > 1) {
        try {
          const k = lengthFactor(unit, `${f.path}#${xPath}`);
          const spacing = (Math.abs(x[x.length - 1] - x[0]) / (x.length - 1)) * k;
          if (spacing > 0) l.pixelSizeUm = { value: spacing, from: `${xPath} spacing (${unit})` };
        } catch {
          notes.push(`${xPath}: units '${unit}' are not a length; no pixel size`);
        }
      }
    }
  }
  return l;
}

function unitOf(f: H5File, p: string, accept: (u: string) => boolean): string | null {
  const d = f.dataset(p);
  if (!d) return null;
  const u = f.attrString(d, 'units');
  return u !== null && accept(u) ? u : null;
}

function safeKeys(g: Group): string[] {
  try {
    return g.keys();
  } catch {
    return [];
  }
}

/**
 * Opens `file` (layout detected) or `file#/path` as a stack, with the flat and dark fields,
 * energies and pixel size its layout provides.
 */
export async function openHdf5Stack(filePath: string, explicit?: string): Promise<Hdf5Stack> {
  const f = await H5File.open(filePath);
  let sample: Hdf5Stack | null = null;
  try {
    const l = detectLayout(f, explicit);
    sample = new Hdf5Stack(f, l.data);
    const datasets: Record<string, string> = { data: l.data };
    if (l.energies) {
      const where = `${filePath}#${l.energies.from.split(' ')[0]}`;
      const e = l.energies.values;
      if (e.length !== sample.nE) {
        throw new InputError(where, `${e.length} energies, but ${l.data} has ${sample.nE} images`);
      }
      for (let i = 1; i < e.length; i++) {
        if (!(e[i] > e[i - 1])) throw new InputError(where, `energies not strictly increasing at index ${i}: ${e[i]} eV after ${e[i - 1]} eV`);
      }
      for (let i = 0; i < e.length; i++) if (!Number.isFinite(e[i])) throw new InputError(where, `index ${i} is not a finite number`);
      sample.energies = e;
      datasets.energies = l.energies.from;
    }
    if (l.flat) {
      sample.flatField = new Hdf5Stack(f.retain(), l.flat);
      datasets.flat = l.flat;
    }
    if (l.dark) {
      sample.darkField = new Hdf5Stack(f.retain(), l.dark);
      datasets.dark = l.dark;
    }
    if (l.pixelSizeUm) {
      sample.pixelSizeUm = { x: l.pixelSizeUm.value, y: l.pixelSizeUm.value };
      datasets.pixel_size = l.pixelSizeUm.from;
    }
    sample.layout = { format: 'hdf5', name: l.name, title: LAYOUT_TITLES[l.name], datasets, notes: l.notes };
    return sample;
  } catch (e) {
    if (sample) sample.close();
    else f.release();
    throw e;
  }
}
