/**
 * One pixel, looked at closely: its spectrum and, as the command applies, the curves the
 * kernels fitted to it, computed by the kernels' own TypeScript twins (compiled into the page
 * by esbuild and run by `xanes inspect` in Node), never by a second implementation:
 *  edge  makeEdgePlan + normalizeCpu + edgeCpu on the one spectrum: pre-edge line and
 *        post-edge polynomial (preEdgeLine, postEdgeCurve), their windows, e0_half, e0_deriv
 *        and the white line; the normalised spectrum.
 *  fit   evaluateModel / evaluateComponents at the fitted parameters (the maps), residuals.
 *  lcf   lcfCurves: each reference's contribution, the background, the reconstruction.
 *  cluster  the pixel's cluster and its mean spectrum.
 * The table lists every map's value at the pixel (with standard errors where there are),
 * and, for edge, the twin's values on this spectrum beside the map's.
 */
import type { LinePlot, LineSeries } from '../plot/specs.js';
import { labelColor, type Rgb } from '../plot/colormap.js';
import { DEFAULT_EDGE_OPTIONS, makeEdgePlan, type EdgeOptions } from '../pipeline/edge-plan.js';
import { edgeOptionsOf } from '../options/convert.js';
import { normalizeCpu, normalizedSpectrum, pixelWindows, preEdgeLine, postMinusPre } from '../cpu/normalize.js';
import { edgeCpu } from '../cpu/edge.js';
import { EdgeRow, EdgeStatus, EDGE_STATUS_NAMES, NormRow } from '../kernels/layout.js';
import { evaluateComponents, evaluateModel, fitReferenceEnergy, parseModelSpec } from '../models/model.js';
import { lcfCurves } from '../cpu/lcf.js';
import type { ReportMeta } from './meta.js';

export interface PixelRow {
  name: string;
  value: number;
  unit: string;
  stderr?: number;
  /** Where the value comes from: the run's map, or the twin on this pixel's spectrum. */
  source: 'map' | 'twin';
}

export interface PixelView {
  x: number;
  y: number;
  status: string | null;
  rows: PixelRow[];
  plots: LinePlot[];
  notes: string[];
  /** The numbers behind the plots: energy and one column per curve (NaN outside a curve). */
  table: { header: string[]; columns: number[][] };
}

const DATA: Rgb = [40, 40, 40];
const MODEL: Rgb = [213, 94, 0];
const LINE1: Rgb = [0, 114, 178];
const LINE2: Rgb = [0, 158, 115];
/** Points of the fine energy grid the fitted model is drawn on. */
export const MODEL_POINTS = 400;

/** The edge options of the run: summary.json "options.edge" (the schema's names). */
function edgeOptions(s: Record<string, any>): EdgeOptions {
  return { ...DEFAULT_EDGE_OPTIONS, ...edgeOptionsOf(s.options?.edge ?? {}), ...(s.options?.fixedWindows ? { fixedWindows: true } : {}) };
}

function statusName(meta: ReportMeta, code: number): string | null {
  if (!Number.isFinite(code)) return null;
  const codes = meta.maps.find((m) => m.name === 'status')?.codes;
  return codes?.[code] ?? `code ${code}`;
}

/**
 * The view of pixel (x, y). `value(name)` gives a map's value at the pixel; `spectrum` is
 * the pixel's spectrum on meta.energies (null if the run kept none for it).
 */
