/**
 * Every option of the engine, described once (valibot schemas). The command line
 * (commander), recipes (`xanes run recipe.json`) and summary.json all take their names and
 * their checks from here, so a value means the same thing and fails the same way wherever
 * it is written.
 *
 * HOW TO ADD AN OPTION (one place):
 *   1. Add an entry to the section it belongs to in SECTIONS below, e.g. in `edge`:
 *        pixelSize: opt({ arg: '<um>', help: 'pixel size, micrometres', text: 'number', schema: positive() }),
 *      The key is the option's name everywhere: the CLI flag is its kebab-case form
 *      (--pixel-size), a recipe writes it as "pixelSize" in the section's object
 *      ("edge": {...}; `common` options sit at the top level of a recipe), and summary.json
 *      records it under the same key. `text` says how the CLI's text becomes the value
 *      the schema checks ('number', 'pair', 'list', 'json', ...); `path: true` makes a
 *      recipe's relative path relative to the recipe file.
 *   2. List it (as 'section.name', or 'section.*' for the whole section) in COMMANDS for
 *      each command that takes it. `xanes run` takes every option of the step sections.
 *   3. Read it in the command from the values that fromCli / fromRecipe return (typed).
 * Defaults stay with the code that applies them; quote them in `help`.
 */
import * as v from 'valibot';
import { DEFAULT_EDGE_OPTIONS } from '../pipeline/edge-plan.js';
import { DEFAULT_MEMORY_MIB } from '../stack/tiles.js';
import { LCF_MODES, LCF_BACKGROUNDS } from '../cpu/lcf.js';
import { REF_NORMS } from '../pipeline/ref-norm.js';
import { STANDARDIZE_MODES } from '../pipeline/standardize.js';
import { FIT_SAMPLE_DEFAULT } from '../pipeline/cluster-sample.js';

/** Steps of `xanes run`, in the order they run. */
export const RUN_STEPS = ['edge', 'fit', 'lcf', 'cluster'] as const;
export type RunStepName = (typeof RUN_STEPS)[number];

/** The largest --max-iter of a fit (a typo such as 1e9 would otherwise run for days). */
export const MAX_FIT_ITER = 10_000;

