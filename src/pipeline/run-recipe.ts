/**
 * `xanes run`: several steps over one pass of tiles per field of view, many fields as one
 * job, and the products that span fields (one e0 histogram over all fields; k-means centres
 * fitted across all fields, labels per field). Everything is written into one output
 * folder, whole or not at all.
 *
 * Layout of --out:
 *   <field>/<step>/...   per-field maps of edge, fit, lcf (as the single commands write them),
 *                        each step with its summary.json and report.html (maps, pixel inspector)
 *   <field>/cluster/...  per-field labels, distances, cluster fractions (summary.json, report.html)
 *   <field>/summary.json, report.html   the field's steps; report_files/spectra: its kept spectra
 *   combined/            e0 histogram over all fields (edge), cluster centres and elbow (summary.json, report.html)
 *   summary.json         fields, steps, parameters, backend, timings, peak RSS, "finished"; report.html
 * (src/pipeline/run-reports.ts and src/report/index-page.ts).
 */
import { alignStepOf, type AlignStep } from '../align/align.js';
import path from 'node:path';
import fs from 'node:fs';
import { edgeSectionOf } from '../options/convert.js';
import { globSync } from 'tinyglobby';
import { openInputs, meanSpectrum, withSamplingBands, type StackInputs, type OpenedStack } from './inputs.js';
import { runTiles, baselineBytes } from './run-tiles.js';
import { selectBackend, type BackendChoice } from './backend.js';
import { combineSteps, splitRun } from './combine.js';
import { makeEdgePlan, derivativeMaxEnergy, DEFAULT_EDGE_OPTIONS, type EdgeOptions } from './edge-plan.js';
import { edgeStep, EDGE_MAP_UNITS } from './edge-step.js';
import { fitStep } from './fit-step.js';
import { lcfStep, LCF_MASK_SIGMA } from './lcf-step.js';
import { collectGarbage, outputPhaseBytes, workerBytes } from './memory.js';
import { compositionOfFit, type CompositionRequest } from './composition.js';
import type { RefNorm } from './ref-norm.js';
import { parseMode, parseBackground } from './lcf-run.js';
import { E0_BIN_EV, writeE0Histogram, writeClusterProducts, readModel, assignField, fieldContextOf, type ClusterField, type ClusterFieldSource, type ClusterSettings, type SavedModel, type FieldClusterCounts, combinedClusterPlan, checkCombinedBudget } from './combined.js';
import { claimStudy, fieldSize, fieldState, isStudy, manifestName, partition, recipeDifference, removeLeftovers, sameRecord, shardOf, writeAtomic, type Shard, type ShardManifest } from './study.js';
import { OutputDir, outputFsError, realLocation } from '../io/outdir.js';
import { onInterrupt } from '../io/interrupt.js';
import { NpyFile, readNpy } from '../io/npy.js';
import os from 'node:os';
import type { Backend, PixelStep } from './step.js';
import { parseModelSpec } from '../models/model.js';
import { parseFitOptions, type RawFitOptions } from '../models/options.js';
import { loadReferences, parseRefSpec } from '../io/references.js';
import { windowRange } from '../cpu/lcf.js';
import { withOutputDir } from '../io/run-output.js';
import { InputError } from '../io/errors.js';
import { alignedCounts, countsCsv, percentiles } from '../plot/histogram.js';
import { renderMap } from '../plot/maps.js';
import { VERSION } from '../version.js';
import { RUN_STEPS, RECIPE_SECTIONS, type RunStepName, type Values } from '../options/schema.js';
import { recipeForm, type RecipeForm } from '../options/parse.js';
import type { BackendSummary, RunCombinedPageSummary, RunFieldPageSummary, RunFieldSummary, RunSummary } from './summary.js';
import { applyPixelMask, countStatus, loadPixelMask } from './pixel-mask.js';
import { EdgeStatus } from '../kernels/layout.js';
import { FitStatus } from '../models/layout.js';
import { LcfStatus } from '../cpu/lcf.js';
import { edgeOptionsOf, memoryBytes } from '../options/convert.js';
import { MARKER, inputFiles, checkOutPath } from '../io/outdir.js';
import { spectraRecorder, stackQuantity } from '../report/run-report.js';
import { SPECTRA_MAX_VALUES } from '../report/spectra-file.js';
import { writeReport } from '../report/html.js';
import { writeIndexPage, RUN_FIELD_COMMAND, RUN_COMBINED_COMMAND } from '../report/index-page.js';
import { renderRgbComposite } from '../plot/maps.js';
import { referencesCsv } from './lcf-run.js';
import { clusterStepSummary, edgeStepSummary, fitStepSummary, lcfStepSummary, writeSummary, type FieldContext } from './run-reports.js';

export { RUN_STEPS, type RunStepName };

