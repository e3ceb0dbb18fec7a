/**
 * What report.html and `xanes inspect` know about an output folder (plain JSON): built in
 * Node from the folder's files (collect.ts), inlined into the page, read by the inspector.
 */
import type { SpectraIndex } from './spectra-file.js';

export type MapKind = 'value' | 'labels' | 'status' | 'mask';

export interface ReportMap {
  name: string;
  unit: string;
  kind: MapKind;
  /**
   * Folder of the map's script files (report_files/maps/<name>/c0000.js, ...), relative to
   * the page: blocks of `chunkRows` rows, so that a click loads one block per map.
   */
  dir: string;
  chunkRows: number;
  chunks: number;
  /** For status maps: the name of each code. */
  codes?: string[];
  /** Colour ranges offered besides the automatic 2-98 percentile one. */
  presets: { name: string; vmin: number; vmax: number }[];
}

export interface ReportMeta {
  command: string;
  title: string;
  width: number;
  height: number;
  maps: ReportMap[];
  /** summary.json as written by the run. */
  summary: Record<string, any>;
  /** The stack's energies (eV), when known. */
  energies: number[] | null;
  /** Pixel spectra (report_files/spectra/), when the run kept them. */
  spectra: Omit<SpectraIndex, 'energies'> | null;
  /** Where the spectra's script files are, relative to the page (a run's step folders share their field's). */
  spectraDir: string;
  /** LCF references as fitted, on `energies`. */
  references: { name: string; mu: number[] }[] | null;
  elbow: { table: { k: number; wcss: number }[]; k: number } | null;
  scree: { component: number; ratio: number }[] | null;
  clusterSpectra: { energies: number[]; k: number; mean: number[][]; std: number[][]; pixels: number[] } | null;
  /** Names of the maps that make the LCF RGB composite (fractions, intensity). */
  rgb: { names: string[]; intensity: string | null } | null;
}

/** Bytes of float32 per map script file (before base64). */
export const MAP_CHUNK_BYTES = 2 ** 20;

export function mapChunkName(c: number): string {
  return `c${String(c).padStart(4, '0')}.js`;
}
