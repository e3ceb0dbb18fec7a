/**
 * Reads an output folder into what the report shows (ReportMeta) and the maps themselves:
 * summary.json, every 2-D .npy map, the pixel spectra index, references.csv, elbow,
 * scree and cluster-spectra tables. `xanes report` and `xanes inspect` both start here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../io/errors.js';
import { blockHistogram, blockPercentiles, histogramPeak, type Blocks } from '../plot/histogram.js';
import { NpyFile } from '../io/npy.js';
import { E0_HIST_BIN_EV, E0_PEAK_HALF_RANGE_EV } from '../plot/ranges.js';
import { readSpectraIndex, spectraUrl } from './spectra-file.js';
import { MAP_CHUNK_BYTES, type MapKind, type ReportMap, type ReportMeta } from './meta.js';

export interface Collected {
  meta: ReportMeta;
  maps: Record<string, Float32Array>;
}

function readCsv(file: string): { head: string[]; rows: number[][] } | null {
  if (!fs.existsSync(file)) return null;
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  const head = lines[0].split(',');
  const rows = lines.slice(1).map((l) => l.split(',').map((v) => (v === 'nan' ? NaN : Number(v))));
  return { head, rows };
}

function unitOf(summary: Record<string, any>, name: string): string {
  const base = name.replace(/_stderr$/, '');
  return summary.maps?.[name]?.unit ?? summary.parameters?.mapUnits?.[name] ?? summary.model?.units?.[base]
    ?? (name === 'labels' ? 'cluster' : name === 'status' || name === 'stop' ? 'code' : name === 'iterations' ? 'iterations' : name === 'redchi' ? 'reduced chi-square' : '');
}

function statusCodes(summary: Record<string, any>): string[] | undefined {
  if (summary.status_codes) return Object.entries(summary.status_codes as Record<string, string>).sort((a, b) => Number(a[0]) - Number(b[0])).map(([, v]) => v);
  if (Array.isArray(summary.parameters?.statusNames)) return summary.parameters.statusNames;
  if (summary.counts?.status) return Object.keys(summary.counts.status);
  return undefined;
}

function kindOf(name: string): MapKind {
  return name === 'labels' ? 'labels' : name === 'status' ? 'status' : name === 'mask' ? 'mask' : 'value';
}

/** 2-98 percentile range, widened when degenerate. */
export function autoRange(data: Float32Array | Blocks): [number, number] {
  let [lo, hi] = blockPercentiles(asBlocks(data), [2, 98]);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  if (!(hi > lo)) [lo, hi] = [lo - 0.5, lo + 0.5];
  return [lo, hi];
}

function asBlocks(data: Float32Array | Blocks): Blocks {
  return typeof data === 'function' ? data : (visit) => visit(data);
}

/**
 * Colour ranges a map offers: its 2-98 percentile; for edge energies (e0_half, e0_deriv) the
 * fixed range the run was given (--range, e.g. 8338,8345 eV: the same range across samples)
 * and, for every map in eV, the e0 histogram's peak ± 1.5 eV. The map may come whole or as
 * blocks (read from its file one block at a time).
 */
export function presetsFor(name: string, unit: string, data: Float32Array | Blocks, summary: Record<string, any>): ReportMap['presets'] {
  const blocks = asBlocks(data);
  const out: ReportMap['presets'] = [];
  const [lo, hi] = autoRange(blocks);
  out.push({ name: '2-98 percentile', vmin: lo, vmax: hi });
  if (unit === 'eV') {
    const fixed = summary.options?.edge?.range;
    if ((name === 'e0_half' || name === 'e0_deriv') && Array.isArray(fixed) && fixed.length === 2 && fixed.every(Number.isFinite) && fixed[1] > fixed[0]) {
      out.push({ name: `fixed range ${fixed[0]}-${fixed[1]} eV (--range)`, vmin: fixed[0], vmax: fixed[1] });
    }
    // The peak of the histogram over the 1-99 percentile range (fitted energies can have wild outliers).
    const [p1, p99] = blockPercentiles(blocks, [1, 99]);
    if (Number.isFinite(p1) && Number.isFinite(p99) && (p99 - p1) / E0_HIST_BIN_EV < 1e6) {
      const lo = Math.floor(p1 / E0_HIST_BIN_EV) * E0_HIST_BIN_EV;
      const peak = histogramPeak(blockHistogram(blocks, E0_HIST_BIN_EV, { min: lo, max: lo + Math.ceil((p99 - lo) / E0_HIST_BIN_EV + 1) * E0_HIST_BIN_EV }));
      if (Number.isFinite(peak)) out.push({ name: `peak ± ${E0_PEAK_HALF_RANGE_EV} eV`, vmin: peak - E0_PEAK_HALF_RANGE_EV, vmax: peak + E0_PEAK_HALF_RANGE_EV });
    }
  }
  return out;
}

