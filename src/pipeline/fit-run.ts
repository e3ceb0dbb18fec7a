/**
 * `xanes fit` as a library call: per-pixel Levenberg-Marquardt fits of a model written on
 * the command line (src/models), streamed over tiles on the chosen backend, with maps of
 * every parameter and its standard error, reduced chi-square, status and iterations.
 */
import { openInputs, meanSpectrum, withSamplingBands, type StackInputs } from './inputs.js';
import { runTiles } from './run-tiles.js';
import { selectBackend, type BackendChoice } from './backend.js';
import { derivativeMaxEnergy } from './edge-plan.js';
import { fitStep, FIT_STATUS_NAMES } from './fit-step.js';
import { parseModelSpec, type FitModel } from '../models/model.js';
import { parseFitOptions, type RawFitOptions } from '../models/options.js';
import { withOutputDir } from '../io/run-output.js';
import { finishReport, spectraRecorder } from '../report/run-report.js';
import { SPECTRA_MAX_VALUES } from '../report/spectra-file.js';
import { outputPhaseBytes } from './memory.js';
import { COMPOSITION_UNITS } from './composition.js';
import { checkOutPath, inputFiles } from '../io/outdir.js';
import { renderMap } from '../plot/maps.js';
import { compositionOfFit, type CompositionRequest } from './composition.js';
import { applyPixelMask, countStatus, loadPixelMask } from './pixel-mask.js';
import { FitStatus, FIT_STOP_NAMES, FIT_TUNING } from '../models/layout.js';
import { percentiles } from '../plot/histogram.js';
import { writeAlignment } from '../align/align.js';
import { VERSION } from '../version.js';
import type { FitSummary } from './summary.js';

export interface FitRunOptions extends StackInputs {
  out: string;
  model: string;
  fit: RawFitOptions;
  /** Edge energy anchoring the start-value windows; default from the mean spectrum. */
  e0?: number;
  /** --mask: an earlier run's mask (src/pipeline/pixel-mask.ts). */
  mask?: string;
  /** --phase: the composition maps of spectroscopic ptychography (src/pipeline/composition.ts). */
  composition?: CompositionRequest;
  backend: BackendChoice;
  threads?: number;
  budgetBytes: number;
  notice?: (line: string) => void;
  onTile?: (done: number, total: number) => void;
}

/** Units of a parameter by its role in the model. */
const ROLE_UNITS: Record<string, string> = { energy: 'eV', width: 'eV', amplitude: 'data units (absorbance)', slope: 'data units per eV', fraction: '1' };

/** summary.json's "model": the spec, parameter names, their units and the derived maps. */
export function modelRecord(spec: string, model: FitModel): FitSummary['model'] {
  return { spec, parameters: model.paramNames, units: Object.fromEntries(model.paramNames.map((n, i) => [n, ROLE_UNITS[model.paramRoles[i]] ?? ''])), derived: model.derived.map((d) => d.name) };
}

