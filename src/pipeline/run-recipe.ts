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
import { applyPixelMask, countStatus, loadPixelMask } from './pixel-mask.js';
import { EdgeStatus } from '../kernels/layout.js';
import { FitStatus } from '../models/layout.js';
import { LcfStatus } from '../cpu/lcf.js';
import { wcssUnits } from './standardize.js';
import { alignStepOf, type AlignStep } from '../align/align.js';
import path from 'node:path';
import fs from 'node:fs';
import { edgeSectionOf } from '../options/convert.js';
import { globSync } from 'tinyglobby';
import { openInputs, meanSpectrum, type StackInputs, type OpenedStack } from './inputs.js';
import { runTiles } from './run-tiles.js';
import { outputPhaseBytes } from './memory.js';
import { selectBackend, type BackendChoice } from './backend.js';
import { combineSteps, splitRun } from './combine.js';
import { makeEdgePlan, derivativeMaxEnergy, DEFAULT_EDGE_OPTIONS, type EdgeOptions } from './edge-plan.js';
import { edgeStep, EDGE_MAP_UNITS } from './edge-step.js';
import { fitStep } from './fit-step.js';
import { lcfStep, LCF_MASK_SIGMA } from './lcf-step.js';
import { compositionOfFit, type CompositionRequest } from './composition.js';
import type { RefNorm } from './ref-norm.js';
import { parseMode, parseBackground } from './lcf-run.js';
import { kmeansFit, type KmeansOptions } from './kmeans.js';
import { elbow, type ElbowResult } from './elbow.js';
import { featuresFromMaps } from '../cpu/kmeans.js';
import { writeKmeansOutputs } from './cluster-outputs.js';
import { clusterStats } from './cluster-stats.js';
import { centresCsv, clusterStatsCsv, elbowCsv } from '../io/cluster-csv.js';
import { renderElbowPng } from '../plot/cluster.js';
import type { Backend, PixelStep } from './step.js';
import { parseModelSpec } from '../models/model.js';
import { parseFitOptions, type RawFitOptions } from '../models/options.js';
import { loadReferences, parseRefSpec } from '../io/references.js';
import { windowRange } from '../cpu/lcf.js';
import { withOutputDir } from '../io/run-output.js';
import { InputError } from '../io/errors.js';
import { histogram, histogramCsv, histogramPeak, percentiles, robustHistogramRange } from '../plot/histogram.js';
import { renderHistogram } from '../plot/histogram-png.js';
import { renderMap } from '../plot/maps.js';
import { VERSION } from '../version.js';
import { RUN_STEPS, RECIPE_SECTIONS, type RunStepName, type Values } from '../options/schema.js';
import { recipeForm, type RecipeForm } from '../options/parse.js';
import type { BackendSummary, RunCombinedPageSummary, RunFieldSummary, RunSummary } from './summary.js';
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
  cluster?: {
    /** `<step>:<map>` names, e.g. edge:e0_half, lcf:fraction_NiO. */
    features: string[];
    k?: number;
    kRange?: number[];
    weight?: string;
    minWeight?: number;
    minClusterSize?: number;
    kmeans?: Omit<KmeansOptions, 'k'>;
  };
  out: string;
  backend: BackendChoice;
  threads?: number;
  budgetBytes: number;
  /** --mask: an earlier run's mask, applied to every step of every field (same image size). */
  mask?: string;
  /** The options in the schema's names (src/options/schema.ts), recorded in summary.json. */
  options?: RecipeForm;
}

export interface RunHooks {
  notice?: (line: string) => void;
  onField?: (index: number, total: number, name: string) => void;
  onTile?: (done: number, total: number) => void;
}

/** The status a --mask'ed pixel takes in each step (as edge, fit and lcf on their own). */
const MASKED_STATUS = { edge: EdgeStatus.NO_DATA, fit: FitStatus.MASKED_INPUT, lcf: LcfStatus.NO_DATA } as const;

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
    cluster: k.features !== undefined ? { features: k.features, k: k.k, kRange: k.kRange, weight: k.weight, minWeight: k.minWeight, minClusterSize: k.minClusterSize, kmeans } : undefined,
    out: c.out,
    backend: c.backend ?? 'auto',
    threads: c.threads,
    budgetBytes: memoryBytes(c.memory),
    align: alignStepOf(values.align, c),
    mask: c.mask,
    options: recipeForm(values, RECIPE_SECTIONS),
  };
}