/**
 * A 2-D map file (.npy, [H, W] or [1, H, W]) read in blocks of `rows` rows as float32, one
 * block in memory at a time; null when its shape is not H x W.
 */
export interface MapBlocks {
  /**
   * Visits the map in blocks of `rows` rows (the last may be shorter), from the top. A block
   * is valid only during its visit (the next block reuses its memory): copy what you keep.
   */
  forEach(rows: number, visit: (block: Float32Array, y0: number) => void): void;
}

function mapBlocks(file: string, W: number, H: number): MapBlocks | null {
  const f = NpyFile.open(file);
  const s = f.shape.length === 3 && f.shape[0] === 1 ? f.shape.slice(1) : f.shape;
  f.close();
  if (s.length !== 2 || s[0] !== H || s[1] !== W) return null;
  return {
    forEach(rows, visit) {
      const g = NpyFile.open(file);
      try {
        // One block buffer for the whole pass (a block is valid only during its visit).
        const buf = g.dtype === 'float32' ? new Float32Array(Math.min(rows, H) * W) : undefined;
        for (let y0 = 0; y0 < H; y0 += rows) {
          const d = g.readRange(y0 * W, Math.min(rows, H - y0) * W, buf);
          visit(d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>), y0);
        }
      } finally {
        g.close();
      }
    },
  };
}

/** Rows per block when a map is measured: ~1 MiB of float32. */
const MEASURE_BLOCK_BYTES = 2 ** 20;

/**
 * Reads an output folder. Each map is measured (its colour presets) in blocks and handed to
 * `onMap` as blocks, one map at a time; with `keepMaps` false no map is ever held whole
 * (Collected.maps is empty), so report.html is written in a few MiB whatever the image size.
 * `xanes inspect` keeps the maps (keepMaps true).
 */
