/**
 * results.h5: one NeXus file per run, written with h5wasm from the finished output folder
 * (its .npy maps, .csv tables and summary.json) just before the folder is moved into place,
 * so every command gets it without writing anything twice. Structure (README "results.h5"):
 *
 *   /                      @NX_class=NXroot @default=entry @creator @file_time
 *   /entry                 NXentry  @default=<first map group>
 *     title, start_time, definition-free (plain NXentry)
 *     process/             NXprocess: program, version, date, command_line, backend, adapter,
 *                          parameters/ (NXparameters: one dataset per parameter; nested
 *                          values as JSON text), summary_json (the whole summary.json)
 *     input[_<field>]/     NXcollection: stack, energy [E] (@units eV), pixel_size (@units um),
 *                          read (JSON: layout, datasets, flat/dark provenance)
 *     <group>/             NXdata, one per folder of maps (edge, fit, lcf, cluster, or
 *                          <field>_<step> for `xanes run`): every map float32 [H,W] (or [Z,Y,X])
 *                          with @units and @long_name; @signal = the main map,
 *                          @auxiliary_signals = the others; axes y, x (and z) in µm when the
 *                          pixel size is known (@units um), else pixel indices (@units pixel);
 *                          status (uint8) with @status_names and @status_<code> = name
 *     <group>_<table>/     each CSV table: NXdata over energy (@signal the first column after
 *                          energy_eV) for spectra, else NXcollection; one 1-D dataset per
 *                          column with @units.
 */
import fs from 'node:fs';
import path from 'node:path';
import { h5wasm } from './hdf5.js';
import { collectGarbage } from '../pipeline/memory.js';
import { NpyFile, readNpy, type NpyArray } from './npy.js';
import { mapMeta, columnUnit } from './map-units.js';
import { VERSION } from '../version.js';

type Group = import('h5wasm/node').Group;

export interface ResultsInput {
  stack: string;
  energies?: Float64Array;
  pixelSizeUm?: { x: number; y: number };
  /** [Z, Y, X] when the stack is a volume. */
  volume?: [number, number, number];
  read?: unknown;
}

export interface ResultsContext {
  /** Inputs by field name ('' for a single-stack command). */
  inputs: Map<string, ResultsInput>;
  /** Status code names by output subfolder ('' for the root). */
  statusNames: Map<string, readonly string[]>;
  /**
   * Files (relative paths) not copied into results.h5: whole stacks such as xanes align's
   * aligned.npy, which may be larger than memory (summary.json names them).
   */
  exclude?: Set<string>;
}

let commandLine: string[] | null = null;

/** The CLI records its arguments here; library calls leave it null. */
export function setCommandLine(argv: string[]): void {
  commandLine = argv;
}

export function getCommandLine(): string {
  return commandLine ? ['xanes', ...commandLine].map(shellQuote).join(' ') : '(library call)';
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The preferred @signal of a group of maps: the headline map of each command. */
const SIGNAL_ORDER = ['e0_half', 'labels', 'total', 'b2', 'score_1'];

/** Folder -> its .npy and .csv files, recursively (relative paths). */
function folders(root: string, exclude: Set<string> = new Set()): Map<string, { npy: string[]; csv: string[] }> {
  const out = new Map<string, { npy: string[]; csv: string[] }>();
  const walk = (rel: string) => {
    const abs = path.join(root, rel);
    const entries = fs.readdirSync(abs, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
    const here = { npy: [] as string[], csv: [] as string[] };
    for (const e of entries) {
      if (exclude.has(path.join(rel, e.name).split(path.sep).join('/'))) continue;
      if (e.isDirectory()) walk(path.join(rel, e.name));
      else if (e.name.endsWith('.npy')) here.npy.push(e.name);
      else if (e.name.endsWith('.csv')) here.csv.push(e.name);
    }
    if (here.npy.length + here.csv.length > 0) out.set(rel.split(path.sep).join('/'), here);
  };
  walk('');
  return out;
}

function h5Name(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]+/g, '_');
}

