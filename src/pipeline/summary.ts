/**
 * What each command writes to summary.json, as types: the library's run functions return
 * these objects (runEdge, runFit, runLcf, runSpectra, runPcaCommand, runClusterCommand,
 * runAlign, runRecipe), and the run functions build them as these types, so a field
 * added to or removed from a summary is a type error until it is described here.
 * Option blocks ("options") are the schema's values (src/options/schema.ts, valibot's
 * InferOutput): the same names and types a recipe takes.
 */
import type { SectionValues, RunStepName } from '../options/schema.js';
import type { RecipeForm } from '../options/parse.js';
import type { RefNorm } from './ref-norm.js';
import type { BackendName } from './step.js';
import type { InputProvenance } from './inputs.js';
import type { MemorySummary } from './memory.js';
import type { AlignmentRecord } from '../align/align.js';
import type { LcfInfo } from './lcf-step.js';
import type { LoadedReference } from '../io/references.js';
import type { NNorm } from './edge-plan.js';
import type { RgbLegend } from '../plot/rgb.js';
import type { ExplainedRow } from '../cpu/pca.js';
import type { KmeansOutputSummary } from './cluster-outputs.js';
import type { KmeansOptions } from './kmeans.js';
import type { SpectraSummary } from './spectra.js';
import type { compositionOfFit } from './composition.js';
import type { FIT_STATUS_NAMES } from '../models/layout.js';
import type { I0 } from '../stack/od.js';

type CompositionRecord = ReturnType<typeof compositionOfFit>['record'];
type FitStatusName = (typeof FIT_STATUS_NAMES)[number];

/** The first fields of every summary.json. */
export interface SummaryHead<Command extends string> {
  tool: 'xanes-engine';
  version: string;
  command: Command;
  /** Written last: a summary without it belongs to a run that did not finish. */
  finished: true;
}

/** The backend a run used, and how --backend auto chose it. */
export interface BackendSummary {
  name: BackendName;
  adapter: string;
  auto?: { rule: string; reason: string };
}

export interface ShapeSummary {
  energies: number;
  height: number;
  width: number;
}

/** Pixel counts of a per-pixel command. */
export interface PixelCounts {
  pixels: number;
  /** Pixels per status name (the step's status codes). */
  status: Record<string, number>;
  /** Pixels masked by --mask. */
  masked_by_mask: number;
  /** Pixel-energy points masked for non-positive transmission (flat/dark or I0). */
  masked_transmission_points: number;
}

/** Memory of a per-pixel command that does not plan its outputs (fit, lcf). */
export interface TileMemorySummary {
  budget_MiB: number;
  rows_per_tile: number;
  tiles: number;
  peak_rss_MiB: number;
}

export interface EdgeSummary extends SummaryHead<'edge'> {
  alignment: AlignmentRecord | null;
  /** ISO 8601 start time. */
  started: string;
  inputs: {
    stack: string;
    energies?: string;
    energy_unit: string;
    flat: string | null;
    dark: string | null;
    shape: ShapeSummary;
    dtype: string;
    read: InputProvenance;
    energy_range_eV: [number, number];
  };
  /** The options as used (defaults filled in), in the names a recipe takes. */
  options: { e0: number | null; edge: SectionValues<'edge'> };
  parameters: {
    e0_eV: number;
    e0_source: string;
    nnorm_used: number;
    normalization: string;
    energies_fitted_eV: { pre: [number, number]; post: [number, number] };
    energies_used: { pre: number; post: number; edge: number };
    colour_range_eV: [number, number];
    histogram_bin_eV: number;
    histogram_range_eV: [number, number] | null;
    histogram_outside_pixels: number;
    histogram_peak_eV: number;
  };
  backend: BackendSummary;
  memory: MemorySummary;
  timings_s: { read: number; compute_wait: number; total: number; spectra_per_s: number };
  counts: PixelCounts & { used: number; masked: number };
  /** Map name -> its files and unit. */
  maps: Record<string, { files: string[]; unit: string }>;
  /** Status code -> name. */
  status_codes: Record<string, string>;
}

export interface FitSummary extends SummaryHead<'fit'> {
  alignment: AlignmentRecord | null;
  inputs: { stack: string; energies?: string; flat: string | null; dark: string | null; shape: ShapeSummary; read: InputProvenance };
  model: {
    spec: string;
    parameters: string[];
    /** Parameter -> unit (by its role: eV for energies and widths, data units for amplitudes). */
    units: Record<string, string>;
    derived: string[];
  };
  options: {
    e0: number | null;
    fit: Required<Pick<SectionValues<'fit'>, 'model' | 'init' | 'fix' | 'maxIter'>> & {
      /** [lower, upper], null for an open side. */
      bounds: Record<string, [number | null, number | null]>;
    };
  };
  parameters: { e0_eV: number };
  /** With --phase: the composition maps (src/pipeline/composition.ts). */
  composition?: CompositionRecord;
  backend: BackendSummary;
  /** `stop`: pixels per stopping rule (FIT_STOP_NAMES, src/models/layout.ts). */
  counts: PixelCounts & { stop: Record<string, number> };
  /** The stopping tolerances used (FIT_TUNING). */
  stopping: { ftol: number; xtol: number; gtol: number; rule: string };
  median_iterations: number | null;
  timings_s: { read: number; compute_wait: number; total: number; fits_per_s: number };
  memory: TileMemorySummary;
  maps: string[];
  status_codes: Record<string, FitStatusName>;
  stderr: string;
}

