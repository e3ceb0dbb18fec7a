/// <reference lib="dom" />
/**
 * report.html's script (bundled by esbuild for the browser and inlined into the page): the
 * maps with colour bars and adjustable ranges, the run's figures, and the pixel inspector.
 * Maps and spectra arrive as base64 float32 in script files beside the page (file:// pages
 * may load scripts but not fetch files); nothing is requested from any server.
 */
import { View, parse, type Spec } from 'vega';
import { colorize, colorizeLabels, COLORMAPS, labelColor, isColormap, type ColormapName } from '../../plot/colormap.js';
import { imageSpec, lineSpec, histogramSpec, type Swatch, type LinePlot } from '../../plot/specs.js';
import { histogram, histogramPeak, robustHistogramRange } from '../../plot/histogram.js';
import { E0_HIST_BIN_EV } from '../../plot/ranges.js';
import { rgbComposite, rgbSwatches } from '../../plot/rgb.js';
import { elbowPlot, clusterSpectraPlot, screePlot } from '../../plot/figures.js';
import { inspectPixel, type PixelView } from '../inspect-model.js';
import type { ReportMap, ReportMeta } from '../meta.js';

declare global {
  interface Window {
    XANES_META: ReportMeta;
    XANES_MAP: (name: string, chunk: number, b64: string) => void;
    XANES_SPECTRA: (chunk: number, b64: string) => void;
    XANES_SPECTRA_INDEX: (index: unknown) => void;
    __xanes: Record<string, unknown>;
  }
}

const meta = window.XANES_META;
const W = meta.width, H = meta.height;
/** Longest side of the map on screen, CSS pixels. */
const MAP_DISPLAY = 440;
/** Largest picture (per side) handed to the map view; larger maps are shown by every n-th pixel. */
const MAP_IMAGE_MAX = 1024;

function decode(b64: string): Float32Array {
  const native = (Uint8Array as unknown as { fromBase64?: (s: string) => Uint8Array }).fromBase64;
  if (native) return new Float32Array(native(b64).buffer);
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

// ------------------------------------------------------------ loading scripts beside the page
const waiting = new Map<string, (v: Float32Array) => void>();
const mapCache = new Map<string, Promise<Float32Array>>();
const mapChunkCache = new Map<string, Promise<Float32Array>>();
const chunkCache = new Map<number, Promise<Float32Array>>();
window.XANES_MAP = (name, c, b64) => waiting.get(`map:${name}:${c}`)?.(decode(b64));
window.XANES_SPECTRA = (c, b64) => waiting.get(`spectra:${c}`)?.(decode(b64));
window.XANES_SPECTRA_INDEX = () => undefined;

function loadScript(key: string, src: string): Promise<Float32Array> {
  return new Promise((resolve, reject) => {
    waiting.set(key, (v) => {
      waiting.delete(key);
      resolve(v);
    });
    const s = document.createElement('script');
    s.src = src;
    s.onerror = () => reject(new Error(`${src} is missing`));
    document.head.appendChild(s);
  });
}

function mapInfo(name: string): ReportMap {
  const m = meta.maps.find((x) => x.name === name);
  if (!m) throw new Error(`no map ${name}`);
  return m;
}

/** One block of rows of a map. */
function mapChunk(name: string, c: number): Promise<Float32Array> {
  const key = `${name}:${c}`;
  let p = mapChunkCache.get(key);
  if (!p) {
    p = loadScript(`map:${key}`, `${mapInfo(name).dir}/c${String(c).padStart(4, '0')}.js`);
    mapChunkCache.set(key, p);
  }
  return p;
}

/** A whole map (all its blocks). */
function mapData(name: string): Promise<Float32Array> {
  let p = mapCache.get(name);
  if (!p) {
    const m = mapInfo(name);
    p = Promise.all(Array.from({ length: m.chunks }, (_, c) => mapChunk(name, c))).then((parts) => {
      const out = new Float32Array(W * H);
      parts.forEach((part, c) => out.set(part, c * m.chunkRows * W));
      return out;
    });
    mapCache.set(name, p);
  }
  return p;
}

/** A map's value at one pixel: loads only the block holding that row. */
async function mapValue(name: string, x: number, y: number): Promise<number> {
  const m = mapInfo(name);
  const c = Math.floor(y / m.chunkRows);
  return (await mapChunk(name, c))[(y - c * m.chunkRows) * W + x];
}

function chunk(c: number): Promise<Float32Array> {
  let p = chunkCache.get(c);
  if (!p) {
    p = loadScript(`spectra:${c}`, `${meta.spectraDir}/r${String(c).padStart(4, '0')}.js`);
    chunkCache.set(c, p);
  }
  return p;
}

async function spectrumAt(x: number, y: number): Promise<Float32Array | null> {
  const s = meta.spectra;
  if (!s) return null;
  const sx = x / s.step, sy = y / s.step;
  const c = Math.floor(sy / s.chunkRows);
  const data = await chunk(c);
  const o = ((sy - c * s.chunkRows) * s.nx + sx) * s.nE;
  return data.subarray(o, o + s.nE);
}

// ------------------------------------------------------------ small DOM helpers
function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...kids: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return 'NaN';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(4) : String(Number(v.toPrecision(7)));
}

