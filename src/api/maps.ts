/**
 * Per-pixel maps of a cube in memory: the library entry points `edgeMaps`, `fitMaps` and
 * `lcfMaps`. Each builds the same PixelStep its command builds (src/pipeline/edge-step.ts,
 * fit-step.ts, lcf-step.ts) and streams the cube through it with the same tiled runner
 * (src/pipeline/run-tiles.ts) on the same backends, so a map here holds the same float32
 * values as the map file the command writes for the same data and options. Nothing is
 * read from or written to disk (except reference files an lcf caller names), and no signal
 * handler is installed: the command's output-folder machinery is not involved.
 */
import { InputError } from '../io/errors.js';
import { meanSpectrum } from '../pipeline/inputs.js';
import { runTiles } from '../pipeline/run-tiles.js';
import { selectBackend, type BackendSelection } from '../pipeline/backend.js';
import type { BackendName, PixelStep } from '../pipeline/step.js';
import type { StackSource } from '../stack/source.js';
import { memoryBytes, edgeOptionsOf } from '../options/convert.js';
import type { SectionValues } from '../options/schema.js';
import { DEFAULT_EDGE_OPTIONS, derivativeMaxEnergy, makeEdgePlan, type EdgeOptions } from '../pipeline/edge-plan.js';
import { edgeStep, EDGE_MAP_NAMES, EDGE_MAP_UNITS } from '../pipeline/edge-step.js';
import { fitStep } from '../pipeline/fit-step.js';
import { parseModelSpec } from '../models/model.js';
import { parseFitOptions } from '../models/options.js';
import { lcfStep, LCF_MASK_SIGMA, type LcfInfo, type LcfNormalize } from '../pipeline/lcf-step.js';
import { parseMode, parseBackground } from '../pipeline/lcf-run.js';
import { windowRange } from '../cpu/lcf.js';
import { loadReferences, parseRefSpec, type LoadedReference, type RefSpec } from '../io/references.js';
import type { RefNorm } from '../pipeline/ref-norm.js';
import { checkCube } from './cube.js';
import { BACKEND_OPTION_IDS, EDGE_OPTION_IDS, checkOptions, type BackendOptions, type CubeShape } from './options.js';

type Common = SectionValues<'common'>;

/** The backend a call ran on, as summary.json records it. */
export interface BackendRecord {
  name: BackendName;
  adapter: string;
  /** How 'auto' chose (absent for an explicit choice). */
  auto?: { rule: string; reason: string };
}

/** What every per-pixel entry point returns: float32 maps [H*W] (row-major), NaN where a pixel has no value. */
export interface PixelMaps<Name extends string = string> {
  width: number;
  height: number;
  /** The maps in the order the command writes them. */
  mapNames: Name[];
  maps: Record<Name, Float32Array>;
  /** Per-pixel status code (0 = ok); statusNames[code] names it. */
  status: Uint8Array;
  statusNames: readonly string[];
  /** Pixels per status name. */
  statusCounts: Record<string, number>;
  backend: BackendRecord;
  /** Notices the command would print on stderr (e.g. a backend fallback); the library prints nothing. */
  notices: string[];
}

// ---- edge ----

export type EdgeMapName = (typeof EDGE_MAP_NAMES)[number];

/** `xanes edge`'s options (schema names and types), the cube's shape and the backend. */
export type EdgeMapsOptions = CubeShape & BackendOptions & Pick<Common, 'e0'> & Omit<SectionValues<'edge'>, 'range'>;

export interface EdgeMapsResult extends PixelMaps<EdgeMapName> {
  /** Nominal e0 that anchored the windows, eV: options.e0, or the derivative maximum of the mean spectrum. */
  e0: number;
  e0Source: 'options' | 'mean spectrum';
  /** Post-edge polynomial degree used (nnorm 'auto' resolved by the post-edge span). */
  nnormUsed: number;
  /** The edge options as used (defaults filled in). */
  options: EdgeOptions;
  /** Units of each map. */
  units: Record<EdgeMapName, string>;
}

/**
 * Edge-energy maps of a cube: larch-convention normalisation per pixel, then e0_half,
 * e0_deriv, edge_step, noise, mask, whiteline_energy and whiteline_height (the maps of
 * `xanes edge`, same values).
 */
