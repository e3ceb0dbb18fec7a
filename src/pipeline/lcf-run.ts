/**
 * `xanes lcf` and `xanes spectra` as library calls. lcf: references from files or regions
 * of the stack, every pixel fitted as their linear combination (src/pipeline/lcf-step.ts),
 * weight/fraction/background/residual maps and an RGB composite. spectra: mean and
 * standard-deviation spectra of regions, and their differences against a second stack.
 */
import path from 'node:path';
import { meanSpectrum, openInputs, withSamplingBands, type StackInputs } from './inputs.js';
import { runTiles } from './run-tiles.js';
import { selectBackend, type BackendChoice } from './backend.js';
import { applyPixelMask, countStatus, loadPixelMask } from './pixel-mask.js';
import { LcfStatus } from '../cpu/lcf.js';
import { lcfStep, LCF_MASK_SIGMA, type LcfMode, type LcfBackground, type LcfNormalize } from './lcf-step.js';
import { DEFAULT_EDGE_OPTIONS, derivativeMaxEnergy, makeEdgePlan, type EdgeOptions } from './edge-plan.js';
import { edgeSectionOf } from '../options/convert.js';
import type { RefNorm } from './ref-norm.js';
import { renderLinePlot, SERIES_COLORS } from '../plot/lineplot.js';
import { renderRgbComposite } from '../plot/maps.js';
import { writeRegionSpectra, type RoiSpec } from './spectra.js';
import { loadReferences, parseRefSpec } from '../io/references.js';
import { windowRange, LCF_MODES, LCF_BACKGROUNDS } from '../cpu/lcf.js';
import { withOutputDir } from '../io/run-output.js';
import { finishReport, spectraRecorder } from '../report/run-report.js';
import { SPECTRA_MAX_VALUES } from '../report/spectra-file.js';
import { outputPhaseBytes } from './memory.js';
import { checkOutPath, inputFiles } from '../io/outdir.js';
import { InputError } from '../io/errors.js';
import { writeAlignment } from '../align/align.js';
import { VERSION } from '../version.js';
import type { LcfSummary, SpectraCommandSummary } from './summary.js';

export interface LcfRunOptions extends StackInputs {
  out: string;
  /** NAME=FILE[#group] or NAME=rect:...|circle:...|mask:FILE */
  refs: string[];
  mode?: string;
  background?: string;
  window?: [number, number];
  /** Fit each pixel's normalised spectrum (larch's pre_edge), see LcfNormalize. */
  normalize?: boolean;
  /** larch's flat instead of norm, for the pixels (--normalize) and the references. */
  flatten?: boolean;
  /** References: 'norm' (default; 'flat' with flatten) or 'none' (raw values). */
  refNorm?: RefNorm;
  /** Edge options for the normalisation (windows, nnorm, e0, mask-sigma). */
  edge?: Partial<EdgeOptions>;
  /** --mask: an earlier run's mask (src/pipeline/pixel-mask.ts). */
  mask?: string;
  backend: BackendChoice;
  threads?: number;
  budgetBytes: number;
  notice?: (line: string) => void;
  onTile?: (done: number, total: number) => void;
}

export function parseMode(v: string | undefined): LcfMode {
  const m = v ?? 'ls';
  if (!(LCF_MODES as readonly string[]).includes(m)) throw new InputError('--mode', `expected ${LCF_MODES.join(', ')}, got '${m}'`);
  return m as LcfMode;
}

export function parseBackground(v: string | undefined): LcfBackground {
  const b = v ?? 'none';
  if (!(LCF_BACKGROUNDS as readonly string[]).includes(b)) throw new InputError('--background', `expected ${LCF_BACKGROUNDS.join(', ')}, got '${b}'`);
  return b as LcfBackground;
}