async function draw(host: HTMLElement, spec: Spec): Promise<View> {
  host.replaceChildren();
  const view = new View(parse(spec), { renderer: 'canvas', container: host, hover: false });
  await view.runAsync();
  return view;
}

// ------------------------------------------------------------ the map panel
const state = { map: meta.maps[0]?.name ?? '', cmap: 'viridis' as ColormapName, vmin: NaN, vmax: NaN, pixel: null as null | { x: number; y: number } };
let mapView: View | null = null;
const display = { w: 0, h: 0 };

function imageUrl(rgba: Uint8ClampedArray): string {
  const stride = Math.max(1, Math.ceil(Math.max(W, H) / MAP_IMAGE_MAX));
  const w = Math.ceil(W / stride), h = Math.ceil(H / stride);
  const cv = document.createElement('canvas');
  cv.width = w;
  cv.height = h;
  const ctx = cv.getContext('2d')!;
  const img = ctx.createImageData(w, h);
  if (stride === 1) img.data.set(rgba);
  else for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) img.data.set(rgba.subarray(((y * stride) * W + x * stride) * 4, ((y * stride) * W + x * stride) * 4 + 4), (y * w + x) * 4);
  ctx.putImageData(img, 0, 0);
  return cv.toDataURL('image/png');
}

async function showMap(): Promise<void> {
  const m = meta.maps.find((x) => x.name === state.map)!;
  const data = await mapData(m.name);
  const s = MAP_DISPLAY / Math.max(W, H);
  display.w = Math.max(1, Math.round(W * s));
  display.h = Math.max(1, Math.round(H * s));
  const plot = { url: '', width: W, height: H, displayWidth: display.w, displayHeight: display.h, title: `${m.name}${m.unit ? ` (${m.unit})` : ''}` };
  let spec: Spec;
  if (m.kind === 'labels' || m.kind === 'status') {
    const k = m.kind === 'status' ? (m.codes?.length ?? 8) : Math.max(0, ...Array.from(data).filter(Number.isFinite)) + 1;
    plot.url = imageUrl(colorizeLabels(data, k));
    const fr = meta.summary.fractions as number[] | undefined;
    const swatches: Swatch[] = Array.from({ length: k }, (_, j) => ({ label: m.kind === 'status' ? `${j}: ${m.codes?.[j] ?? ''}` : `cluster ${j}${fr?.[j] !== undefined ? `: ${(100 * fr[j]).toFixed(1)} %` : ''}`, color: labelColor(j) }));
    if (m.kind === 'labels') swatches.push({ label: 'excluded', color: [0, 0, 0] });
    spec = imageSpec(plot, { swatches });
  } else {
    plot.url = imageUrl(colorize(data, state.vmin, state.vmax, state.cmap));
    // The title names the map; the colour bar carries its unit.
    // Masked (NaN) pixels are black, as in the PNG pictures; the legend says so.
    spec = imageSpec(plot, { bar: { vmin: state.vmin, vmax: state.vmax, cmap: state.cmap, label: m.unit || m.name, masked: data.some(Number.isNaN) } });
  }
  const host = document.getElementById('map')!;
  mapView?.finalize();
  mapView = await draw(host, spec);
  if (state.pixel) await mapView.signal('pixelX', state.pixel.x).signal('pixelY', state.pixel.y).runAsync();
  document.getElementById('map-note')!.textContent = Math.max(W, H) > MAP_IMAGE_MAX ? `${W} x ${H} pixels, shown by every ${Math.ceil(Math.max(W, H) / MAP_IMAGE_MAX)}th pixel; a click picks the pixel under the pointer.` : `${W} x ${H} pixels.`;
}

