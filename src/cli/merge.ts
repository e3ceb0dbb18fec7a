/**
 * `xanes merge STUDY`: the products over fields of a study run as shards
 * (src/pipeline/merge.ts). Options: src/options/schema.ts ("merge").
 */
import type { Command } from 'commander';
import { addOptions, fromCli } from '../options/parse.js';
import { mergeStudy } from '../pipeline/merge.js';
import { memoryBytes } from '../options/convert.js';

export function registerMerge(program: Command): void {
  const cmd = program
    .command('merge')
    .description('merge the fields a sharded xanes run (--shard i/n, a Slurm job array) wrote into STUDY: the e0 histogram and k-means over all fields, as one run writes them')
    .argument('<study>', 'the study folder the shards wrote (their --out)');
  addOptions(cmd, 'merge').action(async (study: string, _o: unknown, c: Command) => {
    const v = fromCli('merge', c);
    const s = await mergeStudy(study, { backend: v.common.backend, threads: v.common.threads, noLabels: v.common.noLabels, budgetBytes: memoryBytes(v.common.memory) }) as any;
    console.log(`merge: ${study}`);
    console.log(`  ${s.fields.length} field(s) from ${s.merged.shards.length} shard(s), ${s.spectra.toLocaleString('en-US')} spectra; combined/ written${s.combined.cluster ? `, k = ${s.combined.cluster.k}` : ''}; labels ${s.merged.labels}`);
  });
}