/** Units the summary records for maps (edge: maps.<n>.unit; fit: model.units; run: map_units). */
function summaryUnits(summary: Record<string, any>): Record<string, string> {
  const u: Record<string, string> = {};
  const maps = summary.maps;
  if (maps && typeof maps === 'object' && !Array.isArray(maps)) {
    for (const [k, v] of Object.entries(maps)) if (v && typeof (v as any).unit === 'string') u[k] = (v as any).unit;
  }
  if (summary.model?.units) Object.assign(u, summary.model.units);
  for (const v of Object.values(summary.map_units ?? {})) Object.assign(u, v as Record<string, string>);
  return u;
}

function parseCsv(text: string): { header: string[]; rows: string[][] } {
  const lines = text.split('\n').filter((l) => l !== '');
  const split = (l: string) => {
    const out: string[] = [];
    let cur = '', q = false;
    for (let i = 0; i < l.length; i++) {
      const c = l[i];
      if (q) {
        if (c === '"' && l[i + 1] === '"') { cur += '"'; i++; }
        else if (c === '"') q = false;
        else cur += c;
      } else if (c === '"') q = true;
      else if (c === ',') { out.push(cur); cur = ''; }
      else cur += c;
    }
    out.push(cur);
    return out;
  };
  return { header: split(lines[0] ?? ''), rows: lines.slice(1).map(split) };
}

function attr(obj: Group | import('h5wasm/node').Dataset, name: string, value: string | string[] | number | number[]): void {
  if (typeof value === 'number') obj.create_attribute(name, value, null, Number.isInteger(value) ? '<i8' : '<d');
  else if (Array.isArray(value) && typeof value[0] === 'number') obj.create_attribute(name, value as number[], [value.length], '<i8');
  else obj.create_attribute(name, value as string | string[]);
}

function group(parent: Group, name: string, nxClass: string): Group {
  const g = parent.create_group(name);
  attr(g, 'NX_class', nxClass);
  return g;
}

function text(parent: Group, name: string, value: string): void {
  parent.create_dataset({ name, data: value });
}

function numbers(parent: Group, name: string, data: Float64Array, unit?: string) {
  const d = parent.create_dataset({ name, data, shape: [data.length], dtype: '<d' });
  if (unit) attr(d, 'units', unit);
  return d;
}

/** One parameter as a dataset: numbers and strings as they are, anything else as JSON. */
function parameter(parent: Group, name: string, v: unknown): void {
  const n = h5Name(name);
  if (typeof v === 'number' && Number.isFinite(v)) parent.create_dataset({ name: n, data: v, dtype: '<d' });
  else if (typeof v === 'boolean') parent.create_dataset({ name: n, data: v ? 1 : 0, dtype: '<b' });
  else if (typeof v === 'string') text(parent, n, v);
  else if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    parent.create_dataset({ name: n, data: Float64Array.from(v as number[]), shape: [v.length], dtype: '<d' });
  } else text(parent, n, JSON.stringify(v ?? null));
}

/**
 * Writes <folder>/results.h5 (or `o.file`) from the finished outputs in `folder`, with
 * <folder>/summary.json (or `o.summary`, when summary.json is written after it).
 */