export function collect(
  dir: string,
  name = path.basename(path.resolve(dir)),
  mapChunkBytes = MAP_CHUNK_BYTES,
  onMap?: (m: ReportMap, blocks: MapBlocks) => void,
  keepMaps = true,
): Collected {
  const sfile = path.join(dir, 'summary.json');
  if (!fs.existsSync(sfile)) throw new InputError(dir, 'no summary.json: not an output folder of a finished xanes command');
  const summary = JSON.parse(fs.readFileSync(sfile, 'utf8')) as Record<string, any>;
  const command = String(summary.command ?? 'unknown');
  const shape = summary.inputs?.shape;
  let W = Number(shape?.width ?? summary.inputs?.width), H = Number(shape?.height ?? summary.inputs?.height);
  const npys = fs.readdirSync(dir).filter((f) => f.endsWith('.npy')).sort();
  if (!(W > 0 && H > 0)) {
    for (const f of npys) {
      const h = NpyFile.open(path.join(dir, f));
      const s = h.shape;
      h.close();
      if (s.length === 2) [H, W] = s;
      if (W > 0) break;
    }
  }
  if (!(W > 0 && H > 0)) throw new InputError(dir, 'no 2-D map to show');
  const maps: Record<string, Float32Array> = {};
  const shown = new Set<string>();
  const list: ReportMap[] = [];
  const measureRows = Math.max(1, Math.floor(MEASURE_BLOCK_BYTES / (4 * W)));
  const add = (name: string, mb: MapBlocks, s: Record<string, any>) => {
    const unit = unitOf(s, name);
    const kind = kindOf(name);
    if (keepMaps) {
      const whole = new Float32Array(W * H);
      mb.forEach(measureRows, (b, y0) => whole.set(b, y0 * W));
      maps[name] = whole;
    }
    shown.add(name);
    const chunkRows = Math.max(1, Math.floor(mapChunkBytes / (4 * W)));
    const blocks: Blocks = (visit) => mb.forEach(measureRows, (b) => visit(b));
    const m: ReportMap = { name, unit, kind, dir: `report_files/maps/${name}`, chunkRows, chunks: Math.ceil(H / chunkRows), ...(kind === 'status' ? { codes: statusCodes(s) } : {}), presets: kind === 'value' ? presetsFor(name, unit, blocks, s) : [] };
    list.push(m);
    onMap?.(m, mb);
  };
  for (const f of npys) {
    const m = mapBlocks(path.join(dir, f), W, H);
    if (m) add(f.slice(0, -4), m, summary);
  }
  // Clustering on maps of an earlier run: show the features beside the labels.
  const from = summary.inputs?.from;
  if (command === 'cluster' && typeof from === 'string' && Array.isArray(summary.inputs?.features)) {
    let fromSummary: Record<string, any> = {};
    try { fromSummary = JSON.parse(fs.readFileSync(path.join(from, 'summary.json'), 'utf8')); } catch { /* units unknown */ }
    for (const name of summary.inputs.features as string[]) {
      const f = path.join(from, `${name}.npy`);
      if (!shown.has(name) && fs.existsSync(f)) {
        const m = mapBlocks(f, W, H);
        if (m) add(name, m, fromSummary);
      }
    }
  }
  // A `xanes run` field's cluster step: its features are maps of the field's other steps
  // (summary.json "inputs.feature_files", relative to the folder).
  const featureFiles = summary.inputs?.feature_files;
  if (command === 'cluster' && Array.isArray(featureFiles)) {
    for (const rel of featureFiles as string[]) {
      const f = path.resolve(dir, rel);
      const name = path.basename(f, '.npy');
      if (shown.has(name) || !fs.existsSync(f)) continue;
      let stepSummary: Record<string, any> = {};
      try { stepSummary = JSON.parse(fs.readFileSync(path.join(path.dirname(f), 'summary.json'), 'utf8')); } catch { /* units unknown */ }
      const m = mapBlocks(f, W, H);
      if (m) add(name, m, stepSummary);
    }
  }
  // The interesting map first.
  const first = [...(command === 'cluster' ? ['labels'] : []), 'e0_half', 'fraction_' + (summary.parameters?.references?.[1] ?? ''), 'labels', 'b2', 'score_1'];
  list.sort((a, b) => {
    const ia = first.indexOf(a.name), ib = first.indexOf(b.name);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
  });

  const index = readSpectraIndex(dir);
  let energies: number[] | null = index?.energies ?? null;
  let references: ReportMeta['references'] = null;
  const refs = readCsv(path.join(dir, 'references.csv'));
  if (refs) {
    energies ??= refs.rows.map((r) => r[0]);
    references = refs.head.slice(1).map((name, k) => ({ name, mu: refs.rows.map((r) => r[k + 1]) }));
  }
  const elbowTable = summary.elbow?.table as { k: number; wcss: number }[] | undefined;
  const scree = readCsv(path.join(dir, 'scree.csv'));
  const cs = readCsv(path.join(dir, 'cluster_spectra.csv'));
  let clusterSpectra: ReportMeta['clusterSpectra'] = null;
  if (cs) {
    const k = (cs.head.length - 1) / 3;
    clusterSpectra = {
      energies: cs.rows.map((r) => r[0]), k,
      mean: Array.from({ length: k }, (_, j) => cs.rows.map((r) => r[1 + 3 * j])),
      std: Array.from({ length: k }, (_, j) => cs.rows.map((r) => r[2 + 3 * j])),
      pixels: Array.isArray(summary.counts) ? summary.counts : [],
    };
  }
  const rgbNames = (summary.rgb_legend?.channels as { map: string }[] | undefined)?.map((c) => c.map).filter((n) => shown.has(n));
  const { energies: _drop, ...spectra } = index ?? ({} as any);
  const meta: ReportMeta = {
    command,
    title: `xanes ${command}: ${name}`,
    width: W, height: H, maps: list, summary,
    energies,
    spectra: index ? spectra : null,
    spectraDir: spectraUrl(dir),
    references,
    elbow: elbowTable ? { table: elbowTable, k: Number(summary.elbow.k) } : null,
    scree: scree ? scree.rows.map((r) => ({ component: r[0], ratio: r[2] })) : null,
    clusterSpectra,
    rgb: rgbNames?.length ? { names: rgbNames, intensity: shown.has(summary.rgb_legend?.intensity?.map) ? summary.rgb_legend.intensity.map : null } : null,
  };
  return { meta, maps };
}
