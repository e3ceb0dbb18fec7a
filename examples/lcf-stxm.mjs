// Stack fit of an STXM stack through the library API: optical density from an empty area,
// two references from regions of the stack, non-negative weights with a constant
// background, and the RGB composite.
//   node examples/lcf-stxm.mjs STACK.hdr OUTDIR
import { runLcf } from '../dist/index.js';

const [hdr, out = 'lcf-out'] = process.argv.slice(2);
if (!hdr) {
  console.log('usage: node examples/lcf-stxm.mjs STACK.hdr [OUTDIR]   (e.g. the test fixture test/fixtures/stxm-fe-l3/71214098.hdr)');
  process.exit(2);
}
const s = await runLcf({
  stack: hdr, i0Region: 'auto', out,
  refs: ['peak710=rect:18,28,26,34', 'peak708=rect:32,0,42,6'],
  mode: 'nnls', background: 'const', backend: 'auto', budgetBytes: 1024 * 2 ** 20,
});
console.log(`${out}: ${JSON.stringify(s.counts.status)}; RGB legend ${JSON.stringify(s.rgb_legend.channels)}`);
process.exit(0);
