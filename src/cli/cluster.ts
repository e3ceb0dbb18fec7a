/** `xanes pca` and `xanes cluster` (src/pipeline/cluster-run.ts). */
import type { Command } from 'commander';
import { runPcaCommand, runClusterCommand } from '../pipeline/cluster-run.js';
import { parseBackend } from '../pipeline/backend.js';
import { parseMemoryMiB } from '../stack/tiles.js';
import { parseKRange } from '../pipeline/elbow.js';
import { KMEANS_DEFAULTS } from '../pipeline/kmeans.js';
import { InputError } from '../io/errors.js';
import { addAlignStepOptions, alignStep } from './align.js';
import { addStackOptions, num, threads, stackInputOptions } from './options.js';

function intOption(name: string, v: string | undefined, min: number): number | undefined {
  const n = num(name, v);
  if (n !== undefined && !(Number.isInteger(n) && n >= min)) throw new InputError(name, `expected a whole number >= ${min}, got '${v}'`);
  return n;
}

/** Options the user did not give stay absent, so the library's defaults apply. */
function definedOnly<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export function registerCluster(program: Command): void {
  addAlignStepOptions(addStackOptions(
    program
      .command('pca')
      .description('principal components of the spectra: scree, score maps, reconstruction error')
      .argument('<stack>', 'stack [E,H,W]: .npy, multi-page .tif, STXM .hdr, or HDF5 (file.h5, file.h5#/dataset)'),
  ))
    .requiredOption('--out <dir>', 'output folder')
    .option('--components <n>', 'score maps to write', '3')
    .action(async (stack: string, o: Record<string, string | undefined>) => {
      const s = await runPcaCommand({
        stack, ...stackInputOptions(o), align: alignStep(o), out: o.out!,
        components: intOption('--components', o.components, 1)!, backend: parseBackend(o.backend), threads: threads(o.threads),
        budgetBytes: parseMemoryMiB(o.memory),
      }) as any;
      console.log(`pca: ${o.out}`);
      console.log(`  ${s.pixels.included} of ${s.pixels.total} spectra; explained variance of the first components: ${s.explained_variance.slice(0, 5).map((r: any) => (100 * r.ratio).toFixed(2) + ' %').join(', ')}`);
      console.log(`  backend ${s.backend.name}: ${s.backend.adapter}; ${s.timings_s.total.toFixed(2)} s`);
    });

  addAlignStepOptions(addStackOptions(
    program
      .command('cluster')
      .description('k-means clusters of per-pixel features (maps, PCA scores or whole spectra), with the elbow')
      .argument('[stack]', 'cluster the spectra of this stack (with --energies; --pca n for PCA scores)'),
  ))
    .requiredOption('--out <dir>', 'output folder')
    .option('--features <list>', 'feature maps a.npy,b.tif,... (or map names with --from)')
    .option('--from <dir>', 'an earlier output folder whose maps --features names (e.g. e0_half,edge_step)')
    .option('--pca <n>', 'with a stack: cluster its first n PCA scores')
    .option('--k <n>', 'number of clusters')
    .option('--k-range <a:b>', 'fit each k in a..b, write elbow.csv/png and pick k by the elbow (Kneedle)')
    .option('--seed <s>', `seed of the k-means++ seeding (default ${KMEANS_DEFAULTS.seed})`)
    .option('--restarts <r>', `k-means++ restarts, the lowest WCSS kept (default ${KMEANS_DEFAULTS.restarts})`)
    .option('--max-iter <n>', `Lloyd iterations per restart at most (default ${KMEANS_DEFAULTS.maxIter})`)
    .option('--no-standardize', 'cluster in the features\' own units (default: z-scores)')
    .option('--weight <map>', 'weight the cluster fractions by this map (a file, or a name in --from), e.g. edge_step')
    .option('--min-weight <x>', 'leave out pixels whose weight is below x (e.g. a too-small edge jump)')
    .option('--mask <map>', 'leave out pixels where this map (a file, or a name in --from) is 0 or NaN, e.g. mask')
    .action(async (stack: string | undefined, o: Record<string, any>) => {
      const features = o.features ? String(o.features).split(',').map((s: string) => s.trim()).filter(Boolean) : undefined;
      if (o.from && !features) throw new InputError('--from', 'name the maps to cluster with --features, e.g. --features e0_half,edge_step');
      if (!stack && o.pca !== undefined) throw new InputError('--pca', 'needs a stack');
      const s = await runClusterCommand({
        out: o.out, features, from: o.from,
        stack: stack ? { stack, ...stackInputOptions(o), align: alignStep(o) } : undefined,
        pca: intOption('--pca', o.pca, 1),
        k: intOption('--k', o.k, 1),
        kRange: o.kRange !== undefined ? parseKRange(o.kRange) : undefined,
        kmeans: definedOnly({
          seed: intOption('--seed', o.seed, 0), restarts: intOption('--restarts', o.restarts, 1),
          maxIter: intOption('--max-iter', o.maxIter, 1), standardize: o.standardize,
        }),
        weight: o.weight, minWeight: num('--min-weight', o.minWeight), mask: o.mask, backend: parseBackend(o.backend), threads: threads(o.threads), budgetBytes: parseMemoryMiB(o.memory),
      }) as any;
      console.log(`clusters: ${o.out}`);
      console.log(`  k = ${s.k}${s.elbow ? ` (elbow over ${s.elbow.table.map((r: any) => r.k).join(',')})` : ''}; ${s.pixels_included} pixels clustered, ${s.pixels_excluded} excluded; WCSS ${Number(s.wcss).toPrecision(5)} (${s.wcss_units})`);
      console.log(`  fractions: ${s.fractions.map((f: number) => (100 * f).toFixed(1) + ' %').join(', ')}${s.weighted_fractions ? `; weighted by ${s.weight}: ${s.weighted_fractions.map((f: number) => (100 * f).toFixed(1) + ' %').join(', ')}` : ''}`);
      console.log(`  backend ${s.backend.name}: ${s.backend.adapter}; ${s.timings_s.total.toFixed(2)} s`);
    });
}