export interface RunRecipe {
  /** --align / --shifts: align each field across energies first (src/align/align.ts). */
  align?: AlignStep;
  /** Stacks (paths or glob patterns), one per field of view; synthetic:HxW for a generated one. */
  stacks: string[];
  /** Shared by every field. */
  energies?: string;
  energyUnit?: string;
  flat?: string;
  dark?: string;
  /** Skip the flat and dark fields a stack file carries. */
  noFlat?: boolean;
  /** µm per pixel, overriding the files'. */
  pixelSize?: number;
  i0?: string;
  i0Region?: string;
  steps: RunStepName[];
  edge?: Partial<EdgeOptions>;
  /** --range: the fixed colour range of the e0_half pictures and the reports' preset, eV. */
  range?: [number, number];
  fit?: { model: string; composition?: CompositionRequest } & RawFitOptions;
  lcf?: { refs: string[]; mode?: string; background?: string; window?: [number, number]; normalize?: boolean; flatten?: boolean; refNorm?: RefNorm };
  /** features: `<step>:<map>` names, e.g. edge:e0_half, lcf:fraction_NiO. */
  cluster?: ClusterSettings;
  out: string;
  backend: BackendChoice;
  threads?: number;
  budgetBytes: number;
  /** --shard i/n | slurm | off (src/pipeline/study.ts); absent: slurm inside a Slurm job array, else off. */
  shard?: string;
  /** With a shard: skip the study's fields already finished. */
  resume?: boolean;
  /** A combined/cluster folder of xanes merge: label this shard's fields with its model. */
  assignFrom?: string;
  /** The options in the schema's names (src/options/schema.ts), recorded in summary.json. */
  options?: RecipeForm;
  /** --mask: an earlier run's mask, applied to every step of every field (same image size). */
  mask?: string;
}

export interface RunHooks {
  notice?: (line: string) => void;
  onField?: (index: number, total: number, name: string) => void;
  onTile?: (done: number, total: number) => void;
}

/** The most files one stack pattern may match (a pattern over a whole disk is a mistake). */
export const MAX_GLOB_MATCHES = 10_000;
/**
 * Names the run's own outputs use at the top of --out; a field of that name gets
 * `_field` appended (a stack called combined.npy is written to combined_field/).
 */
export const RESERVED_FIELD_NAMES = ['combined', 'summary.json', MARKER];

/** Stack arguments to fields with distinct, file-system-safe names. */
export function expandFields(stacks: string[]): { name: string; stack: string }[] {
  const paths: string[] = [];
  for (const s of stacks) {
    if (s.startsWith('synthetic:') || !/[*?[\]{}]/.test(s)) paths.push(s);
    else {
      // Bounded: no '**' (any depth), and at most MAX_GLOB_MATCHES files.
      if (s.includes('**')) throw new InputError(s, "'**' (any depth) is not allowed in a stack pattern; name the folder levels, e.g. data/*/fov_*.tif");
      const hits = globSync(s, { absolute: false, onlyFiles: true, followSymbolicLinks: false, deep: s.split('/').length + 1 }).sort();
      if (hits.length === 0) throw new InputError(s, 'the pattern matches no file');
      if (hits.length > MAX_GLOB_MATCHES) throw new InputError(s, `the pattern matches ${hits.length} files, more than ${MAX_GLOB_MATCHES}; make it narrower`);
      paths.push(...hits);
    }
  }
  if (paths.length === 0) throw new InputError('stacks', 'no stack given');
  const used = new Map<string, number>();
  return paths.map((p) => {
    let base = path.basename(p).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_.+-]/g, '_') || 'field';
    if (RESERVED_FIELD_NAMES.includes(base) || base.startsWith('.')) base = `${base.replace(/^\./, '_')}_field`;
    const n = (used.get(base) ?? 0) + 1;
    used.set(base, n);
    if (n > 1) base = `${base}_${n}`;
    return { name: base, stack: p };
  });
}

/**
 * A run from the schema's values (command line merged over a recipe): the library's
 * option objects, and the recipe form for summary.json. `recipeFile` names the recipe in errors.
 */
function requirePhaseEnergy(v: number | undefined, where: (cli: string, key: string) => string): number {
  if (v === undefined) throw new InputError(where('--phase-energy', 'fit.phaseEnergy'), 'needed with a phase image: its energy (eV)');
  return v;
}

export function recipeFromValues(values: Values, recipeFile?: string): RunRecipe {
  const c = values.common;
  const where = (cli: string, key: string) => (recipeFile ? `${recipeFile}: "${key}"` : cli);
  if (!c.out) throw new InputError(where('--out', 'out'), 'required (--out DIR, or "out" in the recipe)');
  if (!c.stacks?.length) throw new InputError(where('stacks', 'stacks'), 'no stack given');
  const f = values.fit, l = values.lcf, k = values.cluster;
  const kmeans = Object.fromEntries(Object.entries({ seed: k.seed, restarts: k.restarts, maxIter: k.maxIter, standardize: k.standardize }).filter(([, x]) => x !== undefined));
  return {
    stacks: c.stacks,
    energies: c.energies, energyUnit: c.energyUnit ?? 'eV', flat: c.flat, dark: c.dark, noFlat: c.noFlat, pixelSize: c.pixelSize, i0: c.i0, i0Region: c.i0Region,
    steps: (c.steps ?? []) as RunStepName[],
    edge: edgeOptionsOf(values.edge, c.e0),
    range: values.edge.range as [number, number] | undefined,
    fit: f.model !== undefined ? {
      model: f.model, init: f.init, fix: f.fix, bounds: f.bounds, maxIter: f.maxIter,
      composition: f.phase !== undefined ? { phase: f.phase, phaseEnergy: requirePhaseEnergy(f.phaseEnergy, where), deltaF2: f.deltaF2, fPrime: f.fPrime } : undefined,
    } : undefined,
    lcf: l.ref !== undefined ? { refs: l.ref, mode: l.mode, background: l.background, window: l.window as [number, number] | undefined, normalize: l.normalize, flatten: l.flatten, refNorm: l.refNorm } : undefined,
    cluster: k.features !== undefined ? { features: k.features, k: k.k, kRange: k.kRange, weight: k.weight, minWeight: k.minWeight, minClusterSize: k.minClusterSize, kmeans, ...(k.fitSample !== undefined ? { fitSample: k.fitSample } : {}) } : undefined,
    out: c.out,
    backend: c.backend ?? 'auto',
    threads: c.threads,
    budgetBytes: memoryBytes(c.memory),
    align: alignStepOf(values.align, c),
    shard: c.shard, resume: c.resume, assignFrom: c.assignFrom,
    mask: c.mask,
    options: recipeForm(values, RECIPE_SECTIONS),
  };
}

