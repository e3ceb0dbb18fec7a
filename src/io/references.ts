/**
 * Reference spectra for linear-combination fitting, and their placement on a stack's
 * energies.
 *
 * `--ref NAME=SOURCE`, SOURCE one of
 *   FILE            2-column text / CSV (energy, mu), an XDI file, or an Athena project
 *   FILE#GROUP      a group of an Athena project (by its label, or by its internal key)
 *   rect:x0,y0,x1,y1 | circle:x,y,r | mask:FILE   the mean spectrum of a region of the stack
 * Formats are recognised by content, not by extension:
 *   - Athena project (.prj): gzip'd (or plain) Perl-data text starting with
 *     "# Athena project file", one group per `$old_group = '...'; @args = (...); @x = (...);
 *     @y = (...); ... [record]`; @x is the energy, @y is mu(E). Larch's JSON variant is read
 *     too. Groups holding chi(k) (is_chi) are refused.
 *   - XDI: first line "# XDI/..."; header lines start with '#', the column labels are on
 *     the last header line (and in "Column.N: name unit" fields). mu from a mu column
 *     (mutrans, mu, mufluor, normtrans, normfluor, norm, munorm, xmu), else ln(i0 / itrans)
 *     from the raw columns.
 *   - otherwise 2-column text: '#' comments, an optional column-header line, separators
 *     whitespace, ',' or ';'; the first two columns are used.
 * Energies: eV, or keV when every energy is below 100 (no X-ray edge used with this engine
 * lies below 100 eV; soft-X-ray edges start near 280 eV, C K); XDI units come from its
 * header when given. Energies must be strictly increasing (a decreasing file is reversed).
 * On the stack: linear interpolation; the reference must cover every energy of the fit
 * window, otherwise an InputError names it.
 */
import fs from 'node:fs';
import { InputError } from './errors.js';
import { gunzipBounded, readBounded } from './files.js';
import { parseRegion, regionSpectra, type Region } from '../stack/regions.js';
import type { StackSource } from '../stack/source.js';
import { normalizeReference, type RefNormOptions, type RefNormRecord } from '../pipeline/ref-norm.js';

export interface Spectrum {
  /** eV, strictly increasing. */
  energy: Float64Array;
  values: Float64Array;
  /** What the file's energy column was in ('keV' values have been converted to eV). */
  unit: 'eV' | 'keV';
}

export interface ReferenceSpectrum {
  name: string;
  energy: Float64Array;
  mu: Float64Array;
  format: '2-column' | 'xdi' | 'athena' | 'region' | 'array';
  /** The file (with #group) or region spec. */
  source: string;
  /** For XDI: which columns gave mu ('mutrans', 'ln(i0/itrans)'). */
  detail?: string;
  /** For Athena groups: the group's stored normalisation parameters (energies already shifted). */
  athena?: AthenaNormParams;
}

/** Reference and ROI names become file names (weight_<NAME>.npy): keep them plain. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;

export function checkName(name: string, where: string): string {
  if (!NAME_PATTERN.test(name)) {
    throw new InputError(where, `name '${name}' must start with a letter or digit and use only letters, digits, '_', '.', '+', '-' (it becomes part of output file names)`);
  }
  return name;
}

const KEV_THRESHOLD = 100;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function readText(path: string): Buffer {
  return readBounded(path, 'a spectrum or reference file');
}

/** Energies to eV (keV detected or given) and strictly increasing; values follow the sort. */
function finishSpectrum(where: string, energy: number[], values: number[], unit?: 'eV' | 'keV'): Spectrum {
  if (energy.length < 2) throw new InputError(where, `only ${energy.length} data point(s): a spectrum needs at least 2`);
  let e = Float64Array.from(energy);
  let v = Float64Array.from(values);
  if (e[e.length - 1] < e[0]) {
    e = e.reverse();
    v = v.reverse();
  }
  for (let i = 1; i < e.length; i++) {
    if (!(e[i] > e[i - 1])) throw new InputError(where, `energies not strictly increasing at data point ${i + 1}: ${e[i]} after ${e[i - 1]}`);
  }
  const u = unit ?? (e[e.length - 1] < KEV_THRESHOLD ? 'keV' : 'eV');
  if (u === 'keV') for (let i = 0; i < e.length; i++) e[i] *= 1000;
  return { energy: e, values: v, unit: u };
}

