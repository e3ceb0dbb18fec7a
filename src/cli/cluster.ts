/** `xanes pca` and `xanes cluster` (src/pipeline/cluster-run.ts). Options: src/options/schema.ts. */
import { progress } from './progress.js';
import type { Command } from 'commander';
import { runPcaCommand, runClusterCommand } from '../pipeline/cluster-run.js';
import { InputError } from '../io/errors.js';
import { alignStepOf } from '../align/align.js';
import { addOptions, fromCli } from '../options/parse.js';
import { memoryBytes, stackInputsOf } from '../options/convert.js';

/** Options the user did not give stay absent, so the library's defaults apply. */
function definedOnly<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export function registerCluster(program: Command): void {
  const pca = program
    .command('pca')
    .description('principal components of the spectra: scree, score maps, reconstruction error')
    .argument('<stack>', 'stack [E,H,W]: .npy, multi-page .tif, STXM .hdr, or HDF5 (file.h5, file.h5#/dataset)');
  addOptions(pca, 'pca').action(async (stack: string, _o: unknown, c: Command) => {
    const o = fromCli('pca', c);
    const out = o.common.out!;
    const s = await runPcaCommand({
      ...stackInputsOf(stack, o.common), align: alignStepOf(o.align, o.common), out, components: o.pca.components ?? 3, reconstruct: o.pca.reconstruct, mask: o.common.mask,
      backend: o.common.backend ?? 'auto', threads: o.common.threads, budgetBytes: memoryBytes(o.common.memory), onTile: progress('pca'),
    }) as any;
    console.log(`pca: ${out}`);
    console.log(`  ${s.pixels.included} of ${s.pixels.total} spectra; explained variance of the first components: ${s.explained_variance.slice(0, 5).map((r: any) => (100 * r.ratio).toFixed(2) + ' %').join(', ')}`);
    console.log(`  backend ${s.backend.name}: ${s.backend.adapter}; ${s.timings_s.total.toFixed(2)} s`);
  });

  const cluster = program
    .command('cluster')
    .description('k-means clusters of per-pixel features (maps, PCA scores or whole spectra), with the elbow')
    .argument('[stack]', 'cluster the spectra of this stack (with --energies; --pca n for PCA scores)');
  addOptions(cluster, 'cluster').action(async (stack: string | undefined, _o: unknown, c: Command) => {
    const o = fromCli('cluster', c);
    const k = o.cluster;
    const out = o.common.out!;
    if (k.from && !k.features) throw new InputError('--from', 'name the maps to cluster with --features, e.g. --features e0_half,edge_step');
    if (!stack && k.pca !== undefined) throw new InputError('--pca', 'needs a stack');
    const s = await runClusterCommand({
      out, features: k.features, from: k.from,
      stack: stack ? { ...stackInputsOf(stack, o.common), align: alignStepOf(o.align, o.common) } : undefined,
      pca: k.pca, k: k.k, kRange: k.kRange,
      kmeans: definedOnly({ seed: k.seed, restarts: k.restarts, maxIter: k.maxIter, standardize: k.standardize }),
      weight: k.weight, minWeight: k.minWeight, minClusterSize: k.minClusterSize, mask: k.mask, backend: o.common.backend ?? 'auto', threads: o.common.threads, budgetBytes: memoryBytes(o.common.memory),
      onK: progress('cluster (elbow)', 'k'),
    }) as any;
    console.log(`clusters: ${out}`);
    console.log(`  k = ${s.k}${s.elbow ? ` (elbow over ${s.elbow.table.map((r: any) => r.k).join(',')})` : ''}; ${s.pixels_included} pixels clustered, ${s.pixels_excluded} excluded; WCSS ${Number(s.wcss).toPrecision(5)} (${s.wcss_units})`);
    console.log(`  fractions: ${s.fractions.map((f: number) => (100 * f).toFixed(1) + ' %').join(', ')}${s.weighted_fractions ? `; weighted by ${s.weight}: ${s.weighted_fractions.map((f: number) => (100 * f).toFixed(1) + ' %').join(', ')}` : ''}`);
    console.log(`  backend ${s.backend.name}: ${s.backend.adapter}; ${s.timings_s.total.toFixed(2)} s`);
  });
}