/** The status a --mask'ed pixel takes in each step (as edge, fit and lcf on their own). */
const MASKED_STATUS = { edge: EdgeStatus.NO_DATA, fit: FitStatus.MASKED_INPUT, lcf: LcfStatus.NO_DATA } as const;

/** What every field of a run shares: the parsed options, and what the first field fixes. */
interface RunContext {
  recipe: RunRecipe;
  hooks: RunHooks;
  notice: (line: string) => void;
  fields: { name: string; stack: string }[];
  model: ReturnType<typeof parseModelSpec> | null;
  fitOptions: ReturnType<typeof parseFitOptions> | null;
  lcfMode: ReturnType<typeof parseMode> | null;
  lcfBg: ReturnType<typeof parseBackground> | null;
  refSpecs: ReturnType<typeof parseRefSpec>[];
  open: (f: { stack: string }) => Promise<OpenedStack>;
  // Chosen once, on the first field this process runs, for the whole run.
  backend: Backend | null;
  backendInfo: BackendSummary;
  energiesRef: Float64Array | null;
  e0: number | undefined;
}

/** What a field gives the products over fields. */
interface FieldOutcome {
  summary: RunFieldSummary;
  e0Counts: Map<number, number> | null;
  /** What the field's cluster summary records about it. */
  ctx: FieldContext;
}

/** Checks the recipe and parses its options (before anything is read or written). */
function prepareRun(recipe: RunRecipe, hooks: RunHooks): RunContext {
  const notice = hooks.notice ?? ((l: string) => process.stderr.write(`${l}\n`));
  const steps = recipe.steps;
  for (const s of steps) if (!(RUN_STEPS as readonly string[]).includes(s)) throw new InputError('--steps', `unknown step '${s}' (steps: ${RUN_STEPS.join(', ')})`);
  if (steps.length === 0) throw new InputError('--steps', 'no step given');
  if (steps.includes('fit') && !recipe.fit?.model) throw new InputError('--model', 'the fit step needs --model');
  if (steps.includes('lcf') && !(recipe.lcf?.refs?.length)) throw new InputError('--ref', 'the lcf step needs at least one --ref');
  if (steps.includes('cluster')) {
    const c = recipe.cluster;
    if (!c?.features?.length) throw new InputError('--features', 'the cluster step needs --features step:map,... (e.g. edge:e0_half,lcf:fraction_NiO)');
    if ((c.k === undefined) === (c.kRange === undefined)) throw new InputError('--k', 'give exactly one of --k N and --k-range a:b');
    for (const f of [...c.features, ...(c.weight ? [c.weight] : [])]) {
      const [st, m] = f.split(':');
      if (!m || !steps.includes(st as RunStepName) || st === 'cluster') throw new InputError('--features', `'${f}': name a map of a step in this run as step:map (steps: ${steps.filter((x) => x !== 'cluster').join(', ')})`);
    }
  }
  const fields = expandFields(recipe.stacks);
  const model = recipe.fit ? parseModelSpec(recipe.fit.model) : null;
  const fitOptions = model ? parseFitOptions(recipe.fit!, model) : null;
  const lcfMode = recipe.lcf ? parseMode(recipe.lcf.mode) : null;
  const lcfBg = recipe.lcf ? parseBackground(recipe.lcf.background) : null;
  const refSpecs = recipe.lcf ? recipe.lcf.refs.map(parseRefSpec) : [];
  if (fields.length > 1 && refSpecs.some((r) => r.kind === 'region')) {
    throw new InputError('--ref', 'region references (rect:, circle:, mask:) are ambiguous across several fields; give reference files');
  }
  const open = (f: { stack: string }): Promise<OpenedStack> =>
    openInputs({ stack: f.stack, energies: recipe.energies, energyUnit: recipe.energyUnit, flat: recipe.flat, dark: recipe.dark, noFlat: recipe.noFlat, pixelSize: recipe.pixelSize, i0: recipe.i0, i0Region: recipe.i0Region, budgetBytes: recipe.budgetBytes , align: recipe.align } satisfies StackInputs);
  return { recipe, hooks, notice, fields, model, fitOptions, lcfMode, lcfBg, refSpecs, open, backend: null, backendInfo: {} as BackendSummary, energiesRef: null, e0: recipe.edge?.e0 };
}

/** The files the run reads, for the --out checks. */
function runInputs(ctx: RunContext): string[] {
  const r = ctx.recipe;
  return inputFiles([ctx.fields.map((f) => f.stack), r.energies, r.flat, r.dark, r.i0, r.align?.shifts, r.lcf?.refs ?? [], r.fit?.composition?.phase, r.mask]);
}

