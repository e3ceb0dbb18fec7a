/**
 * `xanes edge`: edge-energy maps of a stack, end to end. Opens the inputs, finds the
 * nominal e0, streams the stack through normalize + edge on the chosen backend, and writes
 * the maps, the e0 histogram, two colour maps and summary.json, all or nothing.
 */
import { applyPixelMask, countStatus, loadPixelMask, maskedSink } from './pixel-mask.js';
import { makeEdgePlan, derivativeMaxEnergy, DEFAULT_EDGE_OPTIONS, type EdgeOptions } from './edge-plan.js';
import { edgeStep, EDGE_MAP_UNITS, EDGE_STEP_SHAPE } from './edge-step.js';
import { openInputs, meanSpectrum, type StackInputs, type OpenedStack } from './inputs.js';
import { runTiles, tileBudget, type RunResult } from './run-tiles.js';
import { planTiles } from '../stack/tiles.js';
import { StepMapStream } from '../io/map-stream.js';
import { SPECTRA_MAX_VALUES } from '../report/spectra-file.js';
import { releaseGpu } from '../gpu/device.js';
import { collectGarbage, edgeOutputPhaseBytes, memoryPhase, memorySummary } from './memory.js';
import { selectBackend, type BackendChoice } from './backend.js';
import type { OutputDir } from '../io/outdir.js';
import { withOutputDir } from '../io/run-output.js';
import { finishReport, spectraRecorder } from '../report/run-report.js';
import { checkOutPath, inputFiles } from '../io/outdir.js';
import { edgeSectionOf } from '../options/convert.js';
import { InputError } from '../io/errors.js';
import { blockHistogram, blockPercentiles, histogramCsv, histogramPeak, robustHistogramRange, type Blocks } from '../plot/histogram.js';
import { npyRowBlocks } from '../io/npy.js';
import { renderHistogram } from '../plot/histogram-png.js';
import { renderMap } from '../plot/maps.js';
import { EdgeStatus, EDGE_STATUS_NAMES } from '../kernels/layout.js';
import { writeAlignment } from '../align/align.js';
import { VERSION } from '../version.js';
import type { EdgeSummary } from './summary.js';

export interface EdgeRunOptions extends StackInputs {
  out: string;
  edge: Partial<EdgeOptions>;
  range?: [number, number];
  /** --mask: an earlier run's mask (src/pipeline/pixel-mask.ts). */
  mask?: string;
  backend: BackendChoice;
  /** CPU backend worker threads (default: every core). */
  threads?: number;
  budgetBytes: number;
  notice?: (line: string) => void;
  onTile?: (done: number, total: number) => void;
  /**
   * Destroy the process-wide GPU device once the tiles are done (the command line's `xanes
   * edge`, whose process ends after this run): the allocator then reuses what Dawn and the
   * software GPU held for writing the outputs (measured on a 2000 x 2000 x 101 run on
   * llvmpipe: the output phase's peak 16 MiB lower). The plan does not count on it (not
   * every driver returns the memory). A library caller that goes on using the GPU leaves
   * this off.
   */
  releaseGpu?: boolean;
}

export interface EdgeRunReport {
  outDir: string;
  summary: EdgeSummary;
  result: RunResult;
}

import { E0_HIST_BIN_EV, E0_PEAK_HALF_RANGE_EV } from '../plot/ranges.js';
export { E0_HIST_BIN_EV, E0_PEAK_HALF_RANGE_EV };
/**
 * The maps `xanes edge` keeps in memory after its tiles: none. Every map is streamed to disk
 * tile by tile, and the histogram and pictures read e0_half back in blocks of rows.
 */
export const EDGE_KEPT_MAPS: readonly string[] = [];

export async function runEdge(o: EdgeRunOptions): Promise<EdgeRunReport> {
  const notice = o.notice ?? ((l: string) => process.stderr.write(`${l}\n`));
  const started = new Date();
  const files = inputFiles([o.stack, o.energies, o.flat, o.dark, o.i0, o.align?.shifts, o.mask]);
  checkOutPath(o.out, files);
  const inputs = await openInputs(o);
  try {
    return await withOutputDir(o.out, files, (out) => edgeInto(out, inputs, o, notice, started));
  } finally {
    inputs.close();
  }
}