export async function writeResultsH5(folder: string, ctx: ResultsContext, o: { summary?: Record<string, unknown>; file?: string } = {}): Promise<void> {
  collectGarbage(); // what the run left (pictures, tiles) goes before HDF5 is loaded
  const h5 = await h5wasm({ lean: true });
  const summaryPath = path.join(folder, 'summary.json');
  const summary: Record<string, any> = o.summary ?? (fs.existsSync(summaryPath) ? JSON.parse(fs.readFileSync(summaryPath, 'utf8')) : {});
  const units = summaryUnits(summary);
  const file = new h5.File(path.join(folder, o.file ?? 'results.h5'), 'w');
  try {
    attr(file, 'NX_class', 'NXroot');
    attr(file, 'creator', `xanes-engine ${VERSION}`);
    attr(file, 'file_time', new Date().toISOString());
    attr(file, 'default', 'entry');
    const entry = group(file, 'entry', 'NXentry');
    text(entry, 'title', `xanes ${summary.command ?? ''}`.trim());
    if (summary.started) text(entry, 'start_time', summary.started);

    const proc = group(entry, 'process', 'NXprocess');
    text(proc, 'program', 'xanes-engine');
    text(proc, 'version', VERSION);
    text(proc, 'date', new Date().toISOString());
    text(proc, 'command_line', getCommandLine());
    text(proc, 'command', String(summary.command ?? ''));
    text(proc, 'backend', String(summary.backend?.name ?? 'none'));
    text(proc, 'adapter', String(summary.backend?.adapter ?? 'none'));
    const params = group(proc, 'parameters', 'NXparameters');
    for (const [k, v] of Object.entries((summary.parameters ?? {}) as Record<string, unknown>)) parameter(params, k, v);
    if (summary.model) parameter(params, 'model', summary.model);
    text(proc, 'summary_json', JSON.stringify(summary));

    for (const [field, inp] of ctx.inputs) {
      const g = group(entry, field ? `input_${h5Name(field)}` : 'input', 'NXcollection');
      text(g, 'stack', inp.stack);
      if (inp.energies) numbers(g, 'energy', inp.energies, 'eV');
      if (inp.pixelSizeUm) numbers(g, 'pixel_size', Float64Array.of(inp.pixelSizeUm.y, inp.pixelSizeUm.x), 'um');
      if (inp.read !== undefined) text(g, 'read', JSON.stringify(inp.read));
    }

    let first: string | null = null;
    const groupNames = new Set<string>();
    for (const [rel, files] of folders(folder, ctx.exclude)) {
      const parts = rel === '' ? [] : rel.split('/');
      const base = parts.length > 0 ? parts.join('_') : String(summary.command ?? 'results');
      let gname = h5Name(base);
      while (groupNames.has(gname) || gname === 'process' || gname.startsWith('input')) gname += '_';
      groupNames.add(gname);
      const field = parts.length > 0 && ctx.inputs.has(parts[0]) ? parts[0] : '';
      const inp = ctx.inputs.get(field) ?? (ctx.inputs.size === 1 ? [...ctx.inputs.values()][0] : undefined);
      const statusNames = ctx.statusNames.get(rel);
      if (files.npy.length > 0 && writeMaps(entry, gname, folder, rel, files.npy, units, inp, statusNames)) first ??= gname;
      for (const csv of files.csv) writeTable(entry, `${gname}_${h5Name(csv.replace(/\.csv$/, ''))}`, path.join(folder, rel, csv), groupNames);
    }
    if (first) attr(entry, 'default', first);
  } finally {
    file.close();
  }
}

/** One NXdata of the maps in a folder; false when it holds no 2-D/3-D maps. */
function writeMaps(entry: Group, gname: string, folder: string, rel: string, npys: string[], units: Record<string, string>, inp: ResultsInput | undefined, statusNames: readonly string[] | undefined): boolean {
  // Shapes from the headers first; the data is then read one map at a time while it is
  // written, so the memory this needs is one map, not the folder's maps together.
  const arrays: { name: string; file: string; shape: number[] }[] = [];
  let shape: number[] | null = null;
  for (const f of npys) {
    const name = f.replace(/\.npy$/, '');
    const file = path.join(folder, rel, f);
    const h = NpyFile.open(file);
    const aShape = h.shape;
    h.close();
    if (aShape.length < 2 || aShape.length > 3) continue;
    if (shape === null) shape = aShape;
    if (aShape.join() !== shape!.join()) continue;
    arrays.push({ name, file, shape: aShape });
  }
  if (!shape || arrays.length === 0) return false;
  const g = group(entry, gname, 'NXdata');
  const names = arrays.map((a) => a.name);
  const signal = SIGNAL_ORDER.find((n) => names.includes(n)) ?? names.find((n) => n !== 'status' && n !== 'mask') ?? names[0];
  attr(g, 'signal', signal);
  const aux = names.filter((n) => n !== signal);
  if (aux.length > 0) attr(g, 'auxiliary_signals', aux);
  const axisNames = shape.length === 3 ? ['z', 'y', 'x'] : ['y', 'x'];
  attr(g, 'axes', axisNames);
  const px = inp?.pixelSizeUm;
  axisNames.forEach((a, i) => {
    attr(g, `${a}_indices`, i);
    const n = shape![i];
    const step = px ? (a === 'x' ? px.x : px.y) : 1;
    const values = Float64Array.from({ length: n }, (_, k) => k * step);
    const d = numbers(g, a, values, px ? 'um' : 'pixel');
    attr(d, 'long_name', px ? `${a} (µm)` : `${a} (pixel index)`);
  });
  for (const a of arrays) {
    const d = writeDataset(g, h5Name(a.name), a.file, a.shape);
    const meta = mapMeta(a.name, units);
    attr(d, 'units', meta.unit);
    attr(d, 'long_name', `${meta.longName} (${meta.unit})`);
    if (a.name === 'status' && statusNames) {
      attr(d, 'status_names', [...statusNames]);
      statusNames.forEach((s, i) => attr(d, `status_${i}`, s));
    }
  }
  return true;
}