/** How a value is shown in an error: text in quotes, so "50" (text) and 50 (number) differ. */
export function show(x: unknown): string {
  if (typeof x === 'string') return `"${x.length > 60 ? x.slice(0, 57) + '...' : x}"`;
  if (x === undefined) return 'nothing';
  if (typeof x === 'number' || typeof x === 'boolean' || x === null) return String(x);
  const s = JSON.stringify(x) ?? String(x);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

type Msg = (issue: v.BaseIssue<unknown>) => string;
const msg = (expected: string): Msg => (issue) => `expected ${expected}, got ${show(issue.input)}`;

// ---- value schemas (each carries one message: what is expected, and what came) ----

interface NumRule { int?: boolean; min?: number; max?: number; gt?: number }
function describeNum(r: NumRule): string {
  let s = r.int ? 'a whole number' : 'a number';
  if (r.min !== undefined && r.max !== undefined) s += ` from ${r.min} to ${r.max}`;
  else if (r.min !== undefined) s += ` >= ${r.min}`;
  else if (r.max !== undefined) s += ` <= ${r.max}`;
  if (r.gt !== undefined) s += ` > ${r.gt}`;
  return s;
}
export function num(r: NumRule = {}) {
  const m = msg(describeNum(r));
  const items: v.PipeItem<number, number, v.BaseIssue<unknown>>[] = [v.finite(m)];
  if (r.int) items.push(v.integer(m));
  if (r.min !== undefined) items.push(v.minValue(r.min, m));
  if (r.max !== undefined) items.push(v.maxValue(r.max, m));
  if (r.gt !== undefined) items.push(v.gtValue(r.gt, m));
  return v.pipe(v.number(m), ...items);
}
export const positive = () => num({ gt: 0 });
export const int = (min: number, max?: number) => num({ int: true, min, max });

/** [a, b] with a < b; with `end`, b may be the word "end" (to the end of the scan). */
function pair(what: string, end = false) {
  const m = msg(end ? `[a, b] with a < b (b may be "end"): ${what}` : `[a, b] with a < b: ${what}`);
  const second = end ? v.union([v.number(m), v.literal('end', m)], m) : v.number(m);
  return v.pipe(
    v.tuple([v.number(m), second], m),
    v.check((p) => Number.isFinite(p[0]) && (p[1] === 'end' || (Number.isFinite(p[1]) && (p[1] as number) > p[0])), m),
  );
}

const text = (what: string) => v.pipe(v.string(msg(what)), v.minLength(1, msg(what)));
const file = (what = 'a file name') => text(what);
function pick<const T extends readonly (string | number)[]>(list: T) {
  return v.picklist(list, msg(`one of ${list.join(', ')}`));
}
function stringList<S extends v.GenericSchema<unknown, string>>(what: string, item?: S) {
  return v.pipe(v.array(item ?? v.string(msg(what)), msg(`a list of ${what}, e.g. ["a", "b"]`)), v.minLength(1, msg(`at least one ${what}`)));
}
/** A JSON object (not a list) whose values pass `value`. */
const objectOf = <S extends v.GenericSchema>(value: S, what: string) =>
  v.pipe(v.custom<Record<string, unknown>>((x) => typeof x === 'object' && x !== null && !Array.isArray(x), msg(what)), v.record(v.string(), value, msg(what)));
const finiteRecord = (what: string) => objectOf(v.pipe(v.number(msg(`a finite number (${what})`)), v.finite(msg('a finite number'))), `a JSON object {"parameter": number} (${what})`);
const boundSide = v.union([v.pipe(v.number(), v.finite()), v.null()], msg('a finite number or null (open side)'));
const boundsRecord = objectOf(
  v.pipe(v.array(boundSide, msg('[lower, upper] (null for an open side)')), v.length(2, msg('[lower, upper] (null for an open side)'))),
  'a JSON object {"parameter": [lower, upper]}',
);
/** k values: "a:b" (a..b) or "2,3,5" as on the command line, or a list of whole numbers. */
const kList = v.pipe(
  v.union([v.string(), v.array(v.pipe(v.number(), v.integer(), v.minValue(1)))], msg('"a:b" (e.g. "2:12") or a list of whole numbers >= 1')),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const x = dataset.value;
    if (Array.isArray(x)) {
      if (x.length === 0) { addIssue({ message: 'expected at least one k' }); return NEVER; }
      return [...new Set(x)].sort((a, b) => a - b);
    }
    const s = x.trim();
    const m = /^(\d+)\s*:\s*(\d+)$/.exec(s);
    let ks: number[];
    if (m && Number(m[1]) <= Number(m[2])) ks = Array.from({ length: Number(m[2]) - Number(m[1]) + 1 }, (_, i) => Number(m[1]) + i);
    else if (/^\d+(\s*,\s*\d+)*$/.test(s)) ks = s.split(',').map((t) => Number(t.trim()));
    else { addIssue({ message: `expected a:b with a <= b (e.g. 2:12) or a list (2,3,4), got ${show(x)}` }); return NEVER; }
    if (ks.some((k) => k < 1)) { addIssue({ message: `expected k >= 1, got ${show(x)}` }); return NEVER; }
    return [...new Set(ks)].sort((a, b) => a - b);
  }),
);
/** A fit model: a preset or component sum as text, or a JSON model (checked in src/models/model.ts). */
const modelSpec = v.pipe(
  v.union([text('a model'), v.array(v.unknown()), v.looseObject({})], msg('a preset name, a sum such as "const + erf", or a JSON model')),
  v.transform((x) => (typeof x === 'string' ? x : JSON.stringify(x))),
);

