/**
 * Alignment of a stack across energies, as a step in front of any other: shifts from the
 * registration copy (or from a shifts.csv), then an aligned view of the stack that the
 * tiled runners read like any other (src/stack/shifted.ts).
 */
import type { StackSource } from '../stack/source.js';
import { ShiftedStack, commonArea } from '../stack/shifted.js';
import type { Backend } from '../pipeline/step.js';
import { InputError } from '../io/errors.js';
import { readShiftsCsv, roundShift, shiftsCsv } from '../io/shifts-csv.js';
import { renderShifts } from '../plot/shifts.js';
import { parseRegion } from '../stack/regions.js';
import { CrossPowerMode, ShiftMode } from '../kernels/align_layout.js';
import { copyFactor, copyReadBytes, registrationCopy, type RegistrationCopy } from './copy.js';
import { estimateShifts, type StackShifts } from './estimate.js';
import type { Rect } from './prepare.js';
import { CpuRegistrar } from './registrar-cpu.js';
import { GpuRegistrar } from './registrar-gpu.js';
import { UPSAMPLED_REGION } from '../kernels/align_layout.js';
import type { SectionValues, Values } from '../options/schema.js';
import { memoryBytes } from '../options/convert.js';

/** The alignment options, with the names the command line uses. */
export interface AlignOptions {
  /** --shifts FILE: apply these shifts instead of registering. */
  shifts?: string;
  /** --ref-energy eV: register every image to the one nearest this energy (default: neighbour chain). */
  refEnergy?: number;
  /** --roi rect:x0,y0,x1,y1: register on this region only. */
  roi?: string;
  /** --on intensity|gradient. */
  on?: 'intensity' | 'gradient';
  /** --max-jump px: report pair shifts larger than this. */
  maxJump?: number;
  /** --crop common|none: cut to the area valid at every energy, or keep the frame (NaN outside). */
  crop?: 'common' | 'none';
  /** --interp auto|fourier|bicubic|bilinear (auto: Fourier for whole images in memory, else bicubic). */
  interp?: 'auto' | 'fourier' | 'bicubic' | 'bilinear';
  /** --normalization none|phase: plain cross-correlation or phase correlation. */
  normalization?: 'none' | 'phase';
  /** --taper none|hann: window applied to the images before the FFT. */
  window?: 'none' | 'hann' | 'tukey';
  /** --highpass s: Gaussian high-pass on the cross-power spectrum, cycles per pixel (0 = off). */
  highpass?: number;
  /** --refine n: refinement passes per pair on the shared area (src/align/estimate.ts). */
  refine?: number;
}

export const ALIGN_DEFAULTS = {
  on: 'intensity',
  crop: 'none',
  interp: 'auto',
  normalization: 'none',
  window: 'none',
  highpass: 0,
  maxJump: 5,
  refine: 0,
} as const;

export interface Alignment {
  dy: Float64Array;
  dx: Float64Array;
  /** From registration (absent when read from --shifts). */
  estimate?: StackShifts;
  /** Source pixels per registration-copy pixel (1 = full resolution). */
  factor: number;
  /** The registration copy when it is the full-resolution stack (reused for Fourier shifts). */
  copy?: RegistrationCopy;
  /** The area valid at every energy, or null. */
  common: Rect | null;
  backend: string;
  seconds: number;
  /** What goes into summary.json. */
  record: AlignmentRecord;
}

/** summary.json's "alignment": how the shifts were measured (or read) and applied. */
export interface AlignmentRecord {
  /** --shifts: the file they were read from. */
  source?: string;
  strategy?: 'neighbour-chain' | 'reference';
  reference_index?: number;
  reference_energy_eV?: number;
  on?: string;
  roi?: string | null;
  normalization?: string;
  window?: string;
  highpass?: number;
  refine_passes?: number;
  upsample_factor?: number;
  downsample_factor?: number;
  max_jump_px?: number;
  jumps?: { index: number; energy_eV: number; dy_px: number; dx_px: number }[];
  image_status?: Record<string, number>;
  unregistered_images?: number[];
  min_peak?: number | null;
  max_abs_dy_px: number;
  max_abs_dx_px: number;
  common_area: Rect | null;
  /** As a step of another command (--align): how and where it ran. */
  backend?: string;
  backend_reason?: string;
  seconds?: number;
  applied_with?: string;
  crop?: string;
  dy_px?: number[];
  dx_px?: number[];
}