export async function edgeMaps(cube: Float32Array, energies: ArrayLike<number>, options: EdgeMapsOptions): Promise<EdgeMapsResult> {
  const where = 'edgeMaps';
  const o = checkOptions(where, ['common.e0', ...BACKEND_OPTION_IDS, ...EDGE_OPTION_IDS], options, ['height', 'width']);
  const { source, energies: e } = await checkCube(where, cube, energies, o);
  const edge: EdgeOptions = { ...DEFAULT_EDGE_OPTIONS, ...edgeOptionsOf(o, o.e0) };
  const e0 = edge.e0 ?? derivativeMaxEnergy(e, await meanSpectrum(source), 1);
  if (!(e0 >= e[0] && e0 <= e[e.length - 1])) throw new InputError(`${where}: e0`, `${e0} eV is outside the scan ${e[0]}..${e[e.length - 1]} eV`);
  const plan = makeEdgePlan(e, e0, edge, `${where}: energies`);
  const r = await runStep<EdgeMapName>(source, edgeStep(plan), o);
  return {
    ...r,
    e0, e0Source: edge.e0 === undefined ? 'mean spectrum' : 'options', nnormUsed: plan.post.degree, options: edge,
    units: Object.fromEntries(EDGE_MAP_NAMES.map((n) => [n, EDGE_MAP_UNITS[n]])) as Record<EdgeMapName, string>,
  };
}

// ---- fit ----

/** `xanes fit`'s options: the model (required), start values, fixed parameters, bounds, iterations, e0. */
export type FitMapsOptions = CubeShape & BackendOptions & Pick<Common, 'e0'> & Required<Pick<SectionValues<'fit'>, 'model'>> & Pick<SectionValues<'fit'>, 'init' | 'fix' | 'bounds' | 'maxIter'>;

export interface FitMapsResult extends PixelMaps {
  /** The model's parameter names (one map each, plus `<name>_stderr`). */
  parameters: string[];
  /** e0 anchoring the start-value windows, eV. */
  e0: number;
}

/**
 * Per-pixel Levenberg-Marquardt fits of a model (a preset such as 'erf-2lorentz', a sum
 * such as 'const + erf + lorentz', or JSON): one map per parameter and its standard error,
 * redchi, iterations and the model's derived maps (the maps of `xanes fit`, same values).
 */
export async function fitMaps(cube: Float32Array, energies: ArrayLike<number>, options: FitMapsOptions): Promise<FitMapsResult> {
  const where = 'fitMaps';
  const o = checkOptions(where, ['common.e0', ...BACKEND_OPTION_IDS, 'fit.model', 'fit.init', 'fit.fix', 'fit.bounds', 'fit.maxIter'], options, ['height', 'width']);
  if (o.model === undefined) throw new InputError(`${where}: model`, 'is required (a preset such as "erf-2lorentz", a sum such as "const + erf + lorentz", or JSON)');
  const { source, energies: e } = await checkCube(where, cube, energies, o);
  const model = parseModelSpec(o.model);
  const fit = parseFitOptions({ init: o.init, fix: o.fix, bounds: o.bounds, maxIter: o.maxIter }, model);
  const e0 = o.e0 ?? derivativeMaxEnergy(e, await meanSpectrum(source), 1);
  const r = await runStep(source, fitStep(model, e, fit, { e0 }), o);
  return { ...r, parameters: [...model.paramNames], e0 };
}

// ---- lcf ----

/** A reference spectrum in memory: mu(E) on its own energies (eV), placed on the cube's energies by linear interpolation. */
export interface ReferenceArray {
  name: string;
  energies: ArrayLike<number>;
  mu: ArrayLike<number>;
}

/**
 * `xanes lcf`'s options: references (NAME=FILE, NAME=rect:x0,y0,x1,y1 | circle:x,y,r as on
 * the command line, or spectra in memory), mode, background, window, normalisation, and the
 * edge options of --normalize.
 */
export type LcfMapsOptions = CubeShape & BackendOptions & Pick<Common, 'e0'>
  & Omit<SectionValues<'lcf'>, 'ref'>
  & Pick<SectionValues<'edge'>, 'pre' | 'post' | 'nnorm' | 'maskSigma'>
  & { references: (string | ReferenceArray)[] };

export interface LcfMapsResult extends PixelMaps {
  /** The fit as summary.json records it: mode, background, references, window, condition, map units. */
  info: LcfInfo;
  /** The references as fitted: on the cube's energies, after the same normalisation as the pixels. */
  references: LoadedReference[];
}

