/**
 * `xanes align`: measures the drift of every image of a stack and writes the aligned stack
 * (aligned.npy, and aligned.tif on request), shifts.csv, shifts.png and summary.json, all or
 * nothing. Whole images are shifted in Fourier space when the stack fits the memory budget
 * (exact for band-limited images); otherwise, and on request, by bicubic or bilinear
 * interpolation tile by tile.
 */
import { openInputs, type StackInputs, type OpenedStack } from './inputs.js';
import type { BackendChoice } from './backend.js';
import type { OutputDir } from '../io/outdir.js';
import { withOutputDir } from '../io/run-output.js';
import { checkOutPath, inputFiles } from '../io/outdir.js';
import { InputError } from '../io/errors.js';
import { shiftsCsv } from '../io/shifts-csv.js';
import { NpyStackWriter } from '../io/npy-writer.js';
import { H5StackWriter } from '../io/h5-stack-writer.js';
import { openStack } from '../stack/source.js';
import { NpyFile } from '../io/npy.js';
import { writeTiffStack } from '../io/tiff.js';
import { renderShifts } from '../plot/shifts.js';
import { ShiftedStack } from '../stack/shifted.js';
import { ShiftMode } from '../kernels/align_layout.js';
import { alignBackend, computeAlignment, cropRect, ALIGN_DEFAULTS, type AlignOptions } from '../align/align.js';
import { registrationCopy } from '../align/copy.js';
import { FourierApplyGpu, fourierApplyCpu } from '../align/apply.js';
import { paddedSize } from '../align/prepare.js';
import { VERSION } from '../version.js';
import type { AlignSummary } from './summary.js';

export interface AlignRunOptions extends StackInputs, AlignOptions {
  out: string;
  backend: BackendChoice;
  threads?: number;
  budgetBytes: number;
  /** Also write aligned.tif (float32, one page per energy). */
  tiff?: boolean;
  notice?: (line: string) => void;
  onImage?: (done: number, total: number) => void;
}

export interface AlignRunReport {
  outDir: string;
  summary: AlignSummary;
}

export async function runAlign(o: AlignRunOptions): Promise<AlignRunReport> {
  const notice = o.notice ?? ((l: string) => process.stderr.write(`${l}\n`));
  const started = new Date();
  const files = inputFiles([o.stack, o.energies, o.flat, o.dark, o.i0, o.shifts]);
  checkOutPath(o.out, files);
  const inputs = await openInputs(o);
  try {
    return await withOutputDir(o.out, files, (out) => alignInto(out, inputs, o, notice, started));
  } finally {
    inputs.close();
  }
}

const MiB = 2 ** 20;

