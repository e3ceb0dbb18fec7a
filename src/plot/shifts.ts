/** The plot of an alignment's shifts against energy (shifts.png), jumps marked. */
import { renderLinePlot } from './lineplot.js';

export function renderShifts(energies: Float64Array, dy: Float64Array, dx: Float64Array, title: string, jumpEnergies: number[] = []): Promise<Uint8Array> {
  return renderLinePlot({
    series: [
      { x: energies, y: dy, label: 'dy (content moved down +)' },
      { x: energies, y: dx, label: 'dx (content moved right +)' },
    ],
    xlabel: 'energy (eV)',
    ylabel: 'displacement removed (px)',
    title,
    rules: jumpEnergies.map((x) => ({ x, label: 'jump', dash: [4, 3] })),
  });
}