/**
 * Every pixel as a linear combination of reference spectra (the maps of `xanes lcf`, same
 * values): weight_<NAME>, fraction_<NAME>, total, background terms, residual_rms, rfactor.
 */
export async function lcfMaps(cube: Float32Array, energies: ArrayLike<number>, options: LcfMapsOptions): Promise<LcfMapsResult> {
  const where = 'lcfMaps';
  const lcfIds = ['lcf.mode', 'lcf.background', 'lcf.window', 'lcf.normalize', 'lcf.flatten', 'lcf.refNorm'];
  const o = checkOptions(where, ['common.e0', ...BACKEND_OPTION_IDS, ...lcfIds, 'edge.pre', 'edge.post', 'edge.nnorm', 'edge.maskSigma'], options, ['height', 'width', 'references']);
  const specs = referenceSpecs(where, o.references);
  const { source, energies: e } = await checkCube(where, cube, energies, o);
  const mode = parseMode(o.mode);
  const background = parseBackground(o.background);
  const edge = edgeOptionsOf(o, o.e0);
  const refNorm: RefNorm = o.refNorm ?? (o.flatten ? 'flat' : 'auto');
  const window = o.window as [number, number] | undefined;
  const refs = await loadReferences(specs, source, e, windowRange(e, window), { kind: refNorm, edge });
  const maskSigma = edge.maskSigma ?? LCF_MASK_SIGMA;
  let normalize: LcfNormalize | undefined;
  const notices: string[] = [];
  if (o.normalize) {
    const edgeOptions: EdgeOptions = { ...DEFAULT_EDGE_OPTIONS, ...edge, maskSigma };
    const e0 = edgeOptions.e0 ?? derivativeMaxEnergy(e, await meanSpectrum(source), 1);
    normalize = { plan: makeEdgePlan(e, e0, edgeOptions, `${where}: energies`), flatten: o.flatten === true };
    if (refNorm === 'none') notices.push('xanes: --normalize with --ref-norm none fits normalised pixels with raw references');
  }
  const step = lcfStep(refs.map((x) => ({ name: x.name, mu: x.mu })), e, { mode, background, window }, normalize, maskSigma);
  step.info.warnings.forEach((w) => notices.push(`xanes: ${w}`));
  const r = await runStep(source, step, o);
  return { ...r, notices: [...notices, ...r.notices], info: step.info, references: refs };
}

/** References as the loader takes them: text as `--ref` (same checks), arrays as spectra in memory. */
function referenceSpecs(where: string, refs: unknown): RefSpec[] {
  if (!Array.isArray(refs) || refs.length === 0) throw new InputError(`${where}: references`, 'at least one reference is needed (NAME=FILE, NAME=rect:x0,y0,x1,y1, or { name, energies, mu })');
  const text = refs.filter((r): r is string => typeof r === 'string');
  if (text.length > 0) checkOptions(where, ['lcf.ref'], { ref: text });
  return refs.map((r, i): RefSpec => {
    if (typeof r === 'string') return parseRefSpec(r);
    if (typeof r !== 'object' || r === null || typeof r.name !== 'string') throw new InputError(`${where}: references[${i}]`, 'expected NAME=SOURCE text or { name, energies, mu }');
    return { name: r.name, kind: 'spectrum', energy: r.energies, mu: r.mu };
  });
}

// ---- shared ----

/** Backend choice (the CLI's rule) and the tiled run of one step over the cube. */
async function runStep<N extends string = string>(source: StackSource, step: PixelStep, o: BackendOptions): Promise<PixelMaps<N>> {
  const notices: string[] = [];
  const sel: BackendSelection = await selectBackend(o.backend ?? 'auto', (l) => notices.push(l), 'pixels', o.threads);
  const r = await runTiles(source, step, sel.backend, { budgetBytes: memoryBytes(o.memory) });
  return {
    width: r.width, height: r.height, mapNames: [...step.mapNames] as N[], maps: r.maps as Record<N, Float32Array>, status: r.status,
    statusNames: step.statusNames, statusCounts: r.statusCounts,
    backend: { name: sel.backend.name, adapter: sel.backend.adapter, ...(sel.auto ? { auto: sel.auto } : {}) },
    notices,
  };
}
