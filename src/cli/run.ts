/** `xanes run`: several steps, one pass of tiles per field, many fields (src/pipeline/run-recipe.ts). */
import type { Command } from 'commander';
import { runRecipe, readRecipe, RUN_STEPS, type RunRecipe, type RunStepName } from '../pipeline/run-recipe.js';
import { parseBackend } from '../pipeline/backend.js';
import { parseMemoryMiB } from '../stack/tiles.js';
import { parseKRange } from '../pipeline/elbow.js';
import { InputError } from '../io/errors.js';
import { addStackOptions, num, pair, progress, threads } from './options.js';
import { parseEdgeOptions } from './edge.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerRun(program: Command): void {
  addStackOptions(
    program
      .command('run')
      .description(`several steps (${RUN_STEPS.join(', ')}) over one pass of tiles, for one or many fields of view`)
      .argument('<stacks...>', 'stacks (paths or quoted glob patterns, one per field of view; synthetic:HxW for a generated one), or one RECIPE.json'),
  )
    .option('--out <dir>', 'output folder')
    .option('--steps <list>', `steps to run, comma-separated: ${RUN_STEPS.join(',')}`)
    .option('--i0 <file>', 'I0 spectrum for optical density')
    .option('--i0-region <rect|auto>', 'I0 from a region of the stack')
    // edge
    .option('--e0 <eV>', 'edge: nominal edge energy (default: from the first field\'s mean spectrum)')
    .option('--pre <a,b>', 'edge: pre-edge window relative to e0, eV')
    .option('--post <a,b>', 'edge: post-edge window relative to e0, eV')
    .option('--nnorm <n>', 'edge: post-edge polynomial degree 0, 1, 2 or auto (larch rule by span)')
    .option('--mask-sigma <k>', 'edge: mask where step < k x noise')
    .option('--edge-window <a,b>', 'edge: derivative search window, eV')
    // fit
    .option('--model <spec>', 'fit: preset, component sum or JSON')
    .option('--init <json>', 'fit: start values')
    .option('--fix <names>', 'fit: fixed parameters')
    .option('--bounds <json>', 'fit: box bounds')
    .option('--max-iter <n>', 'fit: iterations at most')
    // lcf
    .option('--ref <NAME=SOURCE>', 'lcf: a reference (file; a region only with one field); repeat', collect, [])
    .option('--mode <mode>', 'lcf: ls | nnls | sum1 | nnls-sum1')
    .option('--background <b>', 'lcf: none | const | linear')
    .option('--window <a,b>', 'lcf: energy window, eV')
    .option('--normalize', "lcf: fit each pixel's normalised spectrum (Athena/larch pre_edge)")
    .option('--flatten', "lcf: larch's flattened spectra for pixels and references")
    .option('--ref-norm <how>', 'lcf: references auto (default) | norm | flat | none')
    // cluster
    .option('--features <list>', 'cluster: step:map names, e.g. edge:e0_half,lcf:fraction_NiO')
    .option('--k <n>', 'cluster: number of clusters')
    .option('--k-range <a:b>', 'cluster: elbow over k')
    .option('--weight <step:map>', 'cluster: weight of the fractions, e.g. edge:edge_step')
    .option('--min-weight <x>', 'cluster: leave out pixels whose weight is below x')
    .option('--seed <s>', 'cluster: k-means++ seed')
    .option('--restarts <r>', 'cluster: k-means++ restarts')
    .action(async (stacks: string[], o: Record<string, any>) => {
      const fromFile = stacks.length === 1 && stacks[0].toLowerCase().endsWith('.json') ? readRecipe(stacks[0]) : {};
      const given = (v: unknown) => v !== undefined && !(Array.isArray(v) && v.length === 0);
      const edge = parseEdgeOptions(o as Parameters<typeof parseEdgeOptions>[0]);
      const recipe: RunRecipe = {
        stacks: fromFile.stacks ?? stacks,
        energies: o.energies ?? fromFile.energies,
        energyUnit: o.energyUnit !== 'eV' ? o.energyUnit : (fromFile.energyUnit ?? 'eV'),
        flat: o.flat ?? fromFile.flat,
        dark: o.dark ?? fromFile.dark,
        i0: o.i0 ?? fromFile.i0,
        i0Region: o.i0Region ?? fromFile.i0Region,
        steps: (o.steps ? String(o.steps).split(',').map((s: string) => s.trim()) : fromFile.steps ?? []) as RunStepName[],
        edge: { ...(fromFile.edge ?? {}), ...edge },
        fit: given(o.model) ? { model: o.model, init: o.init, fix: o.fix, bounds: o.bounds, maxIter: num('--max-iter', o.maxIter) } : fromFile.fit,
        lcf: given(o.ref) ? { refs: o.ref, mode: o.mode, background: o.background, window: pair('--window', o.window), normalize: o.normalize === true, flatten: o.flatten === true, refNorm: o.refNorm } : fromFile.lcf,
        cluster: given(o.features)
          ? {
              features: String(o.features).split(',').map((s: string) => s.trim()),
              k: num('--k', o.k), kRange: o.kRange ? parseKRange(o.kRange) : undefined,
              weight: o.weight, minWeight: num('--min-weight', o.minWeight),
              kmeans: Object.fromEntries(Object.entries({ seed: num('--seed', o.seed), restarts: num('--restarts', o.restarts) }).filter(([, v]) => v !== undefined)),
            }
          : fromFile.cluster,
        out: o.out ?? fromFile.out,
        backend: parseBackend(o.backend !== 'auto' ? o.backend : (fromFile.backend ?? 'auto')),
        threads: threads(o.threads) ?? fromFile.threads,
        // --memory, else the recipe's "memory" (MiB), else the default.
        budgetBytes: parseMemoryMiB(o.memory ?? (fromFile as { memory?: number }).memory?.toString()),
      };
      if (!recipe.out) throw new InputError('--out', 'required (or "out" in the recipe)');
      const s = await runRecipe(recipe, {
        onField: (i, n, name) => { if (n > 1 && !process.stderr.isTTY) process.stderr.write(`field ${i + 1}/${n}: ${name}\n`); },
        onTile: progress('run', 1),
      }) as any;
      console.log(`run: ${recipe.out}`);
      console.log(`  ${s.fields.length} field(s), ${s.spectra.toLocaleString('en-US')} spectra, steps ${s.steps.join(', ')}; backend ${s.backend.name}: ${s.backend.adapter}`);
      console.log(`  ${s.timings_s.total.toFixed(1)} s (${Math.round(s.timings_s.spectra_per_s).toLocaleString('en-US')} spectra/s), peak RSS ${s.memory.peak_rss_MiB} MiB of a ${s.memory.budget_MiB} MiB budget`);
    });
}