/** n whole numbers >= 0, as "a,b,..." (command line) or a list (JSON). */
function integers(what: string, n: number) {
  const names = n === 2 ? 'x,y' : 'x0,y0,x1,y1';
  const m = msg(`${names} (whole numbers from 0) for the ${what}`);
  return v.pipe(
    v.union([v.string(m), v.array(v.number(m), m)], m),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const x = dataset.value;
      const a = typeof x === 'string' ? x.split(',').map((t) => (/^\s*\d+\s*$/.test(t) ? Number(t) : NaN)) : x;
      if (a.length === n && a.every((k) => Number.isInteger(k) && k >= 0)) return a;
      addIssue({ message: `expected ${names} (whole numbers from 0) for the ${what}, got ${show(x)}` });
      return NEVER;
    }),
  );
}

// ---- options ----

/** How the command line's text becomes the value the schema checks. */
export type TextKind =
  | 'string' // as given
  | 'number' // "5" -> 5
  | 'numberOrWord' // "5" -> 5, "auto" -> "auto"
  | 'pair' // "a,b" -> [a, b]; "end" stays a word
  | 'list' // "a,b,c" -> ["a", "b", "c"]
  | 'json' // JSON text -> its value
  | 'repeat' // given several times -> a list
  | 'switch' // --no-<name> -> false (the option is on unless given)
  | 'flag'; // --<name> -> true (no value); a name noX gives the flag --no-x

export interface OptionDef<S extends v.GenericSchema = v.GenericSchema> {
  /** CLI placeholder, e.g. '<eV>'; absent for a switch. */
  arg?: string;
  help: string;
  text: TextKind;
  schema: S;
  /** A file path: relative to the recipe in a recipe. */
  path?: boolean;
  /** Given as a positional argument on the command line (not a --flag). */
  positional?: boolean;
}
const opt = <S extends v.GenericSchema>(d: OptionDef<S>): OptionDef<S> => d;
const d = DEFAULT_EDGE_OPTIONS;

