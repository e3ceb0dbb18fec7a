/**
 * `xanes run`: several steps, one pass of tiles per field, many fields
 * (src/pipeline/run-recipe.ts). Options and recipe keys: src/options/schema.ts; the command
 * line's values override a recipe's, option by option.
 */
import type { Command } from 'commander';
import { runRecipe, recipeFromValues, RUN_STEPS } from '../pipeline/run-recipe.js';
import { addOptions, fromCli, readRecipe, mergeValues, emptyValues, RUN_CLI_SKIP } from '../options/parse.js';
import { fieldProgress } from './progress.js';

export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .description(`several steps (${RUN_STEPS.join(', ')}) over one pass of tiles, for one or many fields of view`)
    .argument('<stacks...>', 'stacks (paths or quoted glob patterns, one per field of view; synthetic:HxW for a generated one), or one RECIPE.json');
  addOptions(cmd, 'run', { skip: RUN_CLI_SKIP }).action(async (stacks: string[], _o: unknown, c: Command) => {
    const isRecipe = stacks.length === 1 && stacks[0].toLowerCase().endsWith('.json');
    const fromFile = isRecipe ? readRecipe(stacks[0]) : emptyValues();
    if (!isRecipe) fromFile.common.stacks = stacks;
    const values = mergeValues(fromFile, fromCli('run', c, { skip: RUN_CLI_SKIP }));
    const recipe = recipeFromValues(values, isRecipe ? stacks[0] : undefined);
    const bars = fieldProgress();
    const s = await runRecipe(recipe, { onField: bars.onField, onTile: bars.onTile }).finally(() => bars.stop()) as any;
    if (s.shard) {
      console.log(`run: shard ${s.shard.index}/${s.shard.count} of ${recipe.out}${s.assigned_from ? ` (labels from ${s.assigned_from})` : ''}`);
      console.log(`  ${s.fields.length} field(s) written${s.skipped?.length ? `, ${s.skipped.length} already finished (--resume)` : ''}; when every shard has finished: xanes merge ${recipe.out}`);
      return;
    }
    console.log(`run: ${recipe.out}`);
    console.log(`  ${s.fields.length} field(s), ${s.spectra.toLocaleString('en-US')} spectra, steps ${s.steps.join(', ')}; backend ${s.backend.name}: ${s.backend.adapter}`);
    console.log(`  ${s.timings_s.total.toFixed(1)} s (${Math.round(s.timings_s.spectra_per_s).toLocaleString('en-US')} spectra/s), peak RSS ${s.memory.peak_rss_MiB} MiB of a ${s.memory.budget_MiB} MiB budget`);
  });
}