/** The schema's `align` section (src/options/schema.ts) as AlignOptions. */
export function alignOptionsOf(a: SectionValues<'align'>): AlignOptions {
  return { shifts: a.shifts, refEnergy: a.refEnergy, roi: a.roi, on: a.on, maxJump: a.maxJump, crop: a.crop, interp: a.interp, normalization: a.normalization, window: a.taper, highpass: a.highpass, refine: a.refine };
}

/** --align (or --shifts alone) on a stack command: the alignment step, or undefined. */
export function alignStepOf(a: SectionValues<'align'>, c: Values['common']): AlignStep | undefined {
  if (a.align !== true && a.shifts === undefined) return undefined;
  return { ...alignOptionsOf(a), backend: c.backend, threads: c.threads, budgetBytes: memoryBytes(c.memory) };
}

export function parseAlignChoice<T extends string>(option: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new InputError(option, `expected ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}

/** Index of the energy nearest `eV`, which must lie within the scan. */
export function nearestEnergy(energies: Float64Array, eV: number): number {
  const n = energies.length;
  if (!(eV >= energies[0] - 1e-9 && eV <= energies[n - 1] + 1e-9)) {
    throw new InputError('--ref-energy', `${eV} eV is outside the scan ${energies[0]}..${energies[n - 1]} eV`);
  }
  let best = 0;
  for (let e = 1; e < n; e++) if (Math.abs(energies[e] - eV) < Math.abs(energies[best] - eV)) best = e;
  return best;
}

/**
 * Shifts for `source`: from --shifts, or by registration on `backend` (GPU kernels or the CPU
 * twins). `budgetBytes` bounds the registration copy (with the process baseline subtracted).
 */
export async function computeAlignment(
  source: StackSource,
  energies: Float64Array,
  o: AlignOptions,
  backend: Backend,
  budgetBytes: number,
  notice: (line: string) => void = () => {},
  /** The process's memory before the copy (default: measured RSS). Tests fix it to plan exactly. */
  baselineBytes = process.memoryUsage().rss,
): Promise<Alignment> {
  const t0 = performance.now();
  const { nE, height: H, width: W } = source;
  if (nE < 2) throw new InputError(source.path, `alignment needs at least two images; this stack has ${nE}`);
  const opts = { ...ALIGN_DEFAULTS, ...definedOnly(o) };
  if (o.shifts) {
    const s = readShiftsCsv(o.shifts, nE);
    const common = commonArea(H, W, s.dy, s.dx);
    return {
      ...s, factor: 1, common, backend: 'none (shifts read from file)', seconds: (performance.now() - t0) / 1000,
      record: { source: o.shifts, max_abs_dy_px: maxAbs(s.dy), max_abs_dx_px: maxAbs(s.dx), common_area: common },
    };
  }
  if (!(opts.maxJump > 0)) throw new InputError('--max-jump', `expected a positive number of pixels, got ${opts.maxJump}`);
  if (!(opts.highpass >= 0 && opts.highpass < 0.5)) throw new InputError('--highpass', `expected 0 <= s < 0.5 cycles per pixel, got ${opts.highpass}`);
  const reference = opts.refEnergy !== undefined ? nearestEnergy(energies, opts.refEnergy) : undefined;
  let roi: Rect | undefined;
  if (opts.roi !== undefined) {
    if (!opts.roi.trim().toLowerCase().startsWith('rect:')) throw new InputError('--roi', `'${opts.roi}': expected rect:x0,y0,x1,y1`);
    const r = await parseRegion(opts.roi, W, H, '--roi');
    if (r.x1 - r.x0 < 8 || r.y1 - r.y0 < 8) throw new InputError('--roi', `'${opts.roi}' is too small to register on (at least 8 x 8 pixels)`);
    roi = { x0: r.x0, y0: r.y0, x1: r.x1, y1: r.y1 };
  }
  const room = budgetBytes - baselineBytes - copyReadBytes(nE, W, 1, H);
  const factor = copyFactor(nE, H, W, room);
  if (factor > 1) notice(`xanes: the stack does not fit the memory budget whole; shifts are measured on a copy downsampled ${factor} x ${factor}`);
  const copy = await registrationCopy(source, factor);
  const f = factor;
  const roiCopy = roi ? { x0: Math.floor(roi.x0 / f), y0: Math.floor(roi.y0 / f), x1: Math.ceil(roi.x1 / f), y1: Math.ceil(roi.y1 / f) } : undefined;
  const plane = copy.height * copy.width;
  const reg = { mode: opts.normalization === 'phase' ? CrossPowerMode.PHASE : CrossPowerMode.NONE, highpass: opts.highpass };
  const est = await estimateShifts(
    nE, copy.height, copy.width,
    (e) => copy.cube.subarray(e * plane, (e + 1) * plane),
    (ny, nx) => (backend.gpu ? new GpuRegistrar(backend.gpu, ny, nx, reg, UPSAMPLED_REGION) : new CpuRegistrar(ny, nx, reg)),
    { prepare: { roi: roiCopy, on: opts.on, window: opts.window }, reference, maxJump: opts.maxJump / f, refine: opts.refine },
    f,
  );
  // Rounded to the precision shifts.csv keeps, so a run and a later --shifts of its file agree exactly.
  for (const v of [est.dy, est.dx]) for (let e = 0; e < nE; e++) v[e] = roundShift(v[e]);
  const failed = est.status.filter((s) => s !== 'ok').length;
  if (failed > 0) notice(`xanes: ${failed} of ${nE} images could not be registered (${statusList(est.status)}); their shifts are interpolated from their neighbours`);
  for (const j of est.jumps) notice(`xanes: image ${j.index} (${energies[j.index]} eV) jumped by (${j.dy.toFixed(2)}, ${j.dx.toFixed(2)}) px from its neighbour, more than --max-jump ${opts.maxJump} px`);
  const common = commonArea(H, W, est.dy, est.dx);
  return {
    dy: est.dy, dx: est.dx, estimate: est, factor, copy: factor === 1 ? copy : undefined, common,
    backend: backend.name, seconds: (performance.now() - t0) / 1000,
    record: {
      strategy: est.strategy,
      reference_index: est.referenceIndex,
      reference_energy_eV: energies[est.referenceIndex],
      on: opts.on, roi: opts.roi ?? null, normalization: opts.normalization, window: opts.window, highpass: opts.highpass, refine_passes: opts.refine,
      upsample_factor: 100, downsample_factor: factor, max_jump_px: opts.maxJump,
      jumps: est.jumps.map((j) => ({ index: j.index, energy_eV: energies[j.index], dy_px: j.dy, dx_px: j.dx })),
      image_status: Object.fromEntries(['ok', 'no_data', 'no_contrast'].map((k) => [k, est.status.filter((s) => s === k).length])),
      unregistered_images: est.status.map((s, i) => (s === 'ok' ? -1 : i)).filter((i) => i >= 0),
      min_peak: minFinite(est.peak),
      max_abs_dy_px: maxAbs(est.dy), max_abs_dx_px: maxAbs(est.dx), common_area: common,
    },
  };
}

/** The aligned view the tiled runners read (bicubic unless bilinear is asked for). */
export function alignedView(source: StackSource, a: Alignment, o: AlignOptions): ShiftedStack {
  const mode = o.interp === 'bilinear' ? ShiftMode.BILINEAR : ShiftMode.BICUBIC;
  if (o.interp === 'fourier') throw new InputError('--interp', 'fourier needs whole images; with --align the stack is aligned tile by tile: use bicubic or bilinear (or xanes align first)');
  return new ShiftedStack(source, a.dy, a.dx, mode, cropRect(a, o, source.path));
}

export function cropRect(a: Alignment, o: AlignOptions, where: string): Rect | undefined {
  if ((o.crop ?? ALIGN_DEFAULTS.crop) !== 'common') return undefined;
  if (!a.common) throw new InputError('--crop', `the shifts leave no pixel valid at every energy in ${where}`);
  return a.common;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function maxAbs(v: Float64Array): number {
  let m = 0;
  for (const x of v) m = Math.max(m, Math.abs(x));
  return m;
}

function minFinite(v: Float64Array): number | null {
  let m = Infinity;
  for (const x of v) if (Number.isFinite(x)) m = Math.min(m, x);
  return Number.isFinite(m) ? m : null;
}

function statusList(s: string[]): string {
  return s.map((v, i) => (v === 'ok' ? '' : `${i}: ${v}`)).filter(Boolean).slice(0, 6).join(', ');
}

/**
 * The backend registration runs on. --backend auto takes a hardware GPU; with only the
 * software adapter (llvmpipe) it takes the CPU twins, which bench/align.bench.ts measured
 * faster there for every image size (see bench/README.md).
 */
export async function alignBackend(choice: 'auto' | 'webgpu' | 'cpu', threads?: number): Promise<{ backend: Backend; reason: string }> {
  const { cpuBackend } = await import('../pipeline/backend.js');
  const { getGpu } = await import('../gpu/device.js');
  if (choice === 'cpu') return { backend: cpuBackend(threads), reason: '--backend cpu' };
  const gpu = await getGpu();
  if (choice === 'webgpu') {
    if (!gpu) throw new InputError('--backend', 'webgpu: no WebGPU adapter was found (no GPU driver and no software OpenGL ES; see the README)');
    return { backend: { name: 'webgpu', adapter: gpu.adapterName, gpu }, reason: '--backend webgpu' };
  }
  if (gpu && !gpu.isSoftware) return { backend: { name: 'webgpu', adapter: gpu.adapterName, gpu }, reason: 'hardware GPU adapter' };
  return { backend: cpuBackend(threads), reason: gpu ? 'software GPU adapter: registration is faster on the CPU (bench/align.bench.ts)' : 'no WebGPU adapter' };
}

/** --align on a stack command: what the command line gives besides the alignment options. */
export interface AlignStep extends AlignOptions {
  backend?: 'auto' | 'webgpu' | 'cpu';
  threads?: number;
  budgetBytes: number;
}

/** Measures (or reads) the shifts and returns the aligned view the command's tiles are read from. */
export async function applyAlignStep(source: StackSource, energies: Float64Array, step: AlignStep, notice: (l: string) => void): Promise<{ view: ShiftedStack; alignment: Alignment }> {
  const { backend, reason } = await alignBackend(step.backend ?? 'auto', step.threads);
  const a = await computeAlignment(source, energies, step, backend, step.budgetBytes, notice);
  a.copy = undefined;
  a.record = { ...a.record, backend: backend.name, backend_reason: reason, seconds: a.seconds, applied_with: step.interp === 'bilinear' ? 'bilinear' : 'bicubic', crop: step.crop ?? ALIGN_DEFAULTS.crop, dy_px: Array.from(a.dy), dx_px: Array.from(a.dx) };
  return { view: alignedView(source, a, step), alignment: a };
}

/**
 * With --align, a command's output folder gets the shifts it removed (shifts.csv, shifts.png,
 * in `sub`) and its summary.json the alignment record; without, null.
 */
export async function writeAlignment(dir: { writeText(n: string, t: string): void; writeBytes(n: string, b: Uint8Array): void }, inputs: { alignment: Alignment | null; energies: Float64Array } | null, sub = ''): Promise<AlignmentRecord | null> {
  const a = inputs?.alignment;
  if (!a) return null;
  dir.writeText(`${sub}shifts.csv`, shiftsCsv(inputs.energies, a.dy, a.dx));
  dir.writeBytes(`${sub}shifts.png`, await renderShifts(inputs.energies, a.dy, a.dx, `drift removed (${a.estimate?.strategy ?? 'from file'})`, (a.estimate?.jumps ?? []).map((j) => inputs.energies[j.index])));
  return a.record;
}