export const SECTIONS = {
  /** Top level of a recipe: inputs, output, resources, e0. */
  common: {
    stacks: opt({ help: 'stacks, one per field of view (paths or glob patterns; synthetic:HxW)', text: 'repeat', path: true, positional: true, schema: stringList('stack paths') }),
    steps: opt({ arg: '<list>', help: `steps to run, comma-separated: ${RUN_STEPS.join(',')}`, text: 'list',
      schema: v.pipe(stringList('steps', pick(RUN_STEPS)), v.check((s) => new Set(s).size === s.length, msg('each step once'))) }),
    energies: opt({ arg: '<file>', help: 'energies, one per image: text/CSV (first column) or .npy', text: 'string', path: true, schema: file('an energies file name') }),
    energyUnit: opt({ arg: '<unit>', help: 'unit of the energies file: eV or keV (default eV)', text: 'string', schema: pick(['eV', 'keV'] as const) }),
    flat: opt({ arg: '<stack>', help: 'flat-field stack (same shape, or fewer frames: averaged): absorbance = -ln((I-D)/(F-D))', text: 'string', path: true, schema: file('a flat-field stack file name') }),
    dark: opt({ arg: '<stack>', help: 'dark stack (same shape, or fewer frames: averaged), with --flat', text: 'string', path: true, schema: file('a dark stack file name') }),
    noFlat: opt({ help: 'ignore the flat and dark fields stored in the stack file (HDF5, Xradia)', text: 'flag', schema: v.boolean(msg('true or false')) }),
    pixelSize: opt({ arg: '<um>', help: 'pixel size in µm (default: from the file when it records one)', text: 'number', schema: positive() }),
    i0: opt({ arg: '<file>', help: 'I0 spectrum (2 columns: energy, counts) for optical density -ln(I/I0)', text: 'string', path: true, schema: file('an I0 spectrum file name') }),
    i0Region: opt({ arg: '<rect|auto>', help: 'I0 from an empty region of the stack: rect:x0,y0,x1,y1, or auto (the brightest, most uniform area)', text: 'string', schema: text('rect:x0,y0,x1,y1 or auto') }),
    out: opt({ arg: '<dir>', help: 'output folder: created whole or not at all; an existing one is replaced only if xanes made it', text: 'string', path: true, schema: file('an output folder name') }),
    memory: opt({ arg: '<MiB>', help: `memory budget for the whole process, MiB (default ${DEFAULT_MEMORY_MIB})`, text: 'number', schema: positive() }),
    backend: opt({ arg: '<name>', help: 'auto | webgpu | cpu (default auto)', text: 'string', schema: pick(['auto', 'webgpu', 'cpu'] as const) }),
    threads: opt({ arg: '<n>', help: 'CPU backend worker threads (default: every core)', text: 'number', schema: int(1, 1024) }),
    e0: opt({ arg: '<eV>', help: 'nominal edge energy that anchors the windows (default: from the mean spectrum)', text: 'number', schema: num() }),
    shard: opt({ arg: '<i/n>', help: 'run the i-th of n balanced subsets of the fields (i from 0) into a shared study folder, merged by xanes merge; slurm: i and n from SLURM_ARRAY_TASK_ID/_COUNT (the default inside a Slurm job array); off: one whole run', text: 'string',
      schema: v.pipe(v.string(msg('i/n with 0 <= i < n, slurm or off')), v.check((x) => x === 'slurm' || x === 'off' || (/^\d+\/\d+$/.test(x) && Number(x.split('/')[0]) < Number(x.split('/')[1])), msg('i/n with 0 <= i < n (e.g. 0/4), slurm or off'))) }),
    resume: opt({ help: 'with --shard: skip the fields already finished in the study folder (a rerun after a failed shard)', text: 'flag', schema: v.boolean(msg('true or false')) }),
    assignFrom: opt({ arg: '<dir>', help: "label this shard's fields with the k-means model of xanes merge --no-labels (STUDY/combined/cluster): the second, sharded pass of a study", text: 'string', path: true, schema: file('a combined/cluster folder') }),
    noLabels: opt({ help: 'xanes merge: fit the k-means centres only; label the fields with xanes run --assign-from (sharded)', text: 'flag', schema: v.boolean(msg('true or false')) }),
    mask: opt({ arg: '<file|dir>', help: "an earlier run's mask (.npy [H, W], 1 = used; or its output folder's mask.npy): masked pixels are NaN in every map and black in every picture", text: 'string', path: true, schema: file('a mask file or output folder') }),
  },
  edge: {
    pre: opt({ arg: '<a,b>', help: `pre-edge line window relative to e0, eV (default ${d.pre1},${d.pre2})`, text: 'pair', schema: pair('the pre-edge window, eV') }),
    post: opt({ arg: '<a,b>', help: `post-edge window relative to e0, eV; b may be 'end' (default ${d.norm1},end)`, text: 'pair', schema: pair('the post-edge window, eV', true) }),
    nnorm: opt({ arg: '<n>', help: `post-edge polynomial degree 0, 1, 2, or auto: larch's rule by the post-edge span (default ${d.nnorm})`, text: 'numberOrWord', schema: pick([0, 1, 2, 'auto'] as const) }),
    maskSigma: opt({ arg: '<k>', help: `mask pixels whose edge step < k x pre-edge noise (default ${d.maskSigma}; lcf: 3, also for its total weight against its standard error)`, text: 'number', schema: num({ min: 0 }) }),
    edgeWindow: opt({ arg: '<a,b>', help: `where the derivative maximum is searched, relative to e0, eV (default ${d.edge1},${d.edge2})`, text: 'pair', schema: pair('the edge window, eV') }),
    derivSmooth: opt({ arg: '<n>', help: `points in the derivative's moving average, odd, 1-7 (default ${d.derivSmooth})`, text: 'number', schema: pick([1, 3, 5, 7] as const) }),
    whitelineWidth: opt({ arg: '<eV>', help: `white line searched within this many eV after e0_half (default ${d.whitelineWidth})`, text: 'number', schema: positive() }),
    range: opt({ arg: '<a,b>', help: 'colour range of e0_half_range.png, eV (default: 2nd-98th percentile)', text: 'pair', schema: pair('the colour range, eV') }),
  },
  fit: {
    model: opt({ arg: '<spec>', help: 'a preset (erf-2lorentz, erf-lorentz), a sum such as "const + erf + lorentz", or JSON', text: 'string', schema: modelSpec }),
    init: opt({ arg: '<json>', help: 'start values for every pixel, e.g. \'{"b3": 2}\' (default: from the data, per pixel)', text: 'json', schema: finiteRecord('--init') }),
    fix: opt({ arg: '<names>', help: 'parameters held at their start value, comma-separated', text: 'list', schema: stringList('parameter names') }),
    bounds: opt({ arg: '<json>', help: 'box bounds, e.g. \'{"b3": [0.2, 10], "c13": [0.1, null]}\'', text: 'json', schema: boundsRecord }),
    maxIter: opt({ arg: '<n>', help: 'iterations per pixel at most (default 100)', text: 'number', schema: int(1, MAX_FIT_ITER) }),
    phase: opt({ arg: '<file>', help: 'phase image (.npy, radians: [H, W] at --phase-energy, or [E, H, W] on the stack\'s energies) for the composition maps N_V, Re_Ne, Re_Ne_over_N_V', text: 'string', path: true, schema: file('a phase image file name') }),
    phaseEnergy: opt({ arg: '<eV>', help: 'energy of the phase image, a pre-edge energy (with --phase)', text: 'number', schema: positive() }),
    deltaF2: opt({ arg: '<x>', help: "the edge jump of f'' of the absorbing element, electrons (default 3.53, V K-edge, Uematsu et al. 2023)", text: 'number', schema: positive() }),
    fPrime: opt({ arg: '<json>', help: 'f\' at the phase energy per element, e.g. \'{"V": -7.14}\' (defaults Li 0.00278, V -7.14, O 0.0757)', text: 'json', schema: finiteRecord('--f-prime') }),
  },
  lcf: {
    ref: opt({ arg: '<NAME=SOURCE>', help: 'a reference: NAME=FILE (2-column text/CSV, XDI, Athena .prj as FILE#group) or NAME=rect:x0,y0,x1,y1 | circle:x,y,r | mask:FILE (a region of the stack); repeat for each', text: 'repeat', path: true,
      schema: stringList('references NAME=SOURCE', v.pipe(v.string(msg('NAME=SOURCE')), v.regex(/^[^=]+=.+$/, msg('NAME=SOURCE')))) }),
    mode: opt({ arg: '<mode>', help: `${LCF_MODES.join(' | ')} (default ls)`, text: 'string', schema: pick(LCF_MODES) }),
    background: opt({ arg: '<b>', help: `${LCF_BACKGROUNDS.join(' | ')}, never sign-constrained (default none)`, text: 'string', schema: pick(LCF_BACKGROUNDS) }),
    window: opt({ arg: '<a,b>', help: 'fit only energies in a..b eV', text: 'pair', schema: pair('the energy window, eV') }),
    normalize: opt({ help: "fit each pixel's normalised spectrum (Athena/larch pre_edge, as xanes edge; windows from --e0 --pre --post --nnorm): sum-to-one fractions as in Athena; pixels whose edge step < --mask-sigma x noise are masked", text: 'flag', schema: v.boolean(msg('true or false')) }),
    flatten: opt({ help: "larch's flattened spectra (flat) for the pixels and the references", text: 'flag', schema: v.boolean(msg('true or false')) }),
    refNorm: opt({ arg: '<how>', help: `references: ${REF_NORMS.join(' | ')} (default auto: normalised like the pixels where their energies hold the windows, an Athena group with its own stored parameters; none = raw values)`, text: 'string', schema: pick(REF_NORMS) }),
  },
  cluster: {
    features: opt({ arg: '<list>', help: 'feature maps a.npy,b.tif,... (or map names with --from; step:map in xanes run)', text: 'list', schema: stringList('feature names') }),
    from: opt({ arg: '<dir>', help: 'an earlier output folder whose maps --features names (e.g. e0_half,edge_step)', text: 'string', path: true, schema: file('an output folder') }),
    pca: opt({ arg: '<n>', help: 'with a stack: cluster its first n PCA scores', text: 'number', schema: int(1) }),
    k: opt({ arg: '<n>', help: 'number of clusters', text: 'number', schema: int(1) }),
    kRange: opt({ arg: '<a:b>', help: 'fit each k in a..b, write elbow.csv/png and pick k by the elbow (Kneedle)', text: 'string', schema: kList }),
    seed: opt({ arg: '<s>', help: 'seed of the k-means++ seeding (default 0)', text: 'number', schema: int(0) }),
    restarts: opt({ arg: '<r>', help: 'k-means++ restarts, the lowest WCSS kept (default 5)', text: 'number', schema: int(1) }),
    maxIter: opt({ arg: '<n>', help: 'Lloyd iterations per restart at most (default 100)', text: 'number', schema: int(1) }),
    standardize: opt({ arg: '<how>', help: `feature scaling: ${STANDARDIZE_MODES.join(' | ')} (default zscore for maps: (x - mean) / std; robust: (x - median) / (1.4826 MAD), not moved by a few outlier pixels; none: the features' own units, the default for PCA scores)`, text: 'string', schema: pick(STANDARDIZE_MODES) }),
    weight: opt({ arg: '<map>', help: 'a map (file, name in --from, or step:map in xanes run) weighting the cluster fractions, e.g. edge_step', text: 'string', schema: text('a map name') }),
    minWeight: opt({ arg: '<x>', help: 'leave out pixels whose weight is below x', text: 'number', schema: num() }),
    minClusterSize: opt({ arg: '<n>', help: 'with --k-range: a k whose solution has a cluster of fewer pixels is not chosen at the elbow (>= 1: pixels; < 1: a fraction of the clustered pixels; default 0.002, at least 2 pixels)', text: 'number', schema: num({ gt: 0 }) }),
    mask: opt({ arg: '<map>', help: 'a map (file or name in --from): pixels where it is 0 or NaN are left out', text: 'string', schema: text('a map name') }),
    fitSample: opt({ arg: '<n>', help: `xanes run, xanes merge: the k-means across fields fits its centres on at most n pixels (every pixel when the study has no more, else a seeded uniform sample of n), then labels every pixel (default ${FIT_SAMPLE_DEFAULT})`, text: 'number', schema: int(1) }),
  },
  pca: {
    components: opt({ arg: '<n>', help: 'score maps to write (default 3)', text: 'number', schema: int(1) }),
    reconstruct: opt({ arg: '<n>', help: 'write reconstructed.npy: the stack rebuilt from its first n components (PCA denoising)', text: 'number', schema: int(1) }),
  },
  spectra: {
    roi: opt({ arg: '<NAME=SPEC>', help: 'a region: NAME=rect:x0,y0,x1,y1 | circle:x,y,r | mask:FILE; repeat for each', text: 'repeat', schema: stringList('regions NAME=SPEC') }),
    compare: opt({ arg: '<stack>', help: 'a second stack (e.g. charged vs pristine), with the same options: difference spectra', text: 'string', path: true, schema: file('a stack file name') }),
    compareEnergies: opt({ arg: '<file>', help: 'energies of the --compare stack (default: --energies, or its .hdr)', text: 'string', path: true, schema: file('an energies file name') }),
  },
  inspect: {
    pixel: opt({ arg: '<x,y>', help: 'the pixel (column x, row y, from 0)', text: 'string', schema: integers('pixel', 2) }),
    roi: opt({ arg: '<x0,y0,x1,y1>', help: 'mean over a rectangle instead (x1, y1 excluded)', text: 'string',
      schema: v.pipe(integers('roi', 4), v.check((r) => r[2] > r[0] && r[3] > r[1], msg('x0 < x1 and y0 < y1'))) }),
  },
  /** Alignment across energies: `xanes align`, and `--align` on the stack commands (src/align/align.ts). */
  align: {
    align: opt({ help: 'align the stack across energies first (subpixel registration; see xanes align)', text: 'flag', schema: v.boolean(msg('true or false')) }),
    shifts: opt({ arg: '<file>', help: 'apply the shifts of a shifts.csv (index,energy_eV,dy_px,dx_px) instead of measuring them', text: 'string', path: true, schema: file('a shifts.csv file name') }),
    refEnergy: opt({ arg: '<eV>', help: 'register every image to the one nearest this energy (default: each to its neighbour, chained from the middle of the scan)', text: 'number', schema: num() }),
    roi: opt({ arg: '<rect:x0,y0,x1,y1>', help: 'register on this region only (default: the whole image)', text: 'string', schema: v.pipe(v.string(msg('rect:x0,y0,x1,y1')), v.regex(/^rect:/i, msg('rect:x0,y0,x1,y1'))) }),
    on: opt({ arg: '<what>', help: 'register on intensity, or on its gradient magnitude for low-contrast stacks (default intensity)', text: 'string', schema: pick(['intensity', 'gradient'] as const) }),
    maxJump: opt({ arg: '<px>', help: 'report neighbour-to-neighbour shifts larger than this many pixels (default 5)', text: 'number', schema: positive() }),
    crop: opt({ arg: '<how>', help: 'common: cut to the area valid at every energy; none: keep the frame, NaN where the field left it (default none)', text: 'string', schema: pick(['common', 'none'] as const) }),
    interp: opt({ arg: '<how>', help: 'how shifts are applied: auto | fourier | bicubic | bilinear (default auto: Fourier for whole images when the stack fits --memory, else bicubic)', text: 'string', schema: pick(['auto', 'fourier', 'bicubic', 'bilinear'] as const) }),
    normalization: opt({ arg: '<n>', help: 'none (cross-correlation) or phase (phase correlation) (default none)', text: 'string', schema: pick(['none', 'phase'] as const) }),
    taper: opt({ arg: '<w>', help: 'none, hann, or tukey (flat, cosine edges over 1/8 of each side): window applied to the images before the FFT (default none)', text: 'string', schema: pick(['none', 'hann', 'tukey'] as const) }),
    highpass: opt({ arg: '<s>', help: 'Gaussian high-pass on the cross-power spectrum, cycles per pixel, 0 to 0.5 (default 0: off)', text: 'number', schema: num({ min: 0, max: 0.5 }) }),
    refine: opt({ arg: '<n>', help: 'refinement passes per image on the area it shares with its reference (Fourier-shifted, Hann-windowed): for fields whose content enters and leaves the frame (default 0)', text: 'number', schema: int(0, 10) }),
    tiff: opt({ help: 'also write aligned.tif (float32, one page per energy)', text: 'flag', schema: v.boolean(msg('true or false')) }),
  },
  demo: {
    dir: opt({ arg: '<dir>', help: 'where the example data and results go (default xanes-demo)', text: 'string', schema: file('a folder name') }),
    size: opt({ arg: '<pixels>', help: 'image width and height (default 256)', text: 'number', schema: int(8, 4096) }),
  },
} as const;