export async function runLcf(o: LcfRunOptions): Promise<LcfSummary> {
  const notice = o.notice ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (o.refs.length === 0) throw new InputError('--ref', 'at least one reference is needed (NAME=FILE or NAME=rect:x0,y0,x1,y1)');
  const specs = o.refs.map(parseRefSpec);
  const mode = parseMode(o.mode);
  const background = parseBackground(o.background);
  const files = inputFiles([o.stack, o.energies, o.flat, o.dark, o.i0, o.refs, o.align?.shifts, o.mask]);
  checkOutPath(o.out, files);
  const inputs = await openInputs(o);
  try {
    inputs.warnings.forEach(notice);
    const { source, energies } = inputs;
    const refNorm: RefNorm = o.refNorm ?? (o.flatten ? 'flat' : 'auto');
    const refs = await loadReferences(specs, source, energies, windowRange(energies, o.window), { kind: refNorm, edge: o.edge });
    let normalize: LcfNormalize | undefined;
    let edgeOptions: EdgeOptions | undefined;
    const maskSigma = o.edge?.maskSigma ?? LCF_MASK_SIGMA;
    if (o.normalize) {
      edgeOptions = { ...DEFAULT_EDGE_OPTIONS, ...o.edge, maskSigma };
      const e0 = edgeOptions.e0 ?? derivativeMaxEnergy(energies, await withSamplingBands(inputs.bandCache, o.budgetBytes, () => meanSpectrum(source)), 1);
      inputs.resetMaskedPoints();
      normalize = { plan: makeEdgePlan(energies, e0, edgeOptions, o.energies ?? o.stack), flatten: o.flatten === true };
      if (refNorm === 'none') notice('xanes: --normalize with --ref-norm none fits normalised pixels with raw references');
    }
    const step = lcfStep(refs.map((r) => ({ name: r.name, mu: r.mu })), energies, { mode, background, window: o.window }, normalize, maskSigma);
    const pixelMask = o.mask ? loadPixelMask(o.mask, source.height, source.width) : null;
    step.info.warnings.forEach((w) => notice(`xanes: ${w}`));
    const sel = await selectBackend(o.backend, notice, 'pixels', o.threads);
    inputs.resetMaskedPoints();
    return await withOutputDir(o.out, files, async (dir) => {
      // The report's spectra: at most 1/32 of the budget (held for the whole run).
      const recorder = spectraRecorder(inputs, Math.min(SPECTRA_MAX_VALUES, Math.floor(o.budgetBytes / 32 / 4)));
      // After the tiles, beside the maps it holds: the outputs (src/pipeline/memory.ts) and the
      // RGB composite's pixels (4 bytes each, and as much again for its picture's input).
      const afterBytes = outputPhaseBytes(source.height, source.width) + 8 * source.height * source.width;
      const r = await runTiles(source, step, sel.backend, { budgetBytes: o.budgetBytes, sourceBytesPerPixel: inputs.extraBytesPerPixel, onTile: o.onTile, onTileData: recorder.add, afterBytes, readerBytes: inputs.readerBytes, bandCache: inputs.bandCache });
      const { width: W, height: H } = r;
      const maskedByMask = pixelMask ? applyPixelMask(r.maps, r.status, pixelMask, LcfStatus.NO_DATA) : 0;
      if (pixelMask) r.statusCounts = countStatus(r.status, step.statusNames);
      dir.recordInput('', { stack: o.stack, energies: inputs.energies, pixelSizeUm: inputs.pixelSizeUm, volume: inputs.volume, read: inputs.provenance });
      dir.writeStepMaps(step.mapNames, r.maps, r.status, H, W, '', step.statusNames);
      const names = step.info.references.slice(0, 3);
      // Brightness: the amount of the element, the edge step with --normalize, else the
      // total weight (in the sum-to-one modes without --normalize there is none: warned).
      const brightness = normalize ? 'edge_step' : 'total';
      const rgb = await renderRgbComposite(names.map((n) => r.maps[`fraction_${n}`]), W, H, { names, intensity: r.maps[brightness], intensityLabel: brightness, title: `lcf ${mode}` });
      dir.writeBytes('rgb.png', rgb.png);
      // The references as fitted (on the stack's energies, after the same normalisation):
      // the report and `xanes inspect` draw each pixel's contributions from them.
      dir.writeText('references.csv', referencesCsv(energies, refs));
      const quantity = normalize ? 'normalised absorbance' : inputs.od ? 'optical density' : inputs.absorbance ? 'absorbance' : 'stack value';
      dir.writeBytes('references.png', await renderLinePlot({
        series: refs.map((x, k) => ({ x: energies, y: x.mu, label: `${x.name} (${x.normalization.method === 'none' ? 'raw' : x.normalization.method})`, color: SERIES_COLORS[k % SERIES_COLORS.length] })),
        xlabel: 'energy (eV)', ylabel: refs.every((x) => x.normalization.method === 'none') ? 'reference (raw)' : 'reference (normalised unless marked raw)',
        title: `lcf references on the stack's energies (fitted as ${quantity})`,
      }));
      const summary: LcfSummary = {
        tool: 'xanes-engine', version: VERSION, command: 'lcf', finished: true,
        alignment: await writeAlignment(dir, inputs),
        inputs: {
          stack: o.stack, energies: o.energies ?? '(from the stack)', i0: o.i0 ?? null, i0_region: o.i0Region ?? null, flat: o.flat ?? null, dark: o.dark ?? null,
          shape: { energies: source.nE, height: H, width: W }, read: inputs.provenance, energy_range_eV: [energies[0], energies[energies.length - 1]],
          i0_source: inputs.od ? inputs.od.i0.source : null,
        },
        references: refs.map((x) => ({ name: x.name, format: x.format, source: x.source, detail: x.detail, normalization: x.normalization })),
        parameters: {
          ...step.info,
          normalize: normalize ? {
            method: normalize.flatten ? 'flat' : 'norm', convention: 'xraylarch 0.9.58 pre_edge, per pixel from its own e0',
            e0_eV: normalize.plan.e0, pre_eV: [edgeOptions!.pre1, edgeOptions!.pre2],
            post_eV: [edgeOptions!.norm1, Number.isFinite(edgeOptions!.norm2) ? edgeOptions!.norm2 : 'end'], nnorm: edgeOptions!.nnorm,
            nnorm_used: normalize.plan.post.degree, mask_sigma: edgeOptions!.maskSigma,
            // Every edge option the plan used (the report's inspector normalises a pixel with it).
            edge: edgeSectionOf(edgeOptions!),
          } : null,
          ref_norm: refNorm,
          mask_sigma: maskSigma,
        },
        backend: { name: sel.backend.name, adapter: sel.backend.adapter, ...(sel.auto ? { auto: sel.auto } : {}) },
        counts: { pixels: H * W, masked_by_mask: maskedByMask, status: r.statusCounts, masked_transmission_points: inputs.maskedPoints() },
        rgb_legend: rgb.legend,
        timings_s: { ...r.seconds, pixels_per_s: (H * W) / r.seconds.total },
        memory: { budget_MiB: o.budgetBytes / 2 ** 20, rows_per_tile: r.tilePlan.rowsPerTile, tiles: r.tilesRun, peak_rss_MiB: Math.round(process.resourceUsage().maxRSS / 1024) },
        maps: Object.fromEntries(step.mapNames.map((n) => [n, step.info.mapUnits[n] ?? ''])),
      };
      dir.writeText('summary.json', JSON.stringify(summary, null, 2) + '\n');
      finishReport(dir, recorder);
      return summary;
    });
  } finally {
    inputs.close();
  }
}

