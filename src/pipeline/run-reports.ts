/**
 * What `xanes run` writes beside each field's maps so that every folder it makes carries a
 * summary.json and a report.html, like the single commands' folders:
 *   <field>/<step>/summary.json   the step as the single command records it (command, inputs,
 *                                  options, parameters, status counts, map units), plus the
 *                                  field and run it belongs to; its report.html (maps, figures,
 *                                  pixel inspector) reads the field's kept spectra through
 *                                  "spectra_from": ".." (one copy per field, not per step)
 *   <field>/report_files/spectra/ the field's pixel spectra (src/report/spectra-file.ts)
 *   <field>/summary.json, combined/summary.json, summary.json: the overview pages
 *                                  (src/report/index-page.ts)
 * The step summaries use the single commands' keys (src/report/collect.ts and the
 * inspector read them the same way), built here from the run's own values.
 */
import path from 'node:path';
import { EDGE_MAP_UNITS } from './edge-step.js';
import { edgeSectionOf } from '../options/convert.js';
import { DEFAULT_EDGE_OPTIONS, type EdgeOptions, type EdgePlan } from './edge-plan.js';
import { FIT_STATUS_NAMES } from './fit-step.js';
import { modelRecord } from './fit-run.js';
import type { FitModel } from '../models/model.js';
import type { OutputDir } from '../io/outdir.js';
import { VERSION } from '../version.js';
import type { BackendSummary, RunClusterStepSummary, RunEdgeStepSummary, RunFieldSummary, RunFitStepSummary, RunLcfStepSummary, RunStepHead, SummaryHead } from './summary.js';
import type { InputProvenance } from './inputs.js';
import type { ElbowRow } from './elbow.js';
import type { RgbLegend } from '../plot/rgb.js';
import type { KmeansOutputSummary } from './cluster-outputs.js';

/** What every step of one field shares. */
export interface FieldContext {
  field: string;
  stack: string;
  energies: Float64Array;
  width: number;
  height: number;
  dtype: string;
  read: InputProvenance;
  backend: BackendSummary;
  /** What the stack's values are (absorbance, optical density). */
  quantity: string;
}

function common<C extends string>(ctx: FieldContext, command: C, statusCounts: Record<string, number> | null): RunStepHead<C> {
  const E = ctx.energies;
  return {
    tool: 'xanes-engine', version: VERSION, command, finished: true,
    part_of_run: { field: ctx.field, run_folder: '../..', step: command },
    // The field's kept pixel spectra, shared by its steps (src/report/spectra-file.ts).
    spectra_from: '..',
    inputs: {
      stack: ctx.stack, shape: { energies: E.length, height: ctx.height, width: ctx.width }, dtype: ctx.dtype, read: ctx.read,
      energy_range_eV: [E[0], E[E.length - 1]] as [number, number], quantity: ctx.quantity,
    },
    backend: ctx.backend,
    ...(statusCounts ? { counts: { pixels: ctx.width * ctx.height, status: statusCounts } } : {}),
  };
}

export function edgeStepSummary(ctx: FieldContext, plan: EdgePlan, edge: Partial<EdgeOptions>, statusCounts: Record<string, number>, statusNames: readonly string[], mapNames: readonly string[], range?: [number, number]): RunEdgeStepSummary {
  const E = ctx.energies;
  const options = { ...DEFAULT_EDGE_OPTIONS, ...edge };
  return {
    ...common(ctx, 'edge', statusCounts),
    options: { e0: plan.e0, edge: { ...edgeSectionOf(options), ...(range ? { range } : {}) } },
    parameters: {
      e0_eV: plan.e0, e0_source: edge.e0 !== undefined ? '--e0' : 'the first field\'s mean spectrum (max of smoothed derivative); it anchors every field\'s windows',
      nnorm_used: plan.post.degree,
      energies_fitted_eV: { pre: [E[plan.pre.i0], E[plan.pre.i1 - 1]] as [number, number], post: [E[plan.post.i0], E[plan.post.i1 - 1]] as [number, number] },
      energies_used: { pre: plan.pre.i1 - plan.pre.i0, post: plan.post.i1 - plan.post.i0, edge: plan.edge.i1 - plan.edge.i0 },
      // --range, when given: the report offers it as a preset beside 2-98 percentile and peak ± 1.5 eV.
      ...(range ? { colour_range_eV: range } : {}),
    },
    maps: Object.fromEntries(mapNames.map((n) => [n, { files: [`${n}.npy`, `${n}.tif`], unit: EDGE_MAP_UNITS[n] ?? '' }])),
    status_codes: Object.fromEntries(statusNames.map((n, i) => [i, n])),
  };
}

export function fitStepSummary(ctx: FieldContext, spec: string, model: FitModel, e0: number, statusCounts: Record<string, number>, mapNames: readonly string[], composition?: RunFitStepSummary['composition']): RunFitStepSummary {
  return {
    ...common(ctx, 'fit', statusCounts),
    model: modelRecord(spec, model),
    parameters: { e0_eV: e0 },
    ...(composition ? { composition } : {}),
    maps: [...mapNames],
    status_codes: Object.fromEntries(FIT_STATUS_NAMES.map((n, i) => [i, n])),
    stderr: 'from (J^T J)^-1 scaled by the reduced chi-square, at the solution',
  };
}

export function lcfStepSummary(ctx: FieldContext, info: NonNullable<RunFieldSummary['lcf']>, statusCounts: Record<string, number>, mapNames: readonly string[], rgbLegend: RgbLegend): RunLcfStepSummary {
  const { references, ...parameters } = info;
  return {
    ...common(ctx, 'lcf', statusCounts),
    references,
    parameters,
    rgb_legend: rgbLegend,
    maps: Object.fromEntries(mapNames.map((n) => [n, info.mapUnits[n] ?? ''])),
  };
}

/**
 * A field's cluster step: the k-means summary of this field's part (counts, fractions) with
 * the run's elbow, and the feature maps it was given (files relative to the folder, which
 * its report shows beside the labels).
 */
export function clusterStepSummary(ctx: FieldContext, part: KmeansOutputSummary, features: readonly string[], weight: string | undefined, elbow: { table: ElbowRow[]; k: number; rule: string } | undefined): RunClusterStepSummary {
  const file = (f: string) => {
    const [step, map] = f.split(':');
    return path.posix.join('..', step, `${map}.npy`);
  };
  return {
    ...common(ctx, 'cluster', null),
    inputs: { features, feature_files: features.map(file), weight: weight ?? null, weight_file: weight ? file(weight) : null, width: ctx.width, height: ctx.height, stack: ctx.stack },
    ...part,
    ...(elbow ? { elbow } : {}),
    note: 'k-means centres fitted across all fields of the run (../../combined/cluster/); counts and fractions of this field',
  };
}

export function writeSummary(dir: OutputDir, sub: string, summary: SummaryHead<string>): void {
  dir.writeText(path.join(sub, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
}