export interface LcfSummary extends SummaryHead<'lcf'> {
  alignment: AlignmentRecord | null;
  inputs: {
    stack: string;
    energies: string;
    i0: string | null;
    i0_region: string | null;
    flat: string | null;
    dark: string | null;
    shape: ShapeSummary;
    read: InputProvenance;
    energy_range_eV: [number, number];
    i0_source: I0['source'] | null;
  };
  references: Pick<LoadedReference, 'name' | 'format' | 'source' | 'detail' | 'normalization'>[];
  parameters: LcfInfo & {
    normalize: {
      method: 'norm' | 'flat';
      convention: string;
      e0_eV: number;
      pre_eV: [number, number];
      post_eV: [number, number | 'end'];
      nnorm: NNorm;
      nnorm_used: number;
      mask_sigma: number;
      /** Every edge option the normalisation used. */
      edge: SectionValues<'edge'>;
    } | null;
    ref_norm: SectionValues<'lcf'>['refNorm'] & string;
    mask_sigma: number;
  };
  backend: BackendSummary;
  counts: PixelCounts;
  rgb_legend: RgbLegend;
  timings_s: { read: number; compute_wait: number; total: number; pixels_per_s: number };
  memory: TileMemorySummary;
  /** Map name -> unit. */
  maps: Record<string, string>;
}

export interface SpectraCommandSummary extends SummaryHead<'spectra'>, SpectraSummary {
  inputs: { stack: string; compare: string | null; i0: string | null; i0_region: string | null };
}

export interface PcaSummary extends SummaryHead<'pca'> {
  alignment: AlignmentRecord | null;
  inputs: { stack: string; energies?: string; flat: string | null; dark: string | null; shape: ShapeSummary; read: InputProvenance };
  parameters: { components: number; reconstruct: number | null; mask: string | null };
  backend: BackendSummary;
  explained_variance: ExplainedRow[];
  significant_components: number;
  pixels: { total: number; included: number; excluded: number; masked_by_mask: number };
  tiles: { covariance: number; projection: number; rowsPerTile: number };
  memory: { budget_MiB: number; peak_rss_MiB: number };
  timings_s: { total: number };
  files: string[];
}

export interface ClusterSummary extends SummaryHead<'cluster'>, Omit<KmeansOutputSummary, 'backend'> {
  alignment: AlignmentRecord | null;
  inputs: {
    features: string[] | null;
    from: string | null;
    stack: string | null;
    pca: number | null;
    weight: string | null;
    min_weight: number | null;
    mask: string | null;
    width: number;
    height: number;
  };
  pixels_excluded_by_mask_or_weight: number;
  /** The k-means options as used. */
  parameters: Omit<KmeansOptions, 'k'> & { k: number | null; k_range: number[] | null };
  /** Clustering a stack's PCA scores (--pca). */
  pca?: { components: number; explained_variance: ExplainedRow[]; significant_components: number };
  backend: BackendSummary;
  memory: { budget_MiB: number; peak_rss_MiB: number };
  timings_s: { total: number };
  files: string[];
}

export interface AlignSummary extends SummaryHead<'align'> {
  started: string;
  inputs: {
    stack: string;
    energies: string | null;
    energy_unit: string;
    flat: string | null;
    dark: string | null;
    i0: string | null;
    i0_region: string | null;
    shifts: string | null;
    shape: ShapeSummary;
    dtype: string;
    energy_range_eV: [number, number];
  };
  alignment: AlignmentRecord & {
    sign_convention: string;
    applied_with: string;
    crop: string;
    output_area: { x0: number; y0: number; x1: number; y1: number };
    outside_field: string;
  };
  outputs: { files: string[]; aligned_shape: ShapeSummary; dtype: 'float32' };
  backend: { name: string; adapter: string; reason: string };
  memory: { budget_MiB: number; peak_rss_MiB: number };
  timings_s: { total: number; shifts: number; apply: number; images_per_s: number };
}