export type Section = keyof typeof SECTIONS;
export type SectionValues<S extends Section> = { -readonly [K in keyof (typeof SECTIONS)[S]]?: (typeof SECTIONS)[S][K] extends OptionDef<infer X> ? v.InferOutput<X> : never };
export type Values = { [S in Section]: SectionValues<S> };

/** The sections a recipe may hold as objects (the steps of `xanes run`). */
export const RECIPE_SECTIONS = ['edge', 'fit', 'lcf', 'cluster', 'align'] as const satisfies readonly Section[];

/** Options of the stack-reading commands. */
const STACK = ['common.energies', 'common.energyUnit', 'common.flat', 'common.dark', 'common.noFlat', 'common.pixelSize', 'common.memory', 'common.backend', 'common.threads'];
const I0 = ['common.i0', 'common.i0Region'];
/** How to align (xanes align), and --align with it on the stack commands. */
const ALIGN_HOW = ['align.shifts', 'align.refEnergy', 'align.roi', 'align.on', 'align.maxJump', 'align.crop', 'align.interp', 'align.normalization', 'align.taper', 'align.highpass', 'align.refine'];
const ALIGN = ['align.align', ...ALIGN_HOW];

/**
 * The options each command takes ('section.name' or 'section.*'), in the order --help
 * lists them. Options a command does not list are unknown to it.
 */
