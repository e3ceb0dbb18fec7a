/** PNG bar plot of a histogram (histogramSpec in src/plot/specs.ts), with optional marker lines. */
import type { Rgb } from './colormap.js';
import type { Histogram } from './histogram.js';
import { histogramSpec } from './specs.js';
import { renderSpec } from './render.js';

export async function renderHistogram(
  h: Histogram,
  o: { title: string; xlabel: string; ylabel?: string; width?: number; height?: number; color?: Rgb; rules?: { x: number; label: string }[] },
): Promise<Uint8Array> {
  return (await renderSpec(histogramSpec({ edges: h.edges, counts: h.counts, ...o }))).png;
}