function setRange(vmin: number, vmax: number): void {
  state.vmin = vmin;
  state.vmax = vmax;
  (document.getElementById('vmin') as HTMLInputElement).value = fmt(vmin);
  (document.getElementById('vmax') as HTMLInputElement).value = fmt(vmax);
}

function mapControls(): HTMLElement {
  const sel = el('select', { id: 'map-select' });
  for (const m of meta.maps) sel.append(el('option', { value: m.name }, `${m.name}${m.unit ? ` (${m.unit})` : ''}`));
  const cm = el('select', { id: 'cmap' });
  for (const c of COLORMAPS) cm.append(el('option', { value: c }, c === 'blueorange' ? 'blueorange (diverging)' : c));
  const vmin = el('input', { id: 'vmin', type: 'text', size: '10' });
  const vmax = el('input', { id: 'vmax', type: 'text', size: '10' });
  const presets = el('span', { id: 'presets' });
  const apply = el('button', { id: 'apply' }, 'apply range');
  const renderPresets = () => {
    const m = meta.maps.find((x) => x.name === state.map)!;
    presets.replaceChildren(...m.presets.map((p) => {
      const b = el('button', {}, p.name);
      b.onclick = () => { setRange(p.vmin, p.vmax); void showMap(); };
      return b;
    }));
    const p = m.presets[0];
    if (p) setRange(p.vmin, p.vmax);
    const ranged = m.kind === 'value' || m.kind === 'mask';
    if (m.kind === 'mask') setRange(0, 1);
    for (const e of [vmin, vmax, apply, cm]) (e as HTMLInputElement).disabled = !ranged;
  };
  sel.onchange = () => { state.map = sel.value; renderPresets(); void showMap(); };
  cm.onchange = () => { if (isColormap(cm.value)) state.cmap = cm.value; void showMap(); };
  apply.onclick = () => { setRange(Number(vmin.value), Number(vmax.value)); void showMap(); };
  queueMicrotask(renderPresets);
  return el('div', { class: 'controls' }, el('label', {}, 'map ', sel), el('label', {}, ' colours ', cm), el('label', {}, ' from ', vmin), el('label', {}, ' to ', vmax), apply, el('span', { class: 'presets' }, ' presets: ', presets));
}

/** Client coordinates of the centre of map pixel (x, y) (tests click there). */
function pixelToClient(x: number, y: number): { x: number; y: number } {
  const canvas = document.querySelector('#map canvas') as HTMLCanvasElement;
  const r = canvas.getBoundingClientRect();
  const o = mapView!.origin(), pad = mapView!.padding() as { left: number; top: number };
  return { x: r.left + o[0] + pad.left + ((x + 0.5) * display.w) / W, y: r.top + o[1] + pad.top + ((y + 0.5) * display.h) / H };
}

function clientToPixel(cx: number, cy: number): { x: number; y: number } | null {
  const canvas = document.querySelector('#map canvas') as HTMLCanvasElement | null;
  if (!canvas || !mapView) return null;
  const r = canvas.getBoundingClientRect();
  const o = mapView.origin(), pad = mapView.padding() as { left: number; top: number };
  const x = Math.floor(((cx - r.left - o[0] - pad.left) * W) / display.w);
  const y = Math.floor(((cy - r.top - o[1] - pad.top) * H) / display.h);
  return x >= 0 && y >= 0 && x < W && y < H ? { x, y } : null;
}

// ------------------------------------------------------------ the inspector
let inspectViews: View[] = [];