export const COMMANDS: Record<string, string[]> = {
  edge: [...STACK, 'common.out', 'common.e0', 'common.mask', 'edge.*', ...ALIGN],
  align: [...STACK, ...I0, 'common.out', ...ALIGN_HOW, 'align.tiff'],
  info: ['common.energies', 'common.energyUnit', 'common.memory'],
  fit: [...STACK, 'common.out', 'common.e0', 'common.mask', 'fit.*', ...ALIGN],
  lcf: [...STACK, ...I0, 'common.out', 'common.mask', 'lcf.*', 'common.e0', 'edge.pre', 'edge.post', 'edge.nnorm', 'edge.maskSigma', ...ALIGN],
  spectra: [...STACK, ...I0, 'common.out', 'spectra.*'],
  pca: [...STACK, 'common.out', 'common.mask', 'pca.*', ...ALIGN],
  // (every cluster option but fitSample, which only the clustering across fields has)
  cluster: [...STACK, 'common.out', ...Object.keys(SECTIONS.cluster).filter((n) => n !== 'fitSample').map((n) => `cluster.${n}`), ...ALIGN],
  demo: ['demo.*', 'common.backend', 'common.memory'],
  inspect: ['inspect.*', 'common.out'],
  report: [],
  // `xanes run`: every option of the steps, flat on the command line, by section in a recipe.
  run: [
    'common.stacks', ...STACK, ...I0, 'common.out', 'common.steps', 'common.e0', 'common.mask', 'edge.*', 'fit.*', 'lcf.*',
    'cluster.features', 'cluster.k', 'cluster.kRange', 'cluster.seed', 'cluster.restarts', 'cluster.maxIter', 'cluster.standardize', 'cluster.weight', 'cluster.minWeight', 'cluster.minClusterSize', 'cluster.fitSample',
    ...ALIGN, 'common.shard', 'common.resume', 'common.assignFrom',
  ],
  // `xanes merge STUDY`: the across-field products of a sharded study (its recipe is in the study).
  merge: ['common.memory', 'common.backend', 'common.threads', 'common.noLabels'],
};