/**
 * The nominal edge that anchors every field's windows: --e0, or the derivative maximum of the
 * study's first field's mean spectrum (also in a shard that does not run that field, so every
 * shard uses the same windows as a single run).
 */
async function anchorE0(ctx: RunContext, inputs?: OpenedStack): Promise<void> {
  if (ctx.e0 !== undefined) return;
  const own = inputs ?? await ctx.open(ctx.fields[0]);
  try {
    ctx.energiesRef = own.energies;
    ctx.e0 = derivativeMaxEnergy(own.energies, await withSamplingBands(own.bandCache, ctx.recipe.budgetBytes, () => meanSpectrum(own.source)), 1);
  } finally {
    if (!inputs) own.close();
  }
}

/**
 * One field: its steps over one pass of tiles, its maps and pictures written under `prefix`
 * of `dir` ('<field>/' in a single run's folder; '' in the field's own folder of a study),
 * its e0 bin counts and field.json (last). Returns what the products over fields need.
 */
async function runField(ctx: RunContext, fi: number, dir: OutputDir, prefix: string): Promise<FieldOutcome> {
  const { recipe, notice, hooks } = ctx;
  const steps = recipe.steps;
  const field = ctx.fields[fi];
  // Opened (and checked) first, so a field that cannot be read is the run's one error line.
  const inputs = await ctx.open(field);
  hooks.onField?.(fi, ctx.fields.length, field.name);
  try {
    inputs.warnings.forEach(notice);
    const { source, energies } = inputs;
    const energiesRef = ctx.energiesRef;
    if (energiesRef && (energiesRef.length !== energies.length || energiesRef.some((e, i) => Math.abs(e - energies[i]) > 1e-6))) {
      throw new InputError(field.stack, 'its energies differ from the first field\'s: one run needs one energy grid');
    }
    ctx.energiesRef = energies;
    // The nominal edge of the first field anchors every field's windows, so maps compare.
    await anchorE0(ctx, fi === 0 ? inputs : undefined);
    const e0 = ctx.e0!;
    const pixelSteps: PixelStep[] = [];
    let lcfInfo: RunFieldSummary['lcf'] | null = null;
    let lcfRefs: { name: string; mu: Float64Array }[] = [];
    let lcfStepInfo: ReturnType<typeof lcfStep>['info'] | null = null;
    let lcfNormalized = false;
    const edgePlan = steps.includes('edge') ? makeEdgePlan(energies, e0, { ...DEFAULT_EDGE_OPTIONS, ...recipe.edge, e0 }, recipe.energies ?? field.stack) : null;
    if (edgePlan) pixelSteps.push(edgeStep(edgePlan));
    if (steps.includes('fit')) pixelSteps.push(fitStep(ctx.model!, energies, ctx.fitOptions!, { e0 }));
    if (steps.includes('lcf')) {
      const win = recipe.lcf!.window;
      const lo = recipe.lcf!;
      const refNorm: RefNorm = lo.refNorm ?? (lo.flatten ? 'flat' : 'auto');
      const refs = await loadReferences(ctx.refSpecs, source, energies, windowRange(energies, win), { kind: refNorm, edge: recipe.edge });
      // As `xanes lcf`: --mask-sigma (default 3 for lcf, not the edge step's 1) masks the
      // total weight and, with --normalize, the edge step of the normalisation.
      const maskSigma = recipe.edge?.maskSigma ?? LCF_MASK_SIGMA;
      const normOptions: EdgeOptions = { ...DEFAULT_EDGE_OPTIONS, ...recipe.edge, e0, maskSigma };
      const normalize = lo.normalize ? { plan: makeEdgePlan(energies, e0, normOptions, recipe.energies ?? field.stack), flatten: lo.flatten === true } : undefined;
      const ls = lcfStep(refs.map((r) => ({ name: r.name, mu: r.mu })), energies, { mode: ctx.lcfMode!, background: ctx.lcfBg!, window: win }, normalize, maskSigma);
      ls.info.warnings.forEach((w) => notice(`xanes: ${w}`));
      // The normalisation as `xanes lcf` records it (the report's inspector redoes it on a pixel).
      const normRecord = normalize ? {
        method: normalize.flatten ? 'flat' : 'norm', convention: 'xraylarch 0.9.58 pre_edge, per pixel from its own e0',
        e0_eV: normalize.plan.e0, nnorm_used: normalize.plan.post.degree, mask_sigma: normOptions.maskSigma, edge: edgeSectionOf(normOptions),
      } : null;
      lcfInfo = { ...ls.info, normalize: normRecord, ref_norm: refNorm, references: refs.map((r) => ({ name: r.name, source: r.source, normalization: r.normalization })) };
      lcfRefs = refs.map((r) => ({ name: r.name, mu: r.mu }));
      lcfStepInfo = ls.info;
      lcfNormalized = lo.normalize === true;
      pixelSteps.push(ls);
    }
    const combined = combineSteps(pixelSteps);
    if (!ctx.backend) {
      const sel = await selectBackend(recipe.backend, notice, 'pixels', recipe.threads);
      ctx.backendInfo = { name: sel.backend.name, adapter: sel.backend.adapter, ...(sel.auto ? { auto: sel.auto } : {}) };
      ctx.backend = sel.backend;
    }
    inputs.resetMaskedPoints();
    // The report's spectra of this field: at most 1/32 of the budget, as in `xanes edge`.
    const recorder = spectraRecorder(inputs, Math.min(SPECTRA_MAX_VALUES, Math.floor(recipe.budgetBytes / 32 / 4)));
    // After the tiles, beside the maps it holds: each step's outputs (src/pipeline/memory.ts),
    // and the fit's composition maps and the lcf composite (float32 / RGBA each).
    const afterBytes = outputPhaseBytes(source.height, source.width) + 16 * source.height * source.width;
    const run = await runTiles(source, combined, ctx.backend, { budgetBytes: recipe.budgetBytes, sourceBytesPerPixel: inputs.extraBytesPerPixel, onTile: hooks.onTile, onTileData: recorder.add, afterBytes, readerBytes: inputs.readerBytes, bandCache: inputs.bandCache });
    const per = splitRun(run, pixelSteps);
    const { width: W, height: H } = run;
    const stepSummaries: RunFieldSummary['steps'] = {};
    dir.recordInput(field.name, { stack: field.stack, energies, pixelSizeUm: inputs.pixelSizeUm, volume: inputs.volume, read: inputs.provenance });
    // --mask: NaN in every map and the step's no-data status where the mask is 0.
    const pixelMask = recipe.mask ? loadPixelMask(recipe.mask, H, W) : null;
    for (const s of pixelSteps) {
      if (pixelMask) {
        applyPixelMask(per[s.name].maps, per[s.name].status, pixelMask, MASKED_STATUS[s.name as keyof typeof MASKED_STATUS]);
        per[s.name].statusCounts = countStatus(per[s.name].status, s.statusNames);
      }
      dir.writeStepMaps(s.mapNames, per[s.name].maps, per[s.name].status, H, W, path.join(prefix, s.name), s.statusNames);
      stepSummaries[s.name as 'edge' | 'fit' | 'lcf'] = { status: per[s.name].statusCounts, maps: s.mapNames };
    }
    if (per.fit && recipe.fit?.composition) {
      // Composition maps (seed 002): beside the fit's maps, usable as cluster features.
      if (ctx.fields.length > 1) throw new InputError('--phase', 'one phase image serves one field: run the composition maps field by field');
      const comp = compositionOfFit(per.fit.maps, recipe.fit.composition, energies, e0, H, W);
      Object.assign(per.fit.maps, comp.maps);
      dir.writeStepMaps(Object.keys(comp.maps), comp.maps, per.fit.status, H, W, path.join(prefix, 'fit'));
      stepSummaries.composition = comp.record;
    }
    let e0Counts: Map<number, number> | null = null;
    if (per.edge) {
      const e0map = per.edge.maps.e0_half;
      // This field's share of the e0 histogram over fields (src/pipeline/combined.ts).
      e0Counts = alignedCounts(e0map, E0_BIN_EV);
      dir.writeText(path.join(prefix, 'edge', 'e0_counts.csv'), countsCsv(e0Counts, E0_BIN_EV));
      const [lo, hi] = recipe.range ?? percentiles(e0map, [2, 98]);
      if (Number.isFinite(lo) && hi > lo) dir.writeBytes(path.join(prefix, 'edge', 'e0_half.png'), await renderMap({ data: e0map, width: W, height: H, vmin: lo, vmax: hi, title: `${field.name}: e0_half ${recipe.range ? 'fixed range' : '2-98 percentile'}`, unit: 'eV', label: 'e0_half', pixelSizeUm: inputs.pixelSizeUm?.x }));
    }
    // Each step's folder as the single command writes it: summary.json, report.html; the
    // field's spectra once, in <field>/report_files/spectra (the steps' "spectra_from").
    recorder.write(dir.file(prefix));
    const fctx: FieldContext = { field: field.name, stack: field.stack, energies, width: W, height: H, dtype: source.dtype, read: inputs.provenance, backend: ctx.backendInfo, quantity: stackQuantity(inputs) };
    for (const s of pixelSteps) {
      const sub = path.join(prefix, s.name);
      const counts = per[s.name].statusCounts;
      if (s.name === 'edge') writeSummary(dir, sub, edgeStepSummary(fctx, edgePlan!, recipe.edge ?? {}, counts, s.statusNames, s.mapNames, recipe.range));
      else if (s.name === 'fit') writeSummary(dir, sub, fitStepSummary(fctx, recipe.fit!.model, ctx.model!, e0, counts, Object.keys(per.fit.maps), stepSummaries.composition));
      else if (s.name === 'lcf') {
        // The references as fitted and the RGB composite, as `xanes lcf` writes them.
        dir.writeText(path.join(sub, 'references.csv'), referencesCsv(energies, lcfRefs));
        const names = lcfStepInfo!.references.slice(0, 3);
        const brightness = lcfNormalized ? 'edge_step' : 'total';
        const rgb = await renderRgbComposite(names.map((n) => per.lcf.maps[`fraction_${n}`]), W, H, { names, intensity: per.lcf.maps[brightness], intensityLabel: brightness, title: `${field.name}: lcf ${lcfStepInfo!.mode}` });
        dir.writeBytes(path.join(sub, 'rgb.png'), rgb.png);
        writeSummary(dir, sub, lcfStepSummary(fctx, lcfInfo!, counts, s.mapNames, rgb.legend));
      } else continue;
      writeReport(dir.file(sub), `${field.name}/${s.name}`);
    }
    if (steps.includes('cluster')) {
      // The clustering across fields reads the maps back from their .npy files when it runs.
      for (const f of [...recipe.cluster!.features, ...(recipe.cluster!.weight ? [recipe.cluster!.weight] : [])]) {
        const [st, m] = f.split(':');
        if (!per[st]?.maps[m]) throw new InputError('--features', `the ${st} step has no map '${m}' (it has: ${Object.keys(per[st]?.maps ?? {}).join(', ')})`);
      }
    }
    const summary: RunFieldSummary = {
      field: field.name, stack: field.stack, shape: { energies: source.nE, height: H, width: W }, dtype: source.dtype, read: inputs.provenance,
      steps: stepSummaries, tiles: run.tilesRun, rows_per_tile: run.tilePlan.rowsPerTile, seconds: run.seconds,
      masked_transmission_points: inputs.maskedPoints(), ...(lcfInfo ? { lcf: lcfInfo } : {}),
      ...(inputs.alignment ? { alignment: inputs.alignment.record } : {}),
    };
    if (prefix === '') {
      // A study's field: its overview page now (xanes merge adds the cluster step's counts).
      writeSummary(dir, '', fieldPageSummary(summary));
      writeIndexPage(dir.tmp, field.name);
    }
    // Written last: a field is finished when its field.json says so (src/pipeline/study.ts).
    dir.writeText(path.join(prefix, 'field.json'), JSON.stringify({
      tool: 'xanes-engine', version: VERSION, ...summary, e0_eV: e0, backend: ctx.backendInfo,
      energies: Array.from(energies), quantity: fctx.quantity,
      // What the field was computed with (a shard's --resume compares it: a changed recipe must not reuse it).
      recipe: fieldRecipe(recipe),
      // What the study's results.h5 (xanes merge) needs beyond the files, as a single run records it.
      results_h5: { pixel_size_um: inputs.pixelSizeUm ?? null, volume: inputs.volume ?? null, status_names: Object.fromEntries(pixelSteps.map((s) => [s.name, s.statusNames])) },
      finished: true,
    }, null, 2) + '\n');
    return { summary, e0Counts, ctx: fctx };
  } finally {
    inputs.close();
  }
}