export function inspectPixel(meta: ReportMeta, x: number, y: number, value: (name: string) => number, spectrum: ArrayLike<number> | null): PixelView {
  const s = meta.summary;
  const E = meta.energies ?? [];
  const notes: string[] = [];
  const rows: PixelRow[] = [];
  const plots: LinePlot[] = [];
  const cols: [string, number[]][] = [];
  const status = meta.maps.some((m) => m.name === 'status') ? statusName(meta, value('status')) : null;
  for (const m of meta.maps) {
    if (m.name === 'status' || m.name.endsWith('_stderr')) continue;
    const se = meta.maps.some((n) => n.name === `${m.name}_stderr`) ? value(`${m.name}_stderr`) : undefined;
    rows.push({ name: m.name, value: value(m.name), unit: m.unit, ...(se !== undefined ? { stderr: se } : {}), source: 'map' });
  }
  const y0 = spectrum ? Array.from(spectrum) : null;
  if (y0) cols.push(['spectrum', y0]);
  const quantity = meta.spectra?.quantity ?? 'stack units';
  const dataSeries = (): LineSeries[] => (y0 ? [{ x: E, y: y0, label: `pixel ${x},${y}`, kind: 'points', color: DATA }] : []);

  if (meta.command === 'edge' && y0) {
    const p = s.parameters;
    const plan = makeEdgePlan(Float64Array.from(E), p.e0_eV, edgeOptions(s));
    const cube = Float32Array.from(y0);
    const norm = normalizeCpu(plan, cube, 1);
    const ed = edgeCpu(plan, cube, 1, norm);
    const st = norm[NormRow.STATUS];
    const a = norm[NormRow.PRE_A], b = norm[NormRow.PRE_B];
    const c = [norm[NormRow.POST_C0], norm[NormRow.POST_C1], norm[NormRow.POST_C2]];
    const step = norm[NormRow.STEP];
    const e0 = plan.e0;
    const pre = E.map((e) => preEdgeLine(plan, a, b, e - e0));
    // As in larch, the post-edge polynomial is fitted to mu - pre: post = pre + D.
    const post = E.map((e, i) => pre[i] + postMinusPre(plan, c[0], c[1], c[2], e - e0));
    cols.push(['pre_edge_line', pre], ['post_edge_curve', post]);
    const twin = (name: string, v: number, unit: string) => rows.push({ name, value: v, unit, source: 'twin' });
    twin('e0_half', ed[EdgeRow.E0_HALF], 'eV');
    twin('e0_deriv', ed[EdgeRow.E0_DERIV], 'eV');
    twin('edge_step', step, quantity);
    twin('noise', norm[NormRow.NOISE], quantity);
    notes.push(`twin status: ${EDGE_STATUS_NAMES[st] ?? st}`);
    // The windows this pixel was normalised over: measured from its own e0 (E0_OWN).
    const own = norm[NormRow.E0_OWN];
    const win = Number.isFinite(own) ? pixelWindows(plan, own) : { pre: [plan.pre.i0, plan.pre.i1], post: [plan.post.i0, plan.post.i1] };
    const preWin = [E[win.pre[0]], E[win.pre[1] - 1]];
    const postWin = [E[win.post[0]], E[win.post[1] - 1]];
    const rules: NonNullable<LinePlot['rules']> = [];
    const e0h = value('e0_half'), e0d = value('e0_deriv'), wl = value('whiteline_energy');
    if (Number.isFinite(e0h)) rules.push({ x: e0h, label: `e0_half ${e0h.toFixed(2)} eV`, color: MODEL });
    if (Number.isFinite(e0d)) rules.push({ x: e0d, label: `e0_deriv ${e0d.toFixed(2)} eV`, color: LINE2 });
    if (Number.isFinite(wl)) rules.push({ x: wl, label: `white line ${wl.toFixed(2)} eV`, color: [150, 150, 150] });
    plots.push({
      title: `Pixel ${x},${y}: spectrum, pre- and post-edge lines`,
      series: [
        ...dataSeries(),
        { x: E, y: pre, label: 'pre-edge line', color: LINE1, dash: [6, 3] },
        { x: E, y: post, label: `post-edge polynomial (degree ${plan.post.degree})`, color: LINE2, dash: [6, 3] },
      ],
      windows: [{ x0: preWin[0], x1: preWin[1], label: 'pre-edge window', color: LINE1 }, { x0: postWin[0], x1: postWin[1], label: 'post-edge window', color: LINE2 }],
      rules, xlabel: 'Energy (eV)', ylabel: quantity,
    });
    if (st === EdgeStatus.OK || st === EdgeStatus.LOW_STEP) {
      const nrm = E.map((_, i) => (y0[i] - pre[i]) / step);
      cols.push(['normalised', nrm]);
      plots.push({
        title: 'Normalised spectrum (Athena/larch convention: (mu - pre) / step)',
        series: [{ x: E, y: nrm, label: 'normalised', color: DATA }, { x: [E[0], E[E.length - 1]], y: [0.5, 0.5], label: 'half step', color: [150, 150, 150], dash: [2, 3], width: 1 }],
        rules: rules.slice(0, 2), xlabel: 'Energy (eV)', ylabel: 'normalised absorption',
      });
    }
  } else if (meta.command === 'fit') {
    const model = parseModelSpec(s.model.spec);
    const params = model.paramNames.map((n) => value(n));
    const ok = params.every(Number.isFinite) && E.length > 1;
    if (!ok) notes.push('no fitted parameters at this pixel (masked or failed fit)');
    if (ok) {
      const eRef = fitReferenceEnergy(E);
      const fine = Array.from({ length: MODEL_POINTS }, (_, i) => E[0] + ((E[E.length - 1] - E[0]) * i) / (MODEL_POINTS - 1));
      const total = fine.map((e) => evaluateModel(model, e, params, eRef));
      const comps = fine.map((e) => evaluateComponents(model, e, params, eRef));
      const series: LineSeries[] = [...dataSeries(), { x: fine, y: total, label: `model (${model.spec})`, color: MODEL, width: 2.5 }];
      model.components.forEach((c, k) => series.push({ x: fine, y: comps.map((v) => v[k]), label: `${c.def.kind} (${c.names.join(', ')})`, color: labelColor(k + 2), dash: [5, 3], width: 1.5 }));
      const atData = E.map((e) => evaluateModel(model, e, params, eRef));
      cols.push(['model', atData]);
      plots.push({ title: `Pixel ${x},${y}: fit${status ? ` (${status})` : ''}`, series, xlabel: 'Energy (eV)', ylabel: quantity, rules: model.paramNames.filter((_, k) => model.paramRoles[k] === 'energy').slice(0, 3).map((n) => ({ x: value(n), label: `${n} ${value(n).toFixed(2)} eV` })) });
      if (y0) {
        const res = E.map((_, i) => y0[i] - atData[i]);
        cols.push(['residual', res]);
        plots.push({ title: 'Residual (data - model)', series: [{ x: E, y: res, label: 'residual', kind: 'points', color: DATA }, { x: [E[0], E[E.length - 1]], y: [0, 0], label: '', color: [150, 150, 150], width: 1 }], xlabel: 'Energy (eV)', ylabel: quantity, height: 160 });
      }
    }
  } else if (meta.command === 'lcf' && meta.references) {
    const refs = meta.references.map((r) => ({ name: r.name, mu: Float64Array.from(r.mu) }));
    const w = refs.map((r) => value(`weight_${r.name}`));
    // A background term the run did not fit is 0 (its map does not exist).
    const has = (n: string) => meta.maps.some((m) => m.name === n);
    const cur = lcfCurves(refs, E, w, { const: has('bg_const') ? value('bg_const') : 0, slope: has('bg_slope') ? value('bg_slope') : 0, refEnergy: s.parameters.bgRefEnergy ?? 0 });
    // With --normalize the fit saw the pixel's normalised spectrum: normalise it with the
    // same twin and plan (larch's pre_edge at the run's e0, this pixel's own step).
    const nz = s.parameters.normalize;
    let lcfQuantity = quantity;
    if (nz && y0) {
      const plan = makeEdgePlan(Float64Array.from(E), nz.e0_eV, { ...DEFAULT_EDGE_OPTIONS, ...edgeOptionsOf(nz.edge ?? {}), maskSigma: nz.mask_sigma ?? DEFAULT_EDGE_OPTIONS.maskSigma });
      const cube = Float32Array.from(y0);
      const norm = normalizeCpu(plan, cube, 1);
      if (norm[NormRow.STATUS] === EdgeStatus.OK) {
        const n = normalizedSpectrum(plan, cube, 1, norm, 0, nz.method === 'flat');
        for (let i = 0; i < y0.length; i++) y0[i] = n[i];
        cols[0] = ['spectrum_normalised', y0];
        lcfQuantity = nz.method === 'flat' ? 'flattened absorption' : 'normalised absorption';
        notes.push(`spectrum normalised as the fit saw it (${nz.method === 'flat' ? 'flat' : 'norm'}, larch pre_edge at e0 ${Number(nz.e0_eV).toFixed(2)} eV)`);
      } else notes.push(`the normalisation masked this pixel (${EDGE_STATUS_NAMES[norm[NormRow.STATUS]] ?? norm[NormRow.STATUS]}): the raw spectrum is shown`);
    }
    const win = s.parameters.window ?? { firstEnergy: E[0], lastEnergy: E[E.length - 1] };
    const inWin = (v: Float64Array) => E.map((e, i) => (e >= win.firstEnergy && e <= win.lastEnergy ? v[i] : NaN));
    const ok = w.every(Number.isFinite);
    if (!ok) notes.push('no weights at this pixel (no data)');
    const series: LineSeries[] = [...dataSeries()];
    if (ok) {
      series.push({ x: E, y: inWin(cur.total), label: 'reconstruction', color: MODEL, width: 2.5 });
      refs.forEach((r, k) => series.push({ x: E, y: inWin(cur.contributions[k]), label: `${r.name} × ${w[k].toFixed(3)}`, color: labelColor(k === 0 ? 0 : k + 1), dash: [5, 3], width: 1.5 }));
      if (s.parameters.background !== 'none') series.push({ x: E, y: inWin(cur.background), label: 'background', color: [150, 150, 150], dash: [2, 3], width: 1.5 });
      cols.push(['reconstruction', inWin(cur.total)], ...refs.map((r, k): [string, number[]] => [`contribution_${r.name}`, inWin(cur.contributions[k])]));
    }
    plots.push({ title: `Pixel ${x},${y}: linear combination${status ? ` (${status})` : ''}`, series, xlabel: 'Energy (eV)', ylabel: lcfQuantity });
    if (ok && y0) {
      const res = E.map((e, i) => (e >= win.firstEnergy && e <= win.lastEnergy ? y0[i] - cur.total[i] : NaN));
      cols.push(['residual', res]);
      plots.push({ title: 'Residual (data - reconstruction)', series: [{ x: E, y: res, label: 'residual', kind: 'points', color: DATA }, { x: [E[0], E[E.length - 1]], y: [0, 0], label: '', color: [150, 150, 150], width: 1 }], xlabel: 'Energy (eV)', ylabel: lcfQuantity, height: 160 });
    }
  } else if (meta.command === 'cluster') {
    const j = value('labels');
    notes.push(j >= 0 ? `cluster ${j}` : 'excluded from the clustering');
    const cs = meta.clusterSpectra;
    if (cs && j >= 0 && j < cs.k) {
      plots.push({
        title: `Pixel ${x},${y}: cluster ${j}, its mean spectrum ± std`,
        series: [
          { x: cs.energies, y: cs.mean[j].map((m, e) => m - cs.std[j][e]), y2: cs.mean[j].map((m, e) => m + cs.std[j][e]), label: '', kind: 'band', color: labelColor(j) },
          { x: cs.energies, y: cs.mean[j], label: `cluster ${j} mean`, color: labelColor(j) },
          ...(y0 ? dataSeries() : []),
        ],
        xlabel: 'Energy (eV)', ylabel: quantity,
      });
    } else if (y0) {
      // Clustered on maps (no per-cluster spectra): the pixel's own spectrum.
      plots.push({ title: `Pixel ${x},${y}: spectrum (${j >= 0 ? `cluster ${j}` : 'not clustered'})`, series: dataSeries(), xlabel: 'Energy (eV)', ylabel: quantity });
    }
  } else if (y0) {
    plots.push({ title: `Pixel ${x},${y}: spectrum`, series: dataSeries(), xlabel: 'Energy (eV)', ylabel: quantity });
  }
  if (!y0 && meta.command !== 'cluster') notes.push('this run kept no spectra (the report shows the maps only)');
  return {
    x, y, status, rows, plots, notes,
    table: { header: ['energy_eV', ...cols.map(([n]) => n)], columns: [E, ...cols.map(([, v]) => v)] },
  };
}