export async function runFit(o: FitRunOptions): Promise<FitSummary> {
  const notice = o.notice ?? ((l: string) => process.stderr.write(`${l}\n`));
  const model = parseModelSpec(o.model);
  const options = parseFitOptions(o.fit, model);
  const files = inputFiles([o.stack, o.energies, o.flat, o.dark, o.i0, o.align?.shifts, o.composition?.phase, o.mask]);
  checkOutPath(o.out, files);
  const inputs = await openInputs(o);
  try {
    inputs.warnings.forEach(notice);
    const { source, energies } = inputs;
    const e0 = o.e0 ?? derivativeMaxEnergy(energies, await withSamplingBands(inputs.bandCache, o.budgetBytes, () => meanSpectrum(source)), 1);
    const step = fitStep(model, energies, options, { e0 });
    const pixelMask = o.mask ? loadPixelMask(o.mask, source.height, source.width) : null;
    const sel = await selectBackend(o.backend, notice, 'pixels', o.threads);
    inputs.resetMaskedPoints();
    return await withOutputDir(o.out, files, async (dir) => {
      // The report's spectra: at most 1/32 of the budget (held for the whole run).
      const recorder = spectraRecorder(inputs, Math.min(SPECTRA_MAX_VALUES, Math.floor(o.budgetBytes / 32 / 4)));
      // After the tiles, beside the maps it holds: the outputs (src/pipeline/memory.ts), the
      // convergence mask and the composition maps (float32 each).
      const afterBytes = outputPhaseBytes(source.height, source.width) + 4 * source.height * source.width * (1 + (o.composition ? Object.keys(COMPOSITION_UNITS).length + 1 : 0));
      const r = await runTiles(source, step, sel.backend, { budgetBytes: o.budgetBytes, sourceBytesPerPixel: inputs.extraBytesPerPixel, onTile: o.onTile, onTileData: recorder.add, afterBytes, readerBytes: inputs.readerBytes, bandCache: inputs.bandCache });
      const { width: W, height: H } = r;
      dir.recordInput('', { stack: o.stack, energies, pixelSizeUm: inputs.pixelSizeUm, volume: inputs.volume, read: inputs.provenance });
      const maskedByMask = pixelMask ? applyPixelMask(r.maps, r.status, pixelMask, FitStatus.MASKED_INPUT) : 0;
      if (pixelMask) r.statusCounts = countStatus(r.status, step.statusNames);
      dir.writeStepMaps(step.mapNames, r.maps, r.status, H, W, '', step.statusNames);
      const comp = o.composition ? compositionOfFit(r.maps, o.composition, energies, e0, H, W) : null;
      if (comp) dir.writeStepMaps(Object.keys(comp.maps), comp.maps, r.status, H, W, '', step.statusNames);
      // 1 where the fit converged, 0 elsewhere: a ready-made --mask for `xanes cluster`. Not
      // at-bound pixels: they have parameter maps, but a parameter held on its bound is not
      // determined by the data (on the demo's V stack such pixels, PE/b1 up to 36 eV,
      // pulled the elbow to k = 2).
      dir.writeMap('mask', Float32Array.from(r.status, (s) => (s === FitStatus.CONVERGED ? 1 : 0)), H, W);
      // A quick look at the edge energy (or the first energy-like parameter).
      const look = model.paramNames.find((n, i) => model.paramRoles[i] === 'energy');
      if (look) {
        const [lo, hi] = percentiles(r.maps[look], [2, 98]);
        if (Number.isFinite(lo) && hi > lo) dir.writeBytes(`${look}.png`, await renderMap({ data: r.maps[look], width: W, height: H, vmin: lo, vmax: hi, title: `${look} (2-98 percentile)`, unit: 'eV', label: look, pixelSizeUm: inputs.pixelSizeUm?.x }));
      }
      const iters = Array.from(r.maps.iterations).filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
      const summary: FitSummary = {
        tool: 'xanes-engine', version: VERSION, command: 'fit', finished: true,
        alignment: await writeAlignment(dir, inputs),
        inputs: { stack: o.stack, energies: o.energies, flat: o.flat ?? null, dark: o.dark ?? null, shape: { energies: source.nE, height: H, width: W }, read: inputs.provenance },
        model: modelRecord(o.model, model),
        // The options as used, in the names the command line and recipes take.
        options: { e0: o.e0 ?? null, fit: { model: o.model, init: options.init, fix: options.fixed, bounds: Object.fromEntries(Object.entries(options.bounds).map(([k, [a, b]]) => [k, [Number.isFinite(a) ? a : null, Number.isFinite(b) ? b : null]])), maxIter: options.maxIter } },
        parameters: { e0_eV: e0 },
        ...(comp ? { composition: comp.record } : {}),
        backend: { name: sel.backend.name, adapter: sel.backend.adapter, ...(sel.auto ? { auto: sel.auto } : {}) },
        counts: { pixels: H * W, masked_by_mask: maskedByMask, status: r.statusCounts, stop: countStatus(Uint8Array.from(r.maps.stop), FIT_STOP_NAMES), masked_transmission_points: inputs.maskedPoints() },
        stopping: { ftol: FIT_TUNING.FTOL, xtol: FIT_TUNING.XTOL, gtol: FIT_TUNING.GTOL, rule: 'MINPACK lmder; ftol and xtol only where the Gauss-Newton step gains <= ftol' },
        median_iterations: iters.length ? iters[iters.length >> 1] : null,
        timings_s: { ...r.seconds, fits_per_s: (H * W) / r.seconds.total },
        memory: { budget_MiB: o.budgetBytes / 2 ** 20, rows_per_tile: r.tilePlan.rowsPerTile, tiles: r.tilesRun, peak_rss_MiB: Math.round(process.resourceUsage().maxRSS / 1024) },
        maps: step.mapNames,
        status_codes: Object.fromEntries(FIT_STATUS_NAMES.map((n, i) => [i, n])),
        stderr: 'from (J^T J)^-1 scaled by the reduced chi-square, at the solution',
      };
      dir.writeText('summary.json', JSON.stringify(summary, null, 2) + '\n');
      finishReport(dir, recorder);
      return summary;
    });
  } finally {
    inputs.close();
  }
}