/** The run's summary.json (single run), or the summary a shard prints. */
function runSummary(ctx: RunContext, fieldSummaries: RunFieldSummary[], combinedSummary: RunSummary['combined'], t0: number, extra: Record<string, unknown> = {}): RunSummary {
  const recipe = ctx.recipe;
  const total = fieldSummaries.reduce((acc, f) => acc + f.shape.height * f.shape.width, 0);
  const seconds = (performance.now() - t0) / 1000;
  return {
    tool: 'xanes-engine', version: VERSION, command: 'run' as const, finished: true,
    steps: recipe.steps, fields: fieldSummaries, combined: combinedSummary, ...extra,
    // What was asked for, in the names a recipe takes (a valid recipe), and what was used.
    options: recipe.options ?? null,
    parameters: { e0_eV: ctx.e0, edge: edgeSectionOf({ ...DEFAULT_EDGE_OPTIONS, ...recipe.edge }) },
    backend: ctx.backendInfo,
    spectra: total,
    timings_s: { total: seconds, spectra_per_s: total / seconds },
    memory: { budget_MiB: recipe.budgetBytes / 2 ** 20, peak_rss_MiB: Math.round(process.resourceUsage().maxRSS / 1024) },
    map_units: { edge: EDGE_MAP_UNITS },
  };
}

