/** The plot of an alignment's shifts against energy (shifts.png). */
import { renderLinePlot } from './lineplot.js';

export function renderShifts(energies: Float64Array, dy: Float64Array, dx: Float64Array, title: string): Uint8Array {
  return renderLinePlot({
    series: [
      { x: energies, y: dy, label: 'dy (down +)' },
      { x: energies, y: dx, label: 'dx (right +)' },
    ],
    xlabel: 'energy (eV)',
    ylabel: 'displacement removed (px)',
    title,
  });
}