/** An HDF5 input (file.h5, .hdf5, .hdf, .nxs, optionally #/dataset). */
function isHdf5Path(p: string): boolean {
  return /\.(h5|hdf5|hdf|nxs)(#.*)?$/i.test(p);
}

async function alignInto(out: OutputDir, inputs: OpenedStack, o: AlignRunOptions, notice: (l: string) => void, started: Date): Promise<AlignRunReport> {
  inputs.warnings.forEach(notice);
  const { source, energies } = inputs;
  const { nE, height: H, width: W } = source;
  const t0 = performance.now();
  const { backend, reason } = await alignBackend(o.backend, o.threads);
  const a = await computeAlignment(source, energies, o, backend, o.budgetBytes, notice);
  out.writeText('shifts.csv', shiftsCsv(energies, a.dy, a.dx));
  out.writeBytes('shifts.png', await renderShifts(energies, a.dy, a.dx, `drift removed (${a.estimate?.strategy ?? 'from file'})`, (a.estimate?.jumps ?? []).map((j) => energies[j.index])));

  const crop = cropRect(a, o, source.path) ?? { y0: 0, y1: H, x0: 0, x1: W };
  const h = crop.y1 - crop.y0, w = crop.x1 - crop.x0;
  const interp = o.interp ?? ALIGN_DEFAULTS.interp;
  const { ny, nx } = paddedSize(H, W);
  const wholeBytes = 4 * nE * H * W + 2 * 16 * ny * nx;
  const fitsWhole = wholeBytes + process.memoryUsage().rss <= o.budgetBytes;
  let copy = a.copy;
  a.copy = undefined;
  const fourier = interp === 'fourier' || (interp === 'auto' && (copy !== undefined || fitsWhole));
  if (fourier && !copy) {
    if (!fitsWhole) throw new InputError('--interp', `fourier needs the whole stack in memory (${Math.ceil((wholeBytes + process.memoryUsage().rss) / MiB)} MiB with this process), more than --memory ${Math.round(o.budgetBytes / MiB)}: use bicubic or bilinear, or a larger --memory`);
    copy = await registrationCopy(source, 1);
  }
  const tApply = performance.now();
  // The aligned stack stays out of results.h5 (it may be larger than memory; summary.json names it).
  out.results.exclude = new Set(['aligned.npy']);
  out.recordInput('', { stack: o.stack, energies });
  // The same format family as the input: HDF5 in, HDF5 out (NeXus); anything else, .npy.
  const h5 = isHdf5Path(o.stack);
  const stackFile = h5 ? 'aligned.h5' : 'aligned.npy';
  const writer = h5
    ? await H5StackWriter.create(out.file(stackFile), energies, h, w, `xanes align of ${o.stack}`)
    : new NpyStackWriter(out.file(stackFile), nE, h, w);
  let method: string;
  try {
    if (fourier) {
      method = 'fourier';
      const plane = H * W;
      const img = new Float32Array(plane);
      const cut = new Float32Array(h * w);
      const gpu = backend.gpu ? new FourierApplyGpu(backend.gpu, H, W) : null;
      try {
        for (let e = 0; e < nE; e++) {
          const src = copy!.cube.subarray(e * plane, (e + 1) * plane);
          if (gpu) await gpu.apply(src, a.dy[e], a.dx[e], img);
          else fourierApplyCpu(src, H, W, a.dy[e], a.dx[e], img);
          for (let y = 0; y < h; y++) cut.set(img.subarray((crop.y0 + y) * W + crop.x0, (crop.y0 + y) * W + crop.x1), y * w);
          writer.writeImage(e, cut);
          o.onImage?.(e + 1, nE);
        }
      } finally {
        gpu?.destroy();
      }
    } else {
      method = interp === 'bilinear' ? 'bilinear' : 'bicubic';
      copy = undefined;
      const view = new ShiftedStack(source, a.dy, a.dx, method === 'bilinear' ? ShiftMode.BILINEAR : ShiftMode.BICUBIC, crop);
      // A tile: the output rows, the source rows with the margin, and the full-width result.
      const rowBytes = 4 * nE * (W * 2 + w);
      const room = o.budgetBytes - process.memoryUsage().rss - 4 * nE * W * view.marginRows;
      const rows = Math.min(h, Math.max(1, Math.floor(room / rowBytes)));
      const tile = new Float32Array(nE * rows * w);
      for (let y0 = 0; y0 < h; y0 += rows) {
        const r = Math.min(rows, h - y0);
        await view.readRows(y0, r, tile);
        writer.writeRows(y0, r, tile.subarray(0, nE * r * w));
        o.onImage?.(y0 + r, h);
      }
    }
  } finally {
    writer.close();
  }
  copy = undefined;
  const files = [stackFile, 'shifts.csv', 'shifts.png', 'summary.json'];
  if (o.tiff) {
    const bytes = 4 * nE * h * w;
    if (bytes + process.memoryUsage().rss > o.budgetBytes) throw new InputError('--tiff', `the aligned stack (${Math.ceil(bytes / MiB)} MiB) does not fit --memory ${Math.round(o.budgetBytes / MiB)} to be written as TIFF; use ${stackFile}`);
    const all = new Float32Array(nE * h * w);
    const src = h5 ? await openStack(out.file(stackFile)) : null;
    const f = h5 ? null : NpyFile.open(out.file(stackFile));
    try {
      if (src) await src.readRows(0, h, all);
      else all.set(f!.readAll() as Float32Array);
      writeTiffStack(out.file('aligned.tif'), all, w, h, nE, { description: 'xanes align: aligned stack, one page per energy' });
    } finally {
      src?.close();
      f?.close();
    }
    files.push('aligned.tif');
  }
  const tEnd = performance.now();
  const summary: AlignSummary = {
    tool: 'xanes-engine',
    version: VERSION,
    command: 'align',
    finished: true,
    started: started.toISOString(),
    inputs: {
      stack: o.stack, energies: o.energies ?? null, energy_unit: o.energyUnit ?? 'eV', flat: o.flat ?? null, dark: o.dark ?? null,
      i0: o.i0 ?? null, i0_region: o.i0Region ?? null, shifts: o.shifts ?? null,
      shape: { energies: nE, height: H, width: W }, dtype: source.dtype,
      energy_range_eV: [energies[0], energies[nE - 1]],
    },
    alignment: {
      ...a.record,
      sign_convention: 'dy_px, dx_px: displacement of each image\'s content relative to the reference, removed by the alignment; positive dy = moved down (larger row index), positive dx = moved right',
      applied_with: method!,
      crop: o.crop ?? ALIGN_DEFAULTS.crop,
      output_area: { x0: crop.x0, y0: crop.y0, x1: crop.x1, y1: crop.y1 },
      outside_field: o.crop === 'common' ? 'cut away (--crop common)' : 'NaN',
    },
    outputs: { files, aligned_shape: { energies: nE, height: h, width: w }, dtype: 'float32' },
    backend: { name: backend.name, adapter: backend.adapter, reason },
    memory: { budget_MiB: o.budgetBytes / MiB, peak_rss_MiB: Math.round(process.resourceUsage().maxRSS / 1024) },
    timings_s: { total: (tEnd - t0) / 1000, shifts: a.seconds, apply: (tEnd - tApply) / 1000, images_per_s: nE / a.seconds },
  };
  out.writeText('summary.json', JSON.stringify(summary, null, 2) + '\n');
  return { outDir: out.finalPath, summary };
}