export async function runRecipe(recipe: RunRecipe, hooks: RunHooks = {}): Promise<RunSummary> {
  const ctx = prepareRun(recipe, hooks);
  const shard = shardOf(recipe.shard);
  if (recipe.assignFrom) return assignRun(ctx, shard);
  if (shard) return shardRun(ctx, shard);
  if (recipe.resume) throw new InputError('--resume', 'only with --shard (a single run writes its folder whole or not at all)');
  const inputs = runInputs(ctx);
  checkOutPath(recipe.out, inputs);
  const t0 = performance.now();
  return withOutputDir(recipe.out, inputs, async (dir) => {
    const outcomes: FieldOutcome[] = [];
    for (let fi = 0; fi < ctx.fields.length; fi++) outcomes.push(await runField(ctx, fi, dir, ctx.fields[fi].name));
    // Products over all fields (src/pipeline/combined.ts, shared with xanes merge).
    const combinedSummary: RunSummary['combined'] = {};
    fs.mkdirSync(dir.file('combined'), { recursive: true });
    const counts = outcomes.flatMap((o) => (o.e0Counts ? [o.e0Counts] : []));
    Object.assign(combinedSummary, await writeE0Histogram(counts, ctx.fields.length, dir.file('combined')));
    const fieldSummaries = outcomes.map((o) => o.summary);
    if (recipe.steps.includes('cluster')) {
      const c = recipe.cluster!;
      const sources = ctx.fields.map((f, i) => clusterFieldSource(dir.file(''), f.name, c.features, c.weight ?? null, outcomes[i].ctx));
      // The same plan and check as xanes merge, with this process as it is after the fields.
      checkCombinedBudget(combinedClusterPlan(c, sources, { fit: true, labels: true }), sources.length, c.features.length, baselineBytes() + workerBytes(ctx.backend!), recipe.budgetBytes);
      combinedSummary.cluster = await writeClusterProducts(ctx.backend!, c, sources, {
        combinedDir: dir.file('combined'), fieldClusterDir: (name) => dir.file(path.join(name, 'cluster')),
        onField: (name, counts) => {
          const fs_ = fieldSummaries.find((x) => x.field === name);
          if (fs_) (fs_.steps as Record<string, unknown>).cluster = counts;
        },
      });
    }
    const summary = runSummary(ctx, fieldSummaries, combinedSummary, t0);
    // The overview pages: each field, the products across fields, the run.
    for (const f of fieldSummaries) {
      writeSummary(dir, String(f.field), fieldPageSummary(f));
      writeIndexPage(dir.file(String(f.field)));
    }
    writeSummary(dir, 'combined', combinedPageSummary(ctx.fields.length, combinedSummary));
    writeIndexPage(dir.file('combined'));
    dir.writeText('summary.json', JSON.stringify(summary, null, 2) + '\n');
    writeIndexPage(dir.tmp, path.basename(dir.finalPath));
    return summary;
  });
}