/** Options a command cannot run without (checked after unknown options, so a typo is named first). */
export const REQUIRED: Record<string, string[]> = {
  edge: ['common.out'], align: ['common.out'], fit: ['common.out', 'fit.model'], lcf: ['common.out'], spectra: ['common.out'], pca: ['common.out'], cluster: ['common.out'],
};

/** Options of `xanes run` named in two step sections: the command line's --max-iter is the fit's. */
export const RUN_CLI_SKIP = new Set(['cluster.maxIter']);

export interface OptionRef { section: Section; name: string; def: OptionDef; flag: string }

export const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export function optionRef(id: string): OptionRef {
  const [section, name] = id.split('.') as [Section, string];
  const def = (SECTIONS[section] as Record<string, OptionDef>)[name];
  if (!def) throw new Error(`schema: no option ${id}`);
  return { section, name, def, flag: `--${kebab(name)}` };
}

/** The options of a command, expanded. */
export function commandOptions(command: string): OptionRef[] {
  const ids = COMMANDS[command];
  if (!ids) throw new Error(`schema: no command ${command}`);
  const out: OptionRef[] = [];
  for (const id of ids) {
    const [section, name] = id.split('.') as [Section, string];
    if (name === '*') for (const n of Object.keys(SECTIONS[section])) out.push(optionRef(`${section}.${n}`));
    else out.push(optionRef(id));
  }
  return out;
}