/**
 * Rows of a 2-D map written at a time (and the dataset's chunk): ~256 KiB, so a map never
 * needs its own size in memory twice. Each slice is copied into HDF5's WebAssembly heap,
 * which grows but never shrinks: measured writing eight 2000 x 2000 float32 maps, the heap
 * grew 14 MiB with 1 MiB slices, 8 MiB with 256 KiB.
 */
const SLICE_BYTES = 2 ** 18;

/**
 * One map as a dataset. A 2-D map is written in slices of rows read from its .npy (a chunked
 * dataset, chunks of those rows), so writing it costs a slice of memory, not the map (plus
 * the map's copy inside HDF5's WebAssembly heap, which never shrinks); other arrays whole.
 */
function writeDataset(g: Group, name: string, file: string, shape: number[]): import('h5wasm/node').Dataset {
  const f = NpyFile.open(file);
  try {
    if (shape.length !== 2 || shape[0] * shape[1] * f.itemSize <= SLICE_BYTES) {
      return g.create_dataset({ name, data: f.readAll(), shape });
    }
    const [H, W] = shape;
    const rows = Math.max(1, Math.floor(SLICE_BYTES / (W * f.itemSize)));
    const d = g.create_dataset({ name, data: f.emptyOfType(), shape: [0, W], maxshape: [H, W], chunks: [Math.min(rows, H), W] });
    d.resize([H, W]);
    // The first slice (the largest) is read into a new array, the others into it.
    let buf: ReturnType<NpyFile['readRange']> | undefined;
    for (let y = 0; y < H; y += rows) {
      const n = Math.min(rows, H - y);
      const part = f.readRange(y * W, n * W, buf);
      buf ??= part;
      d.write_slice([[y, y + n], [0, W]], part);
    }
    collectGarbage();
    return d;
  } finally {
    f.close();
  }
}

function writeTable(entry: Group, gname: string, file: string, used: Set<string>): void {
  const { header, rows } = parseCsv(fs.readFileSync(file, 'utf8'));
  if (header.length === 0 || rows.length === 0) return;
  while (used.has(gname)) gname += '_';
  used.add(gname);
  const spectra = header[0] === 'energy_eV';
  const g = group(entry, gname, spectra ? 'NXdata' : 'NXcollection');
  const names = header.map((h) => h5Name(h));
  if (spectra) {
    attr(g, 'signal', names[1] ?? names[0]);
    if (names.length > 2) attr(g, 'auxiliary_signals', names.slice(2));
    attr(g, 'axes', [names[0]]);
  }
  attr(g, 'columns', names);
  header.forEach((h, j) => {
    const col = rows.map((r) => r[j] ?? '');
    const numeric = col.every((v) => v === 'nan' || (v.trim() !== '' && Number.isFinite(Number(v))));
    if (numeric) {
      numbers(g, names[j], Float64Array.from(col, (v) => (v === 'nan' ? NaN : Number(v))), columnUnit(h));
    } else {
      g.create_dataset({ name: names[j], data: col });
    }
  });
}