/** A 2-column text/CSV spectrum (energy, value); `what` names it in messages ('I0', 'reference'). */
export function readSpectrumFile(path: string, what = 'spectrum'): Spectrum {
  const buf = readText(path);
  if (buf[0] === 0x1f && buf[1] === 0x8b) throw new InputError(path, `gzip-compressed: expected a text ${what} file (energy, value)`);
  const text = buf.toString('utf8').replace(/^\uFEFF/, '');
  if (text.includes('\0')) throw new InputError(path, `binary file: expected a text ${what} file (energy, value)`);
  const lines = text.split(/\r\n|\r|\n/);
  const energy: number[] = [];
  const values: number[] = [];
  let seenData = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#') || line.startsWith('%') || line.startsWith('!')) continue;
    const cols = line.split(/[\s,;]+/).filter((c) => c !== '');
    if (!seenData && !NUMBER.test(cols[0])) continue; // a column-header line before the data
    seenData = true;
    if (cols.length < 2) throw new InputError(path, `line ${i + 1}: expected 2 columns (energy, value), got '${line}'`);
    for (const c of cols.slice(0, 2)) if (!NUMBER.test(c)) throw new InputError(path, `line ${i + 1}: '${c}' is not a number`);
    energy.push(Number(cols[0]));
    values.push(Number(cols[1]));
  }
  if (energy.length === 0) throw new InputError(path, `no data: expected lines of 'energy value' (${what})`);
  return finishSpectrum(path, energy, values);
}

const MU_COLUMNS = ['mutrans', 'mu', 'mufluor', 'normtrans', 'normfluor', 'norm', 'munorm', 'xmu'];

