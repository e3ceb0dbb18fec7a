/**
 * Line plots (spectra, fit residuals, elbow and scree curves) as PNG: Vega's axes with units
 * in their titles, light grid, a legend; lineSpec in src/plot/specs.ts.
 */
import { lineSpec, type LinePlot, type LineSeries } from './specs.js';
import { renderSpec } from './render.js';
export { SERIES_COLORS } from './colormap.js';
export type { LineSeries as Series, LinePlot as LinePlotOptions } from './specs.js';

export async function renderLinePlot(o: LinePlot & { series: LineSeries[] }): Promise<Uint8Array> {
  return (await renderSpec(lineSpec(o))).png;
}
