// Edge-energy maps and clusters of a cube held in memory, through the typed library API:
// typed arrays in, maps out, nothing written to disk. A cube is float32 [energy][row][column]
// (energy-major, as the instruments write it); energies are in eV.
//   npm install                  (builds dist/ and the type declarations)
//   node --experimental-strip-types examples/api/edge-maps.ts [cpu|webgpu]     (Node >= 22.6)
// or compile it with tsc. In your own project: npm install <this package>, then import from 'xanes-engine'.
import { edgeMaps, kmeans, makeNiTxmStack, type EdgeMapsResult, type KmeansMapsResult } from 'xanes-engine';

export async function main(backend: 'cpu' | 'webgpu' = 'cpu'): Promise<{ edge: EdgeMapsResult; clusters: KmeansMapsResult }> {
  // A synthetic Ni K-edge TXM field with known state of charge (replace with your own cube).
  const width = 48, height = 48;
  const s = makeNiTxmStack({ width, height, seed: 1, noise: false });

  // The options are the command line's, under the names a recipe uses, checked the same way.
  const edge = await edgeMaps(s.absorbance, s.energies, { width, height, backend, threads: 1, maskSigma: 2, pre: [-150, -40] });
  const e0 = edge.maps.e0_half; // Float32Array [height * width], eV; NaN where masked
  const centre = 15 * width + 14; // a pixel in the core of the core-shell particle
  console.log(`${edge.backend.name} (${edge.backend.adapter}): e0 ${edge.e0.toFixed(2)} eV from the ${edge.e0Source}`);
  console.log(`${edge.statusCounts.ok} of ${width * height} pixels mapped; e0_half at (x 14, y 15) = ${e0[centre].toFixed(2)} ${edge.units.e0_half}`);

  // k-means on two of the maps (masked pixels are NaN and left out: label -1).
  const clusters = await kmeans({ e0_half: e0, whiteline_height: edge.maps.whiteline_height }, { k: 3, seed: 0, backend: 'cpu', threads: 1 });
  console.log(`k-means: ${clusters.k} clusters of ${clusters.counts.join(', ')} pixels; ${clusters.nExcluded} left out`);
  return { edge, clusters };
}

// Run as a script (not when imported, e.g. by the test that checks this example).
if (import.meta.url === `file://${process.argv[1]}`) {
  await main(process.argv[2] === 'webgpu' ? 'webgpu' : 'cpu');
  process.exit(0); // a WebGPU device keeps Node's event loop alive
}