/** Labels for two stacks in file names and plots: their file names, made distinct. */
function stackLabels(a: string, b: string): { a: string; b: string } {
  const clean = (p: string) => path.basename(p).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_.+-]/g, '_').replace(/^[^A-Za-z0-9]+/, '') || 'stack';
  const [la, lb] = [clean(a), clean(b)];
  return la === lb ? { a: `${la}_A`, b: `${lb}_B` } : { a: la, b: lb };
}

export interface SpectraRunOptions extends StackInputs {
  out: string;
  rois: RoiSpec[];
  compare?: StackInputs;
  budgetBytes: number;
  notice?: (line: string) => void;
  onTile?: (done: number, total: number) => void;
  onCompareTile?: (done: number, total: number) => void;
}

export async function runSpectra(o: SpectraRunOptions): Promise<SpectraCommandSummary> {
  const notice = o.notice ?? ((l: string) => process.stderr.write(`${l}\n`));
  const files = inputFiles([o.stack, o.energies, o.flat, o.dark, o.i0, o.compare?.stack, o.compare?.energies, o.rois.map((r) => r.spec)]);
  checkOutPath(o.out, files);
  const a = await openInputs(o);
  const b = o.compare ? await openInputs(o.compare).catch((e) => { a.close(); throw e; }) : null;
  try {
    [...a.warnings, ...(b?.warnings ?? [])].forEach(notice);
    return await withOutputDir(o.out, files, async (dir) => {
      const s = await writeRegionSpectra({
        stack: a.source, energies: a.energies, rois: o.rois, outDir: dir.tmp, budgetBytes: o.budgetBytes,
        compare: b ? { stack: b.source, energies: b.energies } : undefined,
        labels: b ? stackLabels(o.stack, o.compare!.stack) : undefined,
        quantity: a.od ? 'optical density' : a.absorbance ? 'absorbance' : 'stack value',
        onTile: o.onTile, onCompareTile: o.onCompareTile,
      });
      const summary: SpectraCommandSummary = { tool: 'xanes-engine', version: VERSION, command: 'spectra', finished: true, inputs: { stack: o.stack, compare: o.compare?.stack ?? null, i0: o.i0 ?? null, i0_region: o.i0Region ?? null }, ...s };
      dir.writeText('summary.json', JSON.stringify(summary, null, 2) + '\n');
      return summary;
    });
  } finally {
    a.close();
    b?.close();
  }
}

/** references.csv: energy_eV, then each reference's mu on the stack's energies. */
export function referencesCsv(energies: Float64Array, refs: readonly { name: string; mu: Float64Array }[]): string {
  const lines = [['energy_eV', ...refs.map((r) => r.name)].join(',')];
  for (let i = 0; i < energies.length; i++) lines.push([energies[i], ...refs.map((r) => (Number.isFinite(r.mu[i]) ? r.mu[i] : 'nan'))].join(','));
  return lines.join('\n') + '\n';
}