async function edgeInto(out: OutputDir, inputs: OpenedStack, o: EdgeRunOptions, notice: (l: string) => void, started: Date): Promise<EdgeRunReport> {
  inputs.warnings.forEach(notice);
  const options: EdgeOptions = { ...DEFAULT_EDGE_OPTIONS, ...o.edge };
  const { source, energies } = inputs;
  // The backend first: on webgpu, Dawn and its driver (on a software GPU, Mesa's llvmpipe:
  // 60-90 MiB) are part of the process whose baseline the plan measures. Then the run's
  // memory plan before any pixel is read: a stack too large for the budget is refused
  // before sampling decodes any of it.
  const sel = await selectBackend(o.backend, notice, 'pixels', o.threads);
  memoryPhase('backend ready');
  const held = { keepMaps: EDGE_KEPT_MAPS, afterBytes: edgeOutputPhaseBytes(source.height, source.width), readerBytes: inputs.readerBytes };
  planTiles(source.height, source.width, tileBudget(source, EDGE_STEP_SHAPE, sel.backend, o.budgetBytes, inputs.extraBytesPerPixel, undefined, held));
  const e0FromMean = options.e0 === undefined;
  const e0 = options.e0 ?? derivativeMaxEnergy(energies, await meanSpectrum(source), 1);
  if (!(e0 >= energies[0] && e0 <= energies[energies.length - 1])) {
    throw new InputError('--e0', `${e0} eV is outside the scan ${energies[0]}..${energies[energies.length - 1]} eV`);
  }
  const plan = makeEdgePlan(energies, e0, options, o.energies);
  const step = edgeStep(plan);
  const pixelMask = o.mask ? loadPixelMask(o.mask, source.height, source.width) : null;
  inputs.resetMaskedPoints(); // sampling above read some rows
  // Every map goes to disk tile by tile; only e0_half stays in memory (histogram, pictures).
  // The report's spectra: at most 1/32 of the budget (they are held for the whole run).
  const recorder = spectraRecorder(inputs, Math.min(SPECTRA_MAX_VALUES, Math.floor(o.budgetBytes / 32 / 4)));
  const stream = new StepMapStream(out, step.mapNames, source.height, source.width);
  let result: RunResult;
  try {
    result = await runTiles(source, step, sel.backend, {
      budgetBytes: o.budgetBytes,
      sourceBytesPerPixel: inputs.extraBytesPerPixel,
      onTile: o.onTile,
      onTileData: recorder.add,
      // --mask before the maps reach the files (they are streamed tile by tile).
      mapSink: pixelMask ? maskedSink(stream, pixelMask, source.width) : stream,
      ...held,
    });
  } finally {
    stream.close();
  }
  memoryPhase('tiles done');
  if (o.releaseGpu && sel.backend.gpu) await releaseGpu();
  collectGarbage(); // the tiles' buffers, before the maps are written and drawn

  const { width: W, height: H } = result;
  const maskedByMask = pixelMask ? applyPixelMask({}, result.status, pixelMask, EdgeStatus.NO_DATA) : 0;
  if (pixelMask) result.statusCounts = countStatus(result.status, step.statusNames);
  out.recordInput('', { stack: o.stack, energies, pixelSizeUm: inputs.pixelSizeUm, volume: inputs.volume, read: inputs.provenance });
  stream.finish(result.status, step.statusNames);
  memoryPhase('maps written');
  // e0_half read back from its file in blocks of rows: no whole map is held.
  const e0map = npyRowBlocks(out.file('e0_half.npy'), W, H);
  const e0values: Blocks = (visit) => e0map((b) => visit(b));
  const used = result.statusCounts[EDGE_STATUS_NAMES[EdgeStatus.OK]] ?? 0;
  let hist = null, peak = NaN, range: [number, number] = [NaN, NaN];
  let histRange: { min: number; max: number } | null = null, histOutside = 0;
  if (used > 0) {
    // Over a robust range (1st-99th percentile widened by half its span): a few outliers
    // no longer stretch it over hundreds of eV. Values outside are counted in summary.json.
    histRange = robustHistogramRange(e0values, E0_HIST_BIN_EV);
    hist = blockHistogram(e0values, E0_HIST_BIN_EV, histRange);
    histOutside = used - hist.counts.reduce((a, b) => a + b, 0);
    out.writeText('e0_hist.csv', histogramCsv(hist));
    out.writeBytes('e0_hist.png', await renderHistogram(hist, { title: 'e0_half histogram', xlabel: 'e0_half (eV)', ylabel: 'pixels', rules: [{ x: histogramPeak(hist), label: `peak ${histogramPeak(hist).toFixed(2)} eV` }] }));
    collectGarbage(); // each picture's transient buffers (~35 MiB for a 1000 x 1000 picture) before the next
    peak = histogramPeak(hist);
    const [p2, p98] = blockPercentiles(e0values, [2, 98]);
    range = o.range ?? [p2, p98];
    if (!(range[1] > range[0])) range = [range[0] - 0.5, range[0] + 0.5];
    out.writeBytes('e0_half_range.png', await renderMap({ data: e0map, width: W, height: H, vmin: range[0], vmax: range[1], title: `e0_half ${o.range ? 'fixed range' : '2-98 percentile'}`, unit: 'eV', label: 'e0_half', pixelSizeUm: inputs.pixelSizeUm?.x }));
    collectGarbage();
    out.writeBytes('e0_half_peak.png', await renderMap({ data: e0map, width: W, height: H, vmin: peak - E0_PEAK_HALF_RANGE_EV, vmax: peak + E0_PEAK_HALF_RANGE_EV, title: `e0_half peak +/- ${E0_PEAK_HALF_RANGE_EV} eV`, unit: 'eV', label: 'e0_half', pixelSizeUm: inputs.pixelSizeUm?.x }));
    collectGarbage();
  } else {
    notice('xanes: every pixel is masked; no histogram or colour maps written');
  }

  const summary: EdgeSummary = {
    tool: 'xanes-engine',
    version: VERSION,
    command: 'edge',
    finished: true,
    alignment: await writeAlignment(out, inputs),
    started: started.toISOString(),
    inputs: {
      stack: o.stack, energies: o.energies, energy_unit: o.energyUnit ?? 'eV', flat: o.flat ?? null, dark: o.dark ?? null,
      shape: { energies: source.nE, height: H, width: W }, dtype: source.dtype, read: inputs.provenance,
      energy_range_eV: [energies[0], energies[energies.length - 1]],
    },
    // The options as used (defaults filled in), in the names the command line and recipes take.
    options: { e0: options.e0 ?? null, edge: { ...edgeSectionOf(options), ...(o.range ? { range: o.range } : {}) } },
    parameters: {
      e0_eV: e0, e0_source: e0FromMean ? 'mean spectrum (max of smoothed derivative)' : '--e0',
      nnorm_used: plan.post.degree,
      normalization: 'xraylarch 0.9.58 pre_edge conventions: windows from the grid energy nearest e0; a window takes the point at or below its start up to, not including, the point nearest its end; edge step at each pixel\'s own e0 (grid energy nearest e0_deriv)',
      energies_fitted_eV: {
        pre: [energies[plan.pre.i0], energies[plan.pre.i1 - 1]], post: [energies[plan.post.i0], energies[plan.post.i1 - 1]],
      },
      energies_used: { pre: plan.pre.i1 - plan.pre.i0, post: plan.post.i1 - plan.post.i0, edge: plan.edge.i1 - plan.edge.i0 },
      colour_range_eV: range, histogram_bin_eV: E0_HIST_BIN_EV, histogram_range_eV: histRange ? [histRange.min, histRange.max] : null, histogram_outside_pixels: histOutside, histogram_peak_eV: peak,
    },
    backend: { name: sel.backend.name, adapter: sel.backend.adapter, ...(sel.auto ? { auto: sel.auto } : {}) },
    memory: memorySummary(o.budgetBytes, { rows_per_tile: result.tilePlan.rowsPerTile, tiles: result.tilesRun, oom_retries: result.oomRetries, planned_peak_MiB: Math.round(result.tilePlan.peakBytes / 2 ** 20) }),
    timings_s: { ...result.seconds, spectra_per_s: (H * W) / result.seconds.total },
    counts: {
      pixels: H * W,
      used: used,
      masked: H * W - used,
      status: result.statusCounts, masked_by_mask: maskedByMask,
      masked_transmission_points: inputs.maskedPoints(),
    },
    maps: Object.fromEntries(step.mapNames.map((n) => [n, { files: [`${n}.npy`, `${n}.tif`], unit: EDGE_MAP_UNITS[n] }])),
    status_codes: Object.fromEntries(step.statusNames.map((n, i) => [i, n])),
  };
  out.writeText('summary.json', JSON.stringify(summary, null, 2) + '\n');
  memoryPhase('pictures and summary.json written');
  finishReport(out, recorder);
  memoryPhase('report written');
  return { outDir: out.finalPath, summary, result };
}