async function inspect(x0: number, y0: number): Promise<PixelView> {
  const step = meta.spectra?.step ?? 1;
  const x = Math.floor(x0 / step) * step, y = Math.floor(y0 / step) * step;
  const values = new Map<string, number>();
  await Promise.all(meta.maps.map(async (m) => values.set(m.name, await mapValue(m.name, x, y))));
  const spectrum = await spectrumAt(x, y);
  const view = inspectPixel(meta, x, y, (n) => values.get(n) ?? NaN, spectrum);
  if (step > 1) view.notes.unshift(`spectra were kept for every ${step}th pixel of this ${W} x ${H} field: showing pixel ${x},${y}, the kept pixel nearest the click (${x0},${y0})`);
  if (mapView) {
    state.pixel = { x, y };
    await mapView.signal('pixelX', x).signal('pixelY', y).runAsync();
  }
  const host = document.getElementById('inspector')!;
  for (const v of inspectViews) v.finalize();
  inspectViews = [];
  const rows = view.rows.map((r) => el('tr', {}, el('td', {}, r.name + (r.source === 'twin' ? ' (twin, this spectrum)' : '')), el('td', { class: 'num' }, fmt(r.value) + (r.stderr !== undefined ? ` ± ${fmt(r.stderr)}` : '')), el('td', {}, r.unit)));
  host.replaceChildren(
    el('h2', {}, `Pixel x = ${x}, y = ${y}`),
    ...(view.status ? [el('p', {}, `status: `, el('b', { id: 'pixel-status' }, view.status))] : []),
    ...view.notes.map((n) => el('p', { class: 'note' }, n)),
  );
  for (const p of view.plots) {
    const d = el('div', { class: 'plot' });
    host.append(d);
    inspectViews.push(await draw(d, lineSpec({ ...p, width: 460, height: p.height ?? 280 })));
  }
  host.append(el('table', { id: 'pixel-table' }, el('tr', {}, el('th', {}, 'map'), el('th', {}, 'value'), el('th', {}, 'unit')), ...rows));
  window.__xanes.last = view;
  return view;
}

// ------------------------------------------------------------ the run's figures
async function figures(): Promise<void> {
  const host = document.getElementById('figures')!;
  const add = async (spec: Spec) => {
    const d = el('div', { class: 'plot' });
    host.append(d);
    await draw(d, spec);
  };
  const has = (n: string) => meta.maps.some((m) => m.name === n);
  if (meta.command === 'edge' && has('e0_half')) {
    // Over the robust range the run's e0_hist.png uses (outliers cannot stretch it).
    const e0 = await mapData('e0_half');
    const range = robustHistogramRange(e0, E0_HIST_BIN_EV);
    const h = Number.isFinite(range.min) && Number.isFinite(range.max) ? histogram(e0, E0_HIST_BIN_EV, range) : histogram(e0, E0_HIST_BIN_EV);
    const peak = histogramPeak(h);
    await add(histogramSpec({ edges: h.edges, counts: h.counts, xlabel: 'e0_half (eV)', ylabel: 'pixels', title: 'e0_half histogram', rules: Number.isFinite(peak) ? [{ x: peak, label: `peak ${peak.toFixed(2)} eV` }] : [] }));
  }
  if (meta.rgb) {
    const fr = await Promise.all(meta.rgb.names.map(mapData));
    const intensity = meta.rgb.intensity ? await mapData(meta.rgb.intensity) : undefined;
    const names = meta.rgb.names.map((n) => n.replace(/^fraction_/, ''));
    const { rgba, legend } = rgbComposite(fr, W, H, { names, intensity, intensityLabel: meta.rgb.intensity ?? undefined });
    const s = MAP_DISPLAY / Math.max(W, H);
    await add(imageSpec({ url: imageUrl(rgba), width: W, height: H, displayWidth: Math.round(W * s), displayHeight: Math.round(H * s), title: 'LCF composite' }, rgbSwatches(legend)));
  }
  if (meta.elbow) await add(lineSpec(elbowPlot(meta.elbow.table, meta.elbow.k, meta.summary.standardized ? 'standardised units' : undefined)));
  if (meta.scree) await add(lineSpec(screePlot(meta.scree.map((r) => r.ratio))));
  const cs = meta.clusterSpectra;
  if (cs) await add(lineSpec(clusterSpectraPlot(cs.energies, { k: cs.k, nE: cs.energies.length, mean: cs.mean.flat(), std: cs.std.flat(), pixels: cs.pixels })));
}