export async function runRecipe(recipe: RunRecipe, hooks: RunHooks = {}): Promise<RunSummary> {
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
  const inputs = inputFiles([fields.map((f) => f.stack), recipe.energies, recipe.flat, recipe.dark, recipe.i0, recipe.align?.shifts, recipe.lcf?.refs ?? [], recipe.fit?.composition?.phase, recipe.mask]);
  checkOutPath(recipe.out, inputs);
  const model = recipe.fit ? parseModelSpec(recipe.fit.model) : null;
  const fitOptions = model ? parseFitOptions(recipe.fit!, model) : null;
  const lcfMode = recipe.lcf ? parseMode(recipe.lcf.mode) : null;
  const lcfBg = recipe.lcf ? parseBackground(recipe.lcf.background) : null;
  const refSpecs = recipe.lcf ? recipe.lcf.refs.map(parseRefSpec) : [];
  if (fields.length > 1 && refSpecs.some((r) => r.kind === 'region')) {
    throw new InputError('--ref', 'region references (rect:, circle:, mask:) are ambiguous across several fields; give reference files');
  }
  const t0 = performance.now();
  const open = (f: { stack: string }): Promise<OpenedStack> =>
    openInputs({ stack: f.stack, energies: recipe.energies, energyUnit: recipe.energyUnit, flat: recipe.flat, dark: recipe.dark, noFlat: recipe.noFlat, pixelSize: recipe.pixelSize, i0: recipe.i0, i0Region: recipe.i0Region, budgetBytes: recipe.budgetBytes , align: recipe.align } satisfies StackInputs);

  return withOutputDir(recipe.out, inputs, async (dir) => {
    const fieldSummaries: RunFieldSummary[] = [];
    const e0Maps: Float32Array[] = [];
    const clusterMaps: { name: string; width: number; height: number; features: Float32Array[]; weight?: Float32Array; ctx: FieldContext }[] = [];
    let backendInfo = {} as BackendSummary; // set on the first field
    // Chosen once, on the first field, for the whole run.
    let backend: Backend | null = null;
    let energiesRef: Float64Array | null = null;
    let e0: number | undefined = recipe.edge?.e0;
    for (let fi = 0; fi < fields.length; fi++) {
      const field = fields[fi];
      // Opened (and checked) first, so a field that cannot be read is the run's one error line.
      const inputs = await open(field);
      hooks.onField?.(fi, fields.length, field.name);
      try {
        inputs.warnings.forEach(notice);
        const { source, energies } = inputs;
        if (energiesRef && (energiesRef.length !== energies.length || energiesRef.some((e, i) => Math.abs(e - energies[i]) > 1e-6))) {
          throw new InputError(field.stack, 'its energies differ from the first field\'s: one run needs one energy grid');
        }
        energiesRef = energies;
        // The nominal edge of the first field anchors every field's windows, so maps compare.
        if (e0 === undefined) e0 = derivativeMaxEnergy(energies, await meanSpectrum(source), 1);
        const pixelSteps: PixelStep[] = [];
        let lcfInfo: RunFieldSummary['lcf'] | null = null;
        let lcfRefs: { name: string; mu: Float64Array }[] = [];
        let lcfStepInfo: ReturnType<typeof lcfStep>['info'] | null = null;
        let lcfNormalized = false;
        const edgePlan = steps.includes('edge') ? makeEdgePlan(energies, e0, { ...DEFAULT_EDGE_OPTIONS, ...recipe.edge, e0 }, recipe.energies ?? field.stack) : null;
        if (edgePlan) pixelSteps.push(edgeStep(edgePlan));
        if (steps.includes('fit')) pixelSteps.push(fitStep(model!, energies, fitOptions!, { e0 }));
        if (steps.includes('lcf')) {
          const win = recipe.lcf!.window;
          const lo = recipe.lcf!;
          const refNorm: RefNorm = lo.refNorm ?? (lo.flatten ? 'flat' : 'auto');
          const refs = await loadReferences(refSpecs, source, energies, windowRange(energies, win), { kind: refNorm, edge: recipe.edge });
          // As `xanes lcf`: --mask-sigma (default 3 for lcf, not the edge step's 1) masks the
          // total weight and, with --normalize, the edge step of the normalisation.
          const maskSigma = recipe.edge?.maskSigma ?? LCF_MASK_SIGMA;
          const normOptions: EdgeOptions = { ...DEFAULT_EDGE_OPTIONS, ...recipe.edge, e0, maskSigma };
          const normalize = lo.normalize ? { plan: makeEdgePlan(energies, e0, normOptions, recipe.energies ?? field.stack), flatten: lo.flatten === true } : undefined;
          const ls = lcfStep(refs.map((r) => ({ name: r.name, mu: r.mu })), energies, { mode: lcfMode!, background: lcfBg!, window: win }, normalize, maskSigma);
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
        if (!backend) {
          const sel = await selectBackend(recipe.backend, notice, 'pixels', recipe.threads);
          backendInfo = { name: sel.backend.name, adapter: sel.backend.adapter, ...(sel.auto ? { auto: sel.auto } : {}) };
          backend = sel.backend;
        }
        inputs.resetMaskedPoints();
        // The report's spectra of this field: at most 1/32 of the budget, as in `xanes edge`.
        const recorder = spectraRecorder(inputs, Math.min(SPECTRA_MAX_VALUES, Math.floor(recipe.budgetBytes / 32 / 4)));
        // After the tiles, beside the maps it holds: each step's outputs (src/pipeline/memory.ts),
        // and the fit's composition maps and the lcf composite (float32 / RGBA each).
        const afterBytes = outputPhaseBytes(source.height, source.width) + 16 * source.height * source.width;
        const run = await runTiles(source, combined, backend, { budgetBytes: recipe.budgetBytes, sourceBytesPerPixel: inputs.extraBytesPerPixel, onTile: hooks.onTile, onTileData: recorder.add, afterBytes, readerBytes: inputs.readerBytes });
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
          dir.writeStepMaps(s.mapNames, per[s.name].maps, per[s.name].status, H, W, path.join(field.name, s.name), s.statusNames);
          stepSummaries[s.name as 'edge' | 'fit' | 'lcf'] = { status: per[s.name].statusCounts, maps: s.mapNames };
        }
        if (per.fit && recipe.fit?.composition) {
          // Composition maps (seed 002): beside the fit's maps, usable as cluster features.
          if (fields.length > 1) throw new InputError('--phase', 'one phase image serves one field: run the composition maps field by field');
          const comp = compositionOfFit(per.fit.maps, recipe.fit.composition, energies, e0!, H, W);
          Object.assign(per.fit.maps, comp.maps);
          dir.writeStepMaps(Object.keys(comp.maps), comp.maps, per.fit.status, H, W, path.join(field.name, 'fit'));
          stepSummaries.composition = comp.record;
        }
        if (per.edge) {
          const e0map = per.edge.maps.e0_half;
          e0Maps.push(e0map);
          const [lo, hi] = recipe.range ?? percentiles(e0map, [2, 98]);
          if (Number.isFinite(lo) && hi > lo) dir.writeBytes(path.join(field.name, 'edge', 'e0_half.png'), await renderMap({ data: e0map, width: W, height: H, vmin: lo, vmax: hi, title: `${field.name}: e0_half ${recipe.range ? 'fixed range' : '2-98 percentile'}`, unit: 'eV', label: 'e0_half', pixelSizeUm: inputs.pixelSizeUm?.x }));
        }
        // Each step's folder as the single command writes it: summary.json, report.html; the
        // field's spectra once, in <field>/report_files/spectra (the steps' "spectra_from").
        recorder.write(dir.file(field.name));
        const ctx: FieldContext = { field: field.name, stack: field.stack, energies, width: W, height: H, dtype: source.dtype, read: inputs.provenance, backend: backendInfo, quantity: stackQuantity(inputs) };
        for (const s of pixelSteps) {
          const sub = path.join(field.name, s.name);
          const counts = per[s.name].statusCounts;
          if (s.name === 'edge') writeSummary(dir, sub, edgeStepSummary(ctx, edgePlan!, recipe.edge ?? {}, counts, s.statusNames, s.mapNames, recipe.range));
          else if (s.name === 'fit') writeSummary(dir, sub, fitStepSummary(ctx, recipe.fit!.model, model!, e0!, counts, Object.keys(per.fit.maps), stepSummaries.composition));
          else if (s.name === 'lcf') {
            // The references as fitted and the RGB composite, as `xanes lcf` writes them.
            dir.writeText(path.join(sub, 'references.csv'), referencesCsv(energies, lcfRefs));
            const names = lcfStepInfo!.references.slice(0, 3);
            const brightness = lcfNormalized ? 'edge_step' : 'total';
            const rgb = await renderRgbComposite(names.map((n) => per.lcf.maps[`fraction_${n}`]), W, H, { names, intensity: per.lcf.maps[brightness], intensityLabel: brightness, title: `${field.name}: lcf ${lcfStepInfo!.mode}` });
            dir.writeBytes(path.join(sub, 'rgb.png'), rgb.png);
            writeSummary(dir, sub, lcfStepSummary(ctx, lcfInfo!, counts, s.mapNames, rgb.legend));
          } else continue;
          writeReport(dir.file(sub), `${field.name}/${s.name}`);
        }
        if (steps.includes('cluster')) {
          const pick = (f: string) => {
            const [st, m] = f.split(':');
            const map = per[st]?.maps[m];
            if (!map) throw new InputError('--features', `the ${st} step has no map '${m}' (it has: ${Object.keys(per[st]?.maps ?? {}).join(', ')})`);
            return map;
          };
          const c = recipe.cluster!;
          clusterMaps.push({ name: field.name, width: W, height: H, features: c.features.map(pick), weight: c.weight ? pick(c.weight) : undefined, ctx });
        }
        fieldSummaries.push({
          field: field.name, stack: field.stack, shape: { energies: source.nE, height: H, width: W }, dtype: source.dtype, read: inputs.provenance,
          steps: stepSummaries, tiles: run.tilesRun, rows_per_tile: run.tilePlan.rowsPerTile, seconds: run.seconds,
          masked_transmission_points: inputs.maskedPoints(), ...(lcfInfo ? { lcf: lcfInfo } : {}),
          ...(inputs.alignment ? { alignment: inputs.alignment.record } : {}),
        });
      } finally {
        inputs.close();
      }
    }

    // Products over all fields.
    const combinedSummary: RunSummary['combined'] = {};
    fs.mkdirSync(dir.file('combined'), { recursive: true });
    if (e0Maps.length > 0) {
      const all = new Float32Array(e0Maps.reduce((n, m) => n + m.length, 0));
      let off = 0;
      for (const m of e0Maps) { all.set(m, off); off += m.length; }
      if (all.some((v) => Number.isFinite(v))) {
        const h = histogram(all, 0.1, robustHistogramRange(all, 0.1)); // outliers cannot stretch it
        dir.writeText(path.join('combined', 'e0_hist.csv'), histogramCsv(h));
        dir.writeBytes(path.join('combined', 'e0_hist.png'), await renderHistogram(h, { title: `e0_half over ${fields.length} field(s)`, xlabel: 'e0_half (eV)', ylabel: 'pixels' }));
        combinedSummary.e0_histogram_peak_eV = histogramPeak(h);
      }
    }
    if (steps.includes('cluster')) {
      const c = recipe.cluster!;
      const n = clusterMaps.reduce((acc, f) => acc + f.width * f.height, 0);
      const cat = (get: (f: (typeof clusterMaps)[number]) => Float32Array | undefined) => {
        const out = new Float32Array(n);
        let off = 0;
        for (const f of clusterMaps) { out.set(get(f)!, off); off += f.width * f.height; }
        return out;
      };
      const feats = c.features.map((_, j) => cat((f) => f.features[j]));
      const weight = c.weight ? cat((f) => f.weight) : undefined;
      if (c.minWeight !== undefined && weight) for (let p = 0; p < n; p++) if (!(weight[p] >= c.minWeight)) for (const m of feats) m[p] = NaN;
      const features = featuresFromMaps(feats, c.features);
      let el: ElbowResult | undefined;
      let k = c.k;
      if (c.kRange) {
        el = await elbow(backend!, features, c.kRange, { ...(c.kmeans ?? {}), minClusterSize: c.minClusterSize });
        k = el.k;
      }
      const result = await kmeansFit(backend!, features, { ...(c.kmeans ?? {}), k: k! });
      // Per field: labels, distances, fractions (the centres are the same everywhere).
      let off = 0;
      for (const f of clusterMaps) {
        const P = f.width * f.height;
        const part = { ...result, labels: result.labels.slice(off, off + P), distance: result.distance.slice(off, off + P) };
        const sub = path.join(f.name, 'cluster');
        const wk = await writeKmeansOutputs(dir.file(sub), part, { width: f.width, height: f.height, weight: f.weight, weightName: c.weight });
        writeSummary(dir, sub, clusterStepSummary(f.ctx, wk.summary, c.features, c.weight, el ? { table: el.table, k: el.k, rule: el.rule } : undefined));
        writeReport(dir.file(sub), `${f.name}/cluster`);
        const fs_ = fieldSummaries.find((x) => x.field === f.name);
        if (fs_) fs_.steps.cluster = { counts: wk.summary.counts, fractions: wk.summary.fractions, maps: ['labels', 'distance'] };
        off += P;
      }
      // Across fields: the tables only (an image of all fields together would be meaningless).
      const cdir = path.join('combined', 'cluster');
      fs.mkdirSync(dir.file(cdir), { recursive: true });
      const stats = clusterStats(result.labels, result.k, weight);
      dir.writeText(path.join(cdir, 'centres.csv'), centresCsv(result));
      dir.writeText(path.join(cdir, 'clusters.csv'), clusterStatsCsv(stats));
      if (el) {
        dir.writeText(path.join(cdir, 'elbow.csv'), elbowCsv(el.table));
        dir.writeBytes(path.join(cdir, 'elbow.png'), await renderElbowPng(el.table, el.k, { units: result.model.st.standardized ? 'standardised units' : undefined }));
      }
      const w = { summary: {
        k: result.k, wcss: result.wcss, wcss_units: wcssUnits(result.model.st), standardization: result.model.st.method ?? (result.model.st.standardized ? 'zscore' : 'none'),
        pixels_included: result.nIncluded, pixels_excluded: result.nExcluded, counts: stats.counts, fractions: stats.fractions,
        ...(stats.weightedFractions ? { weighted_fractions: stats.weightedFractions } : {}),
        iterations: result.iterations, converged: result.converged, warnings: result.warnings,
        ...(el ? { elbow: { table: el.table, k: el.k, rule: el.rule } } : {}),
      } };
      combinedSummary.cluster = { ...w.summary, features: c.features, weight: c.weight ?? null, min_weight: c.minWeight ?? null };
    }

    const total = fieldSummaries.reduce((acc, f) => acc + ((f.shape as { height: number; width: number }).height * (f.shape as { width: number }).width), 0);
    const seconds = (performance.now() - t0) / 1000;
    const summary: RunSummary = {
      tool: 'xanes-engine', version: VERSION, command: 'run', finished: true,
      steps, fields: fieldSummaries, combined: combinedSummary,
      // What was asked for, in the names a recipe takes (a valid recipe), and what was used.
      options: recipe.options ?? null,
      parameters: { e0_eV: e0, edge: edgeSectionOf({ ...DEFAULT_EDGE_OPTIONS, ...recipe.edge }) },
      backend: backendInfo,
      spectra: total,
      timings_s: { total: seconds, spectra_per_s: total / seconds },
      memory: { budget_MiB: recipe.budgetBytes / 2 ** 20, peak_rss_MiB: Math.round(process.resourceUsage().maxRSS / 1024) },
      map_units: { edge: EDGE_MAP_UNITS },
    };
    // The overview pages: each field, the products across fields, the run.
    for (const f of fieldSummaries) {
      writeSummary(dir, String(f.field), { tool: 'xanes-engine', version: VERSION, command: RUN_FIELD_COMMAND, finished: true, ...f });
      writeIndexPage(dir.file(String(f.field)));
    }
    const combinedPage: RunCombinedPageSummary = { tool: 'xanes-engine', version: VERSION, command: RUN_COMBINED_COMMAND, finished: true, fields: fields.length, ...combinedSummary };
    writeSummary(dir, 'combined', combinedPage);
    writeIndexPage(dir.file('combined'));
    dir.writeText('summary.json', JSON.stringify(summary, null, 2) + '\n');
    writeIndexPage(dir.tmp, path.basename(dir.finalPath));
    return summary;
  });
}
