// Edge-energy maps of a stack through the library API, then a look at the result.
//   node examples/edge-map.mjs STACK ENERGIES OUTDIR   (after `npm install` built dist/)
// With no arguments it makes a small synthetic Ni K-edge stack in memory and maps that.
import { runEdge, edgeMaps, makeNiTxmStack, readNpy } from '../dist/index.js';

const [stack, energies, out] = process.argv.slice(2);
if (stack) {
  const { summary } = await runEdge({ stack, energies, out: out ?? 'edge-out', edge: { maskSigma: 2 }, backend: 'auto', budgetBytes: 2048 * 2 ** 20 });
  console.log(`${summary.counts.used} of ${summary.counts.pixels} pixels mapped; peak e0 ${summary.parameters.histogram_peak_eV.toFixed(2)} eV`);
  const e0 = readNpy(`${out ?? 'edge-out'}/e0_half.npy`);
  console.log(`e0_half map ${e0.shape.join(' x ')}`);
} else {
  // In memory: absorbance of a synthetic stack through the library API (nothing written).
  const s = makeNiTxmStack({ width: 64, height: 64, seed: 1, noise: false });
  const r = await edgeMaps(s.absorbance, s.energies, { width: 64, height: 64, e0: 8343, backend: 'auto' });
  const centre = 20 * 64 + 19; // the centre of the core-shell particle (its core)
  console.log(`${r.backend.name} (${r.backend.adapter}): e0_half at (x 19, y 20) = ${r.maps.e0_half[centre].toFixed(2)} eV, state of charge ${s.truth.soc[centre].toFixed(2)}`);
}
process.exit(0);
