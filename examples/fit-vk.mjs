// Per-pixel fits of the erf-2lorentz preset through the library API, on a synthetic
// V K-edge ptychography-like field (in memory), then the recovered edge energies by domain.
//   node examples/fit-vk.mjs        (after `npm install` built dist/)
import { makeVkPtychoStack, fitMaps } from '../dist/index.js';

const size = 48;
const v = makeVkPtychoStack(size, 7);
// Peaks and the edge jump are absorptions: keep them non-negative (names as in a recipe).
const r = await fitMaps(v.cube, v.energies, {
  width: size, height: size, model: 'erf-2lorentz', e0: 5480, backend: 'auto',
  bounds: { b1: [0, null], c11: [0, null], c21: [0, null] },
});
console.log(`${r.backend.name} (${r.backend.adapter}): ${JSON.stringify(r.statusCounts)}`);
for (const d of [0, 1, 2]) {
  const b2 = [], pe = [];
  for (let p = 0; p < size * size; p++) {
    if (v.truth.domain[p] === d && r.status[p] === 0 && v.truth.b1[p] > 0.2) { b2.push(r.maps.b2[p]); pe.push(r.maps.PE_over_b1[p]); }
  }
  const med = (a) => a.sort((x, y) => x - y)[a.length >> 1];
  console.log(`domain ${['V3+', 'V4+', 'V5+'][d]}: median b2 ${med(b2).toFixed(2)} eV, PE/b1 ${med(pe).toFixed(2)} eV (${b2.length} pixels)`);
}
process.exit(0);
