/** `xanes edge`: edge-energy maps (src/pipeline/edge-run.ts). */
import type { Command } from 'commander';
import { runEdge } from '../pipeline/edge-run.js';
import { parseBackend } from '../pipeline/backend.js';
import { parseMemoryMiB } from '../stack/tiles.js';
import { DEFAULT_EDGE_OPTIONS, type EdgeOptions, type NNorm } from '../pipeline/edge-plan.js';
import { InputError } from '../io/errors.js';
import { addAlignStepOptions, alignStep } from './align.js';
import { addStackOptions, num, pair, progress, threads, stackInputOptions } from './options.js';

interface EdgeCliOptions {
  energies?: string; energyUnit?: string; flat?: string | boolean; dark?: string; pixelSize?: string; memory?: string; backend?: string; threads?: string;
  out: string; e0?: string; pre?: string; post?: string; nnorm?: string; maskSigma?: string;
  edgeWindow?: string; derivSmooth?: string; whitelineWidth?: string; range?: string;
}

export function registerEdge(program: Command): void {
  const d = DEFAULT_EDGE_OPTIONS;
  addAlignStepOptions(addStackOptions(
    program
      .command('edge')
      .description('per-pixel normalisation and edge-energy maps (e0_half, e0_deriv, edge step, white line)')
      .argument('<stack>', 'stack [E,H,W]: .npy, multi-page .tif, STXM .hdr, or HDF5 (file.h5, file.h5#/dataset)'),
  ))
    .requiredOption('--out <dir>', 'output folder (written whole or not at all)')
    .option('--e0 <eV>', 'nominal edge energy that anchors the windows (default: from the mean spectrum)')
    .option('--pre <a,b>', `pre-edge line window relative to e0, eV (default ${d.pre1},${d.pre2})`)
    .option('--post <a,b>', `post-edge window relative to e0, eV; b may be 'end' (default ${d.norm1},end)`)
    .option('--nnorm <n>', `post-edge polynomial degree 0, 1, 2, or auto: larch's rule by the post-edge span (default ${d.nnorm})`)
    .option('--mask-sigma <k>', `mask pixels whose edge step < k x pre-edge noise (default ${d.maskSigma})`)
    .option('--edge-window <a,b>', `where the derivative maximum is searched, relative to e0, eV (default ${d.edge1},${d.edge2})`)
    .option('--deriv-smooth <n>', `points in the derivative's moving average, odd, 1-7 (default ${d.derivSmooth})`)
    .option('--whiteline-width <eV>', `white line searched within this many eV after e0_half (default ${d.whitelineWidth})`)
    .option('--range <a,b>', 'colour range of e0_half_range.png, eV (default: 2nd-98th percentile)')
    .action(async (stack: string, o: EdgeCliOptions) => {
      const edge = parseEdgeOptions(o);
      const report = await runEdge({
        stack, ...stackInputOptions(o), align: alignStep(o),
        out: o.out, edge, range: pair('--range', o.range), backend: parseBackend(o.backend), threads: threads(o.threads),
        budgetBytes: parseMemoryMiB(o.memory), onTile: progress('edge', 1),
      });
      printEdgeReport(report.outDir, report.summary);
    });
}

export function parseEdgeOptions(o: EdgeCliOptions): Partial<EdgeOptions> {
  const e: Partial<EdgeOptions> = {};
  const set = <K extends keyof EdgeOptions>(k: K, v: EdgeOptions[K] | undefined) => {
    if (v !== undefined) e[k] = v;
  };
  set('e0', num('--e0', o.e0));
  const pre = pair('--pre', o.pre);
  if (pre) [e.pre1, e.pre2] = pre;
  const post = pair('--post', o.post, true);
  if (post) [e.norm1, e.norm2] = post;
  if (o.nnorm !== undefined) e.nnorm = parseNnorm(o.nnorm);
  const k = num('--mask-sigma', o.maskSigma);
  if (k !== undefined && k < 0) throw new InputError('--mask-sigma', `expected a number >= 0, got ${o.maskSigma}`);
  set('maskSigma', k);
  const w = pair('--edge-window', o.edgeWindow);
  if (w) [e.edge1, e.edge2] = w;
  set('derivSmooth', num('--deriv-smooth', o.derivSmooth));
  const wl = num('--whiteline-width', o.whitelineWidth);
  if (wl !== undefined && !(wl > 0)) throw new InputError('--whiteline-width', `expected a positive number of eV, got ${o.whitelineWidth}`);
  set('whitelineWidth', wl);
  return e;
}

/** --nnorm: 0, 1, 2 or auto. */
export function parseNnorm(v: string): NNorm {
  if (v === 'auto') return 'auto';
  if (v === '0' || v === '1' || v === '2') return Number(v) as 0 | 1 | 2;
  throw new InputError('--nnorm', `expected 0, 1, 2 or auto, got ${v}`);
}

export function printEdgeReport(outDir: string, s: Record<string, any>): void {
  const c = s.counts;
  const t = s.timings_s;
  console.log(`edge maps: ${outDir}`);
  console.log(`  ${c.pixels} spectra, ${c.used} used, ${c.masked} masked (${Object.entries(c.status).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  console.log(`  e0 = ${s.parameters.e0_eV.toFixed(2)} eV (${s.parameters.e0_source}); histogram peak ${Number(s.parameters.histogram_peak_eV).toFixed(2)} eV`);
  console.log(`  backend ${s.backend.name}: ${s.backend.adapter}; ${t.total.toFixed(2)} s, ${Math.round(t.spectra_per_s).toLocaleString('en-US')} spectra/s`);
}
