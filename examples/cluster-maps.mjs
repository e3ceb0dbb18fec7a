// Chemical domains from maps of an earlier run: k-means on edge energy and normalised
// pre-edge peak area, k at the elbow, fractions weighted by the edge jump.
//   node examples/cluster-maps.mjs FIT_OUTPUT_DIR OUTDIR    (e.g. xanes-demo/fit after `npx xanes demo`)
import { runClusterCommand } from '../dist/index.js';

const [from = 'xanes-demo/fit', out = 'cluster-out'] = process.argv.slice(2);
const s = await runClusterCommand({
  from, features: ['b2', 'PE_over_b1'], kRange: [2, 3, 4, 5, 6], kmeans: { seed: 1 },
  weight: 'b1', minWeight: 0.2, mask: 'mask', out, backend: 'auto', budgetBytes: 1024 * 2 ** 20,
});
console.log(`k = ${s.k} at the elbow; centres in ${out}/centres.csv; weighted fractions ${s.weighted_fractions.map((f) => f.toFixed(3)).join(', ')}`);
process.exit(0);