/** A field's summary.json (its overview page reads it). */
export const fieldPageSummary = (f: RunFieldSummary): RunFieldPageSummary => ({ tool: 'xanes-engine', version: VERSION, command: RUN_FIELD_COMMAND, finished: true, ...f });
/** combined/summary.json (its overview page reads it). */
export const combinedPageSummary = (nFields: number, combined: RunSummary['combined']): RunCombinedPageSummary => ({ tool: 'xanes-engine', version: VERSION, command: RUN_COMBINED_COMMAND, finished: true, fields: nFields, ...combined });

/** The options a shard records (and all shards of a study share): the recipe's, less the shard's own. */
function studyOptions(recipe: RunRecipe): Record<string, unknown> {
  const { shard: _s, resume: _r, assignFrom: _a, out: _o, threads: _t, memory: _m, ...rest } = (recipe.options ?? {}) as Record<string, unknown>;
  return rest;
}

/** What a finished field was computed with: the steps, the study's options and the clustering (field.json "recipe"). */
function fieldRecipe(recipe: RunRecipe): Record<string, unknown> {
  return { steps: recipe.steps, options: studyOptions(recipe), cluster: recipe.cluster ?? null };
}

/**
 * One shard of a study: the fields of `partition` for this shard, each built in its own
 * partial folder and renamed into `<out>/<field>` when finished; the shard's manifest in
 * `<out>/shards/`. With --resume, fields already finished are left as they are.
 */