/** One field of view of `xanes run`. */
export interface RunFieldSummary {
  field: string;
  stack: string;
  shape: ShapeSummary;
  dtype: string;
  read: InputProvenance;
  /** Per step: its status counts and maps; `composition` (with --phase): the composition record. */
  steps: {
    edge?: RunStepCounts;
    fit?: RunStepCounts;
    lcf?: RunStepCounts;
    composition?: CompositionRecord;
    cluster?: { counts: number[]; fractions: number[]; maps: string[] };
  };
  tiles: number;
  rows_per_tile: number;
  seconds: { read: number; compute_wait: number; total: number };
  masked_transmission_points: number;
  lcf?: Omit<LcfInfo, 'references'> & {
    /** With normalize: the normalisation as `xanes lcf` records it. */
    normalize: { method: string; convention: string; e0_eV: number; nnorm_used: number; mask_sigma: number; edge: SectionValues<'edge'> } | null;
    ref_norm: RefNorm;
    references: Pick<LoadedReference, 'name' | 'source' | 'normalization'>[];
  };
  alignment?: AlignmentRecord;
}

export interface RunSummary extends SummaryHead<'run'> {
  steps: RunStepName[];
  fields: RunFieldSummary[];
  /** Products over all fields. */
  combined: {
    e0_histogram_peak_eV?: number;
    cluster?: Pick<KmeansOutputSummary, 'k' | 'wcss' | 'wcss_units' | 'standardization' | 'pixels_included' | 'pixels_excluded' | 'counts' | 'fractions' | 'weighted_fractions' | 'iterations' | 'converged' | 'warnings' | 'elbow'> & {
      features: string[];
      weight: string | null;
      min_weight: number | null;
      /** The pixels the centres were fitted on (src/pipeline/cluster-sample.ts); every pixel is labelled. */
      fit_sample: { limit: number; pixels: number; included: number; rule: string; wcss: number; standardization: string; elbow: string };
    };
  };
  /** What was asked for, as a recipe (a valid one: fed back in, it gives the same run). */
  options: RecipeForm | null;
  parameters: { e0_eV: number | undefined; edge: SectionValues<'edge'> };
  backend: BackendSummary;
  /** Spectra in all fields. */
  spectra: number;
  timings_s: { total: number; spectra_per_s: number };
  memory: { budget_MiB: number; peak_rss_MiB: number };
  map_units: { edge: Record<string, string> };
}

/** A per-pixel step's pixels per status and its maps (in a field of `xanes run`). */
export interface RunStepCounts {
  status: Record<string, number>;
  maps: string[];
}

/**
 * The summary.json of each step folder of `xanes run` (<field>/<step>/), in the single
 * command's keys (src/pipeline/run-reports.ts), plus the field and run it belongs to.
 */
export interface RunStepHead<Command extends string> extends SummaryHead<Command> {
  part_of_run: { field: string; run_folder: string; step: string };
  /** Where the field's kept pixel spectra are (the report's inspector). */
  spectra_from: string;
  inputs: { stack: string; shape: ShapeSummary; dtype: string; read: InputProvenance; energy_range_eV: [number, number]; quantity: string };
  backend: BackendSummary;
  counts?: { pixels: number; status: Record<string, number> };
}

export interface RunEdgeStepSummary extends RunStepHead<'edge'> {
  options: { e0: number; edge: SectionValues<'edge'> };
  parameters: {
    e0_eV: number;
    e0_source: string;
    nnorm_used: number;
    energies_fitted_eV: { pre: [number, number]; post: [number, number] };
    energies_used: { pre: number; post: number; edge: number };
    colour_range_eV?: [number, number];
  };
  maps: Record<string, { files: string[]; unit: string }>;
  status_codes: Record<string, string>;
}

export interface RunFitStepSummary extends RunStepHead<'fit'> {
  model: FitSummary['model'];
  parameters: { e0_eV: number };
  composition?: CompositionRecord;
  maps: string[];
  status_codes: Record<string, FitStatusName>;
  stderr: string;
}

type RunLcfInfo = NonNullable<RunFieldSummary['lcf']>;

export interface RunLcfStepSummary extends RunStepHead<'lcf'> {
  references: RunLcfInfo['references'];
  parameters: Omit<RunLcfInfo, 'references'>;
  rgb_legend: RgbLegend;
  /** Map name -> unit. */
  maps: Record<string, string>;
}

export type RunClusterStepSummary = Omit<RunStepHead<'cluster'>, 'inputs' | 'backend' | 'counts'> & KmeansOutputSummary & {
  inputs: { features: readonly string[]; feature_files: string[]; weight: string | null; weight_file: string | null; width: number; height: number; stack: string };
  note: string;
};

/** <field>/summary.json of `xanes run`: the field's part of the run's summary. */
export type RunFieldPageSummary = SummaryHead<string> & RunFieldSummary;
/** combined/summary.json of `xanes run`: the products across fields. */
export type RunCombinedPageSummary = SummaryHead<string> & { fields: number } & RunSummary['combined'];