// ------------------------------------------------------------ the page
function summaryTables(): HTMLElement {
  const s = meta.summary;
  const counts = s.counts?.status as Record<string, number> | undefined;
  const box = el('section', { id: 'run' });
  const facts: [string, string][] = [
    ['command', `xanes ${meta.command}`],
    ['field', `${W} x ${H} pixels${meta.energies ? `, ${meta.energies.length} energies (${fmt(meta.energies[0])}-${fmt(meta.energies[meta.energies.length - 1])} eV)` : ''}`],
    ['backend', `${s.backend?.name ?? s.backend ?? ''} ${s.backend?.adapter ?? s.adapter ?? ''}`],
    ['spectra for the inspector', meta.spectra ? (meta.spectra.step > 1 ? `every ${meta.spectra.step}th pixel in x and y (the field is larger than the limit kept)` : 'every pixel') : 'none kept by this run'],
  ];
  box.append(el('table', {}, ...facts.map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, v)))));
  if (counts) {
    box.append(el('div', {}, el('h3', {}, 'Status counts'), el('table', { id: 'status-counts' }, ...Object.entries(counts).map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', { class: 'num' }, String(v)))))));
  }
  const params = el('pre', {}, JSON.stringify({ parameters: s.parameters, model: s.model, references: s.references, inputs: s.inputs }, null, 1));
  box.append(el('details', {}, el('summary', {}, 'Parameters and inputs'), params));
  return box;
}

async function main(): Promise<void> {
  // For tests and scripts: the data each inspector plot drew (Vega datasets s0, s1, ...).
  const drawn = () => inspectViews.map((v) => {
    const out: Record<string, unknown[]> = {};
    for (let i = 0; i < 64; i++) {
      try { out[`s${i}`] = v.data(`s${i}`); } catch { break; }
    }
    return out;
  });
  window.__xanes = { ready: false, pixelToClient, inspect, drawn };
  document.title = meta.title;
  const body = document.body;
  body.append(
    el('h1', {}, meta.title),
    summaryTables(),
    el('div', { class: 'main' },
      el('section', { class: 'left' }, el('h2', {}, 'Maps'), mapControls(), el('div', { id: 'map' }), el('p', { id: 'map-note', class: 'note' }), el('p', { class: 'note' }, 'Click a pixel to inspect it, or hold Shift and move over the map.')),
      el('section', { class: 'right', id: 'inspector' }, el('p', { class: 'note' }, 'Click a pixel of the map: its spectrum, the fitted curves and every map value appear here.'))),
    el('h2', {}, 'Figures'),
    el('div', { id: 'figures' }),
  );
  await new Promise((r) => setTimeout(r, 0));
  if (state.map) await showMap();
  document.getElementById('map')!.addEventListener('click', (e) => {
    const p = clientToPixel(e.clientX, e.clientY);
    if (p) void inspect(p.x, p.y);
  });
  // Hovering with Shift held inspects the pixel under the pointer (one at a time: a move
  // while a pixel is being drawn waits for it, then takes the latest position).
  let busy = false, pending: { x: number; y: number } | null = null;
  const hover = async (p: { x: number; y: number }) => {
    if (busy) { pending = p; return; }
    busy = true;
    try {
      for (let q: typeof p | null = p; q; q = pending, pending = null) {
        if (!state.pixel || state.pixel.x !== q.x || state.pixel.y !== q.y) await inspect(q.x, q.y);
      }
    } finally {
      busy = false;
    }
  };
  document.getElementById('map')!.addEventListener('mousemove', (e) => {
    if (!e.shiftKey) return;
    const p = clientToPixel(e.clientX, e.clientY);
    if (p) void hover(p);
  });
  await figures();
  window.__xanes.ready = true;
}

main().catch((e) => {
  document.body.append(el('pre', { class: 'error' }, String(e?.stack ?? e)));
  throw e;
});

export type { LinePlot, ReportMap };