/** An XDI file's mu(E) (a mu column, or ln(i0/itrans)). */
export function readXdi(path: string): { spectrum: Spectrum; detail: string } {
  const text = readText(path).toString('utf8');
  const lines = text.split(/\r\n|\r|\n/);
  if (!/^#\s*XDI\//i.test(lines[0] ?? '')) throw new InputError(path, "not an XDI file (first line is not '# XDI/...')");
  let i = 0;
  const header: string[] = [];
  while (i < lines.length && (lines[i].trim() === '' || lines[i].trim().startsWith('#'))) {
    if (lines[i].trim() !== '') header.push(lines[i].trim());
    i++;
  }
  // Column names: "Column.N: name [unit]" fields, else the last header line.
  const fromFields: string[] = [];
  let energyUnit: 'eV' | 'keV' | undefined;
  for (const h of header) {
    const m = /^#\s*Column\.(\d+)\s*:\s*(\S+)(?:\s+(\S+))?/i.exec(h);
    if (!m) continue;
    fromFields[Number(m[1]) - 1] = m[2].toLowerCase();
    if (Number(m[1]) === 1 && m[3]) {
      if (/^kev$/i.test(m[3])) energyUnit = 'keV';
      else if (/^ev$/i.test(m[3])) energyUnit = 'eV';
    }
  }
  const lastLabels = (header[header.length - 1] ?? '').replace(/^#\s*/, '').split(/\s+/).filter((s) => s !== '').map((s) => s.toLowerCase());
  const names = fromFields.length > 0 && !fromFields.includes(undefined as unknown as string) ? fromFields : lastLabels;
  const rows: number[][] = [];
  for (; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const cols = line.split(/\s+/);
    for (const c of cols) if (!NUMBER.test(c) && !/^[+-]?(nan|inf)$/i.test(c)) throw new InputError(path, `line ${i + 1}: '${c}' is not a number`);
    rows.push(cols.map(Number));
  }
  if (rows.length === 0) throw new InputError(path, 'no data lines after the header');
  const ncol = rows[0].length;
  if (rows.some((r) => r.length !== ncol)) throw new InputError(path, 'data lines have different numbers of columns');
  const col = (name: string) => names.indexOf(name);
  const eCol = col('energy') >= 0 ? col('energy') : 0;
  let detail: string;
  let mu: number[];
  const muName = MU_COLUMNS.find((n) => col(n) >= 0 && col(n) < ncol);
  if (muName) {
    mu = rows.map((r) => r[col(muName)]);
    detail = muName;
  } else {
    const i0 = col('i0'), it = col('itrans') >= 0 ? col('itrans') : col('i1');
    if (i0 < 0 || it < 0 || i0 >= ncol || it >= ncol) {
      throw new InputError(path, `no mu column (${MU_COLUMNS.join(', ')}) and no i0 + itrans columns to compute ln(i0/itrans) from; columns: ${names.join(', ') || '(unlabelled)'}`);
    }
    mu = rows.map((r) => (r[i0] > 0 && r[it] > 0 ? Math.log(r[i0] / r[it]) : NaN));
    detail = `ln(${names[i0]}/${names[it]})`;
  }
  const bad = mu.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new InputError(path, `mu is not finite at data row ${bad + 1} (energy ${rows[bad][eCol]})`);
  return { spectrum: finishSpectrum(path, rows.map((r) => r[eCol]), mu, energyUnit), detail };
}

export interface AthenaGroup {
  /** Athena's label (what the user sees) and its internal key. */
  label: string;
  key: string;
  energy: number[];
  mu: number[];
  isChi: boolean;
  /** The group's own normalisation parameters, where the project stores them. */
  params: AthenaNormParams;
}

/**
 * Athena's per-group normalisation parameters (Demeter's bkg_* arguments): e0 (eV), the
 * pre-edge and normalisation ranges relative to e0 (eV), the post-edge polynomial as a larch
 * degree (Demeter's bkg_nnorm counts terms: 1 constant, 2 line, 3 quadratic, so degree =
 * bkg_nnorm - 1), and the energy shift Athena adds to the group's energies.
 */
export interface AthenaNormParams {
  e0?: number;
  pre1?: number;
  pre2?: number;
  norm1?: number;
  norm2?: number;
  nnorm?: 0 | 1 | 2;
  eshift?: number;
}

function athenaParams(get: (k: string) => string | undefined): AthenaNormParams {
  const num = (k: string) => {
    const v = get(k);
    return v !== undefined && NUMBER.test(v.trim()) ? Number(v) : undefined;
  };
  const out: AthenaNormParams = {};
  const set = (k: keyof AthenaNormParams, v: number | undefined) => {
    if (v !== undefined) (out as Record<string, number>)[k] = v;
  };
  set('e0', num('bkg_e0'));
  set('pre1', num('bkg_pre1'));
  set('pre2', num('bkg_pre2'));
  set('norm1', num('bkg_nor1'));
  set('norm2', num('bkg_nor2'));
  const nn = num('bkg_nnorm');
  if (nn === 1 || nn === 2 || nn === 3) out.nnorm = (nn - 1) as 0 | 1 | 2;
  const es = num('bkg_eshift');
  if (es !== undefined && es !== 0) out.eshift = es;
  return out;
}

/** Quoted items of a Perl list `(...)` (single or double quotes, backslash escapes) or bare numbers. */
function perlList(s: string): string[] {
  const open = s.indexOf('(');
  const close = s.lastIndexOf(')');
  const body = open >= 0 && close > open ? s.slice(open + 1, close) : '';
  const out: string[] = [];
  const re = /'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|([^,\s=>]+)/g;
  for (const m of body.matchAll(re)) out.push((m[1] ?? m[2] ?? m[3]).replace(/\\(.)/g, '$1'));
  return out;
}

/** Every group of an Athena project file (gzip'd or not; Perl-data or Larch's JSON form). */
export function readAthenaGroups(path: string): AthenaGroup[] {
  let buf = readText(path);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipBounded(path, buf, 'an Athena project');
  const text = buf.toString('utf8');
  if (text.slice(0, 600).includes('_____header')) return athenaJson(path, text);
  if (!/^#\s*Athena project file/.test(text)) throw new InputError(path, "not an Athena project file (no '# Athena project file' first line)");
  const groups: AthenaGroup[] = [];
  let cur: { key: string; args: string[]; x?: number[]; y?: number[] } | null = null;
  const nums = (line: string, what: string, lineNo: number): number[] => {
    const items = perlList(line);
    return items.map((t) => {
      if (!NUMBER.test(t)) throw new InputError(path, `line ${lineNo}: ${what} value '${t}' is not a number`);
      return Number(t);
    });
  };
  const finish = (lineNo: number) => {
    if (!cur) return;
    if (!cur.x || !cur.y) throw new InputError(path, `group '${cur.key}' (ending at line ${lineNo}) has no @x / @y data`);
    const args = new Map<string, string>();
    for (let k = 0; k + 1 < cur.args.length; k += 2) args.set(cur.args[k], cur.args[k + 1]);
    const isChi = args.get('is_chi') === '1' || args.get('datatype') === 'chi';
    groups.push({ label: args.get('label') ?? cur.key, key: cur.key, energy: cur.x, mu: cur.y, isChi, params: athenaParams((k) => args.get(k)) });
    cur = null;
  };
  const lines = text.split(/\r\n|\r|\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line.startsWith('$old_group')) {
      finish(i + 1);
      cur = { key: perlList(`(${line.slice(line.indexOf('=') + 1).replace(/;$/, '')})`)[0] ?? '', args: [] };
    } else if (line.startsWith('[record]')) {
      finish(i + 1);
    } else if (cur && line.startsWith('@args')) {
      cur.args = perlList(line);
    } else if (cur && line.startsWith('@x ')) {
      cur.x = nums(line, '@x', i + 1);
    } else if (cur && line.startsWith('@y ')) {
      cur.y = nums(line, '@y', i + 1);
    }
  }
  finish(lines.length);
  if (groups.length === 0) throw new InputError(path, 'the Athena project holds no data groups');
  return groups;
}

function athenaJson(path: string, text: string): AthenaGroup[] {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new InputError(path, `damaged Athena JSON project: ${(e as Error).message}`);
  }
  const order = Object.entries(data).find(([k]) => k.startsWith('_____order'))?.[1];
  const keys = Array.isArray(order) ? (order as string[]) : Object.keys(data).filter((k) => !k.startsWith('_____'));
  return keys.map((key) => {
    const g = data[key] as { x?: number[]; y?: number[]; args?: Record<string, string> } | undefined;
    if (!g || !Array.isArray(g.x) || !Array.isArray(g.y)) throw new InputError(path, `group '${key}' has no x / y data`);
    const args = g.args ?? {};
    return {
      label: String(args.label ?? key), key, energy: g.x.map(Number), mu: g.y.map(Number),
      isChi: String(args.is_chi ?? '0') === '1' || args.datatype === 'chi',
      params: athenaParams((k) => (args[k] === undefined ? undefined : String(args[k]))),
    };
  });
}

function detectFormat(path: string): '2-column' | 'xdi' | 'athena' {
  const buf = readText(path);
  if (buf[0] === 0x1f && buf[1] === 0x8b) return 'athena';
  const head = buf.subarray(0, 600).toString('utf8');
  if (/^#\s*XDI\//i.test(head)) return 'xdi';
  if (/^#\s*Athena project file/.test(head) || head.includes('_____header')) return 'athena';
  return '2-column';
}

/** One reference spectrum from a file (any supported format); `group` selects an Athena group. */
export function readReferenceFile(name: string, path: string, group?: string): ReferenceSpectrum {
  const format = detectFormat(path);
  if (group !== undefined && format !== 'athena') throw new InputError(path, `'#${group}' selects a group, but this is not an Athena project (${format} file)`);
  if (format === '2-column') {
    const s = readSpectrumFile(path, 'reference');
    return { name, energy: s.energy, mu: s.values, format, source: path };
  }
  if (format === 'xdi') {
    const { spectrum, detail } = readXdi(path);
    return { name, energy: spectrum.energy, mu: spectrum.values, format, source: path, detail };
  }
  const groups = readAthenaGroups(path);
  let g: AthenaGroup | undefined;
  const labels = groups.map((x) => `'${x.label}'`).join(', ');
  if (group === undefined) {
    if (groups.length > 1) throw new InputError(path, `holds ${groups.length} groups (${labels}): choose one with ${name}=${path}#GROUP`);
    g = groups[0];
  } else {
    g = groups.find((x) => x.label === group) ?? groups.find((x) => x.key === group);
    if (!g) {
      const ci = groups.filter((x) => x.label.toLowerCase() === group.toLowerCase());
      if (ci.length === 1) g = ci[0];
    }
    if (!g) throw new InputError(`${path}#${group}`, `no such group; the project holds ${labels}`);
  }
  const where = `${path}#${g.label}`;
  if (g.isChi) throw new InputError(where, 'the group holds chi(k) data, not mu(E)');
  if (g.energy.length !== g.mu.length) throw new InputError(where, `@x has ${g.energy.length} values but @y has ${g.mu.length}`);
  const s = finishSpectrum(where, g.energy, g.mu);
  // Athena plots and normalises a group on its shifted energies (E + bkg_eshift).
  if (g.params.eshift) for (let i = 0; i < s.energy.length; i++) s.energy[i] += g.params.eshift;
  return { name, energy: s.energy, mu: s.values, format: 'athena', source: where, athena: g.params };
}

/**
 * mu of a reference on the stack's energies (linear interpolation). Every energy of the fit
 * window [i0, i1) must lie within the reference's range; energies outside the window that
 * it does not cover become NaN (the fit never uses them).
 */
export function referenceOnGrid(ref: { name: string; energy: Float64Array; mu: Float64Array; source: string }, energies: Float64Array, window?: { i0: number; i1: number }): Float64Array {
  const i0 = window?.i0 ?? 0, i1 = window?.i1 ?? energies.length;
  const lo = ref.energy[0], hi = ref.energy[ref.energy.length - 1];
  const eLo = energies[i0], eHi = energies[i1 - 1];
  const tol = 1e-6 * Math.max(Math.abs(eLo), Math.abs(eHi));
  if (eLo < lo - tol || eHi > hi + tol) {
    throw new InputError(
      ref.name,
      `reference ${ref.source} covers ${lo.toFixed(2)}..${hi.toFixed(2)} eV, which does not include the fit range ${eLo.toFixed(2)}..${eHi.toFixed(2)} eV; use a reference that covers it or narrow --window`,
    );
  }
  const out = new Float64Array(energies.length);
  const n = ref.energy.length;
  for (let k = 0; k < energies.length; k++) {
    const e = energies[k];
    if (e < lo - tol || e > hi + tol) {
      out[k] = NaN;
      continue;
    }
    if (e <= lo) out[k] = ref.mu[0];
    else if (e >= hi) out[k] = ref.mu[n - 1];
    else {
      let a = 0, b = n - 1;
      while (b - a > 1) {
        const m = (a + b) >>> 1;
        if (ref.energy[m] <= e) a = m;
        else b = m;
      }
      out[k] = ref.mu[a] + ((e - ref.energy[a]) / (ref.energy[b] - ref.energy[a])) * (ref.mu[b] - ref.mu[a]);
    }
  }
  return out;
}

export type RefSpec =
  | { name: string; kind: 'file'; path: string; group?: string }
  | { name: string; kind: 'region'; spec: string }
  /** A spectrum in memory (the library API): energies in eV, mu on them. */
  | { name: string; kind: 'spectrum'; energy: ArrayLike<number>; mu: ArrayLike<number> };

/** A reference given in memory, checked as a file's spectrum is (names, point count, increasing energies in eV). */
export function spectrumReference(s: { name: string; energy: ArrayLike<number>; mu: ArrayLike<number> }): ReferenceSpectrum {
  const name = checkName(String(s.name), `reference ${String(s.name)}`);
  const where = `reference ${name}`;
  const isArray = (x: unknown): x is ArrayLike<number> => typeof x === 'object' && x !== null && typeof (x as ArrayLike<number>).length === 'number';
  if (!isArray(s.energy) || !isArray(s.mu)) throw new InputError(where, 'expected arrays of energies (eV) and mu');
  if (s.energy.length !== s.mu.length) throw new InputError(where, `${s.energy.length} energies but ${s.mu.length} mu values`);
  const energy = Array.from(s.energy, Number);
  const mu = Array.from(s.mu, Number);
  const bad = energy.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw new InputError(where, `energy ${bad}: ${energy[bad]} is not a finite number`);
  const f = finishSpectrum(where, energy, mu, 'eV');
  return { name, energy: f.energy, mu: f.values, format: 'array', source: '(array)' };
}

/** Parses one `--ref NAME=SOURCE` argument (see the module comment). */
export function parseRefSpec(arg: string): RefSpec {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new InputError('--ref', `'${arg}': expected NAME=FILE, NAME=FILE#GROUP or NAME=rect:...|circle:...|mask:FILE`);
  const name = checkName(arg.slice(0, eq).trim(), `--ref ${arg.slice(0, eq).trim()}`);
  const src = arg.slice(eq + 1).trim();
  if (src === '') throw new InputError(`--ref ${name}`, 'no source after =');
  if (/^(rect|circle|mask):/i.test(src)) return { name, kind: 'region', spec: src };
  if (fs.existsSync(src)) return { name, kind: 'file', path: src };
  const hash = src.lastIndexOf('#');
  if (hash > 0 && hash < src.length - 1) return { name, kind: 'file', path: src.slice(0, hash), group: src.slice(hash + 1) };
  return { name, kind: 'file', path: src };
}

export interface LoadedReference {
  name: string;
  /** mu on the stack's energies (NaN outside the reference's range, outside the window only). */
  mu: Float64Array;
  format: ReferenceSpectrum['format'];
  source: string;
  detail?: string;
  /** For region references: the region and its pixel count. */
  region?: { spec: string; pixels: number };
  /** What normalisation was applied (src/pipeline/ref-norm.ts). */
  normalization: RefNormRecord;
}

/**
 * Every --ref on the stack's energies: files read and interpolated, region references
 * averaged over `stack` (the stack being fitted, e.g. its optical density) in one streamed
 * pass. `window` = index range of the fit window (coverage is checked there). Each is
 * normalised first (default 'auto': larch's norm where its energies allow; see ref-norm.ts).
 */
export async function loadReferences(specs: readonly RefSpec[], stack: StackSource, energies: Float64Array, window?: { i0: number; i1: number }, norm: RefNormOptions = { kind: 'auto' }): Promise<LoadedReference[]> {
  if (energies.length !== stack.nE) throw new RangeError(`loadReferences: ${energies.length} energies for a stack of ${stack.nE}`);
  const out: (LoadedReference | null)[] = specs.map(() => null);
  const regions: { name: string; region: Region; k: number }[] = [];
  for (let k = 0; k < specs.length; k++) {
    const s = specs[k];
    if (s.kind === 'file' || s.kind === 'spectrum') {
      const r = s.kind === 'file' ? readReferenceFile(s.name, s.path, s.group) : spectrumReference(s);
      const where = `--ref ${s.name}`;
      const raw = referenceOnGrid(r, energies, window);
      let mu: Float64Array;
      let record: RefNormRecord;
      if (norm.kind === 'none' || raw.every(Number.isFinite)) {
        // Placed on the stack's energies first, then normalised exactly as a pixel is: the
        // pre- and post-edge fits see the same energies as the pixels' fits.
        const n = normalizeReference(where, energies, raw, norm, r.athena);
        mu = n.values;
        record = { ...n.record, ...(n.record.method !== 'none' ? { grid: 'stack' as const } : {}) };
      } else {
        // The reference does not cover the whole stack: normalised on its own energies.
        const n = normalizeReference(where, r.energy, r.mu, norm, r.athena);
        mu = referenceOnGrid({ ...r, mu: n.values }, energies, window);
        record = { ...n.record, ...(n.record.method !== 'none' ? { grid: 'own' as const } : {}) };
      }
      out[k] = { name: s.name, mu, format: r.format, source: r.source, detail: r.detail, normalization: record };
    } else {
      regions.push({ name: s.name, region: await parseRegion(s.spec, stack.width, stack.height, `--ref ${s.name}`), k });
    }
  }
  if (regions.length > 0) {
    const stats = await regionSpectra(stack, regions);
    stats.forEach((st, i) => {
      const { k, region } = regions[i];
      const i0 = window?.i0 ?? 0, i1 = window?.i1 ?? energies.length;
      for (let e = i0; e < i1; e++) {
        if (!Number.isFinite(st.mean[e])) {
          throw new InputError(`--ref ${st.name}`, `the region ${region.spec} has no finite value at ${energies[e]} eV (every pixel masked there)`);
        }
      }
      const n = normalizeReference(`--ref ${st.name}`, energies, st.mean, norm);
      out[k] = { name: st.name, mu: n.values, format: 'region', source: region.spec, region: { spec: region.spec, pixels: region.pixels }, normalization: n.record };
    });
  }
  return out as LoadedReference[];
}