async function shardRun(ctx: RunContext, shard: Shard): Promise<RunSummary> {
  const { recipe, notice } = ctx;
  const t0 = performance.now();
  const sizes = ctx.fields.map((f) => fieldSize(f.stack));
  const mine = partition(sizes, shard.count)[shard.index];
  const study = claimStudy(recipe.out, runInputs(ctx));
  if (shard.from === 'slurm') notice(`xanes: shard ${shard.index}/${shard.count} (from SLURM_ARRAY_TASK_ID): ${mine.length} of ${ctx.fields.length} field(s)`);
  const manifestFile = path.join(study, manifestName(shard));
  const manifest: ShardManifest = {
    tool: 'xanes-engine', shard: { index: shard.index, count: shard.count, from: shard.from },
    fields: ctx.fields.map((f, i) => ({ name: f.name, stack: f.stack, size: sizes[i] })),
    mine: mine.map((i) => ctx.fields[i].name), skipped: [],
    steps: recipe.steps, options: studyOptions(recipe), cluster: recipe.cluster ?? null, threads: recipe.threads,
    host: os.hostname(), pid: process.pid, started: new Date().toISOString(), finished: false,
  };
  const pending = mine.filter((i) => {
    if (!recipe.resume) return true;
    const st = fieldState(study, ctx.fields[i].name);
    if (st.state !== 'finished') return true;
    if (st.record.stack !== ctx.fields[i].stack) throw new InputError(path.join(recipe.out, ctx.fields[i].name), `was finished from another stack (${String(st.record.stack)}); this study's recipe changed: use a new --out`);
    const was = st.record.recipe as Record<string, unknown> | undefined;
    if (!was || !sameRecord(was, fieldRecipe(recipe))) {
      const what = was ? `other ${recipeDifference(was, fieldRecipe(recipe))}` : 'a version that did not record its recipe';
      throw new InputError(path.join(recipe.out, ctx.fields[i].name), `was finished with ${what}; --resume reuses only fields of the same recipe: use a new --out`);
    }
    manifest.skipped.push(ctx.fields[i].name);
    return false;
  });
  writeAtomic(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
  const summaries: RunFieldSummary[] = [];
  for (const fi of pending) {
    const name = ctx.fields[fi].name;
    removeLeftovers(study, name);
    let dir: OutputDir | null = null;
    const release = onInterrupt(() => dir?.abandon());
    try {
      dir = OutputDir.createPart(study, name);
      if (fi !== 0) await anchorE0(ctx); // (field 0 anchors it as it runs)
      summaries.push((await runField(ctx, fi, dir, '')).summary);
      dir.commit();
    } catch (e) {
      dir?.abandon();
      if (e instanceof InputError) throw e;
      throw (dir && outputFsError(e, path.join(recipe.out, name), dir)) ?? e;
    } finally {
      release();
    }
  }
  manifest.e0_eV = ctx.e0;
  manifest.finished = true;
  manifest.ended = new Date().toISOString();
  writeAtomic(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
  return runSummary(ctx, summaries, {}, t0, { shard: manifest.shard, skipped: manifest.skipped, study: recipe.out });
}

/**
 * The second pass of a study: this shard's fields labelled with the k-means model that
 * `xanes merge --no-labels` fitted (its combined/cluster folder), written as
 * `<field>/cluster/` exactly as a single run writes them.
 */
async function assignRun(ctx: RunContext, shard: Shard | null): Promise<RunSummary> {
  const { recipe, notice } = ctx;
  const t0 = performance.now();
  const saved = readModel(recipe.assignFrom!);
  const study = realLocation(recipe.out);
  if (!isStudy(study)) throw new InputError(recipe.out, 'is not a study folder of xanes run --shard; --assign-from labels the fields of one');
  const s = shard ?? { index: 0, count: 1, from: 'option' as const };
  const mine = partition(ctx.fields.map((f) => fieldSize(f.stack)), s.count)[s.index];
  const sel = await selectBackend(recipe.backend, notice, 'pixels', recipe.threads);
  ctx.backendInfo = { name: sel.backend.name, adapter: sel.backend.adapter };
  const done: RunFieldSummary[] = [];
  const labelled = mine.map((fi) => {
    const name = ctx.fields[fi].name;
    const st = fieldState(study, name);
    if (st.state !== 'finished') throw new InputError(path.join(recipe.out, name), `is not finished (${st.why}); run its shard (with --resume) first`);
    return { name, record: st.record, source: clusterFieldSource(study, name, saved.features, saved.weight, fieldContextOf(st.record)) };
  });
  // One field at a time: its maps, labels and cluster folder (the plan of xanes merge's labels).
  const settings: ClusterSettings = { features: saved.features, weight: saved.weight ?? undefined };
  checkCombinedBudget(combinedClusterPlan(settings, labelled.map((t) => t.source), { fit: false, labels: true }), labelled.length, saved.features.length, baselineBytes() + workerBytes(sel.backend), recipe.budgetBytes);
  for (const { name, record, source } of labelled) {
    await labelStudyField(sel.backend, saved, study, name, source);
    done.push({ ...(record as unknown as RunFieldSummary), field: name });
  }
  return runSummary(ctx, done, {}, t0, { assigned_from: recipe.assignFrom, shard: s });
}

/**
 * A field of the clustering across fields whose maps are read back when needed from
 * `<root>/<name>/<step>/<map>.npy` (its shape from the first map's header).
 */
export function clusterFieldSource(root: string, name: string, features: string[], weight: string | null, ctx?: FieldContext): ClusterFieldSource {
  const [st, m] = features[0].split(':');
  const file = path.join(root, name, st, `${m}.npy`);
  if (!fs.existsSync(file)) throw new InputError(file, `the feature map ${features[0]} of field ${name} is missing`);
  const f = NpyFile.open(file);
  let shape: number[];
  try {
    shape = f.shape;
  } finally {
    f.close();
  }
  const height = shape.slice(0, -1).reduce((x, y) => x * y, 1), width = shape[shape.length - 1];
  return { name, width, height, ctx, load: () => readClusterField(root, name, features, weight) };
}

/**
 * One field of --assign-from: its cluster folder built aside and renamed, its page updated.
 * A function of its own, so that the field's maps are let go when it returns.
 */
async function labelStudyField(backend: Backend, saved: SavedModel, study: string, name: string, source: ClusterFieldSource): Promise<void> {
  collectGarbage();
  const part = OutputDir.createPart(path.join(study, name), 'cluster');
  const release = onInterrupt(() => part.abandon());
  try {
    const counts = await assignField(backend, saved, { ...source.load(), ctx: source.ctx }, part.tmp);
    part.commit();
    updateFieldPage(study, name, counts);
  } catch (e) {
    part.abandon();
    throw e;
  } finally {
    release();
  }
}

/** A finished field's cluster inputs, read back from its maps (`step:map` -> <field>/<step>/<map>.npy). */
export function readClusterField(study: string, name: string, features: string[], weight: string | null): ClusterField {
  let W = 0, H = 0;
  const read = (f: string): Float32Array => {
    const [st, m] = f.split(':');
    const file = path.join(study, name, st, `${m}.npy`);
    if (!fs.existsSync(file)) throw new InputError(file, `the feature map ${f} of field ${name} is missing`);
    const a = readNpy(file);
    if (a.dtype !== 'float32') throw new InputError(file, `expected a float32 map, got ${a.dtype}`);
    const h = a.shape.slice(0, -1).reduce((x, y) => x * y, 1), w = a.shape[a.shape.length - 1];
    if (W && (w !== W || h !== H)) throw new InputError(file, `is ${h} x ${w}, the field's other maps ${H} x ${W}`);
    [W, H] = [w, h];
    return a.data as Float32Array;
  };
  const feats = features.map(read);
  const wmap = weight ? read(weight) : undefined;
  return { name, width: W, height: H, features: feats, weight: wmap };
}

/** A study field's summary.json and overview page, with its cluster step's counts added. */
export function updateFieldPage(study: string, name: string, counts: FieldClusterCounts): void {
  const dir = path.join(study, name);
  const file = path.join(dir, 'summary.json');
  if (!fs.existsSync(file)) return;
  const s = JSON.parse(fs.readFileSync(file, 'utf8'));
  s.steps = { ...(s.steps ?? {}), cluster: counts };
  writeAtomic(file, JSON.stringify(s, null, 2) + '\n');
  writeIndexPage(dir, name);
}
