/**
 * examples/slurm/ against a real Slurm: a one-node cluster on this machine
 * (test/slurm/local-cluster.sh: Debian's slurm-wlm and munge, as root, as CI runs), a 4-task
 * job array of `xanes run RECIPE` shards over 8 synthetic fields and the merge job submitted
 * with --dependency=afterok, compared byte for byte with one `xanes run`. If Slurm cannot
 * start, the test fails (it is never skipped). The daemons are stopped at the end.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.js';
import { writeStudyFields, differences } from '../helpers/study.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cluster = path.join(repo, 'test', 'slurm', 'local-cluster.sh');
/** How long the jobs may take, all together, on a loaded 2-core machine (alone they take about 22 s; the test's own limit is a little longer). */
const JOBS_LIMIT_MS = 200_000;
let dir: string;
let recipe: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-slurm-'));
  const { energies } = writeStudyFields(dir, 8);
  recipe = path.join(dir, 'recipe.json');
  fs.writeFileSync(recipe, JSON.stringify({
    stacks: ['fov_*.npy'], energies: path.basename(energies), steps: ['edge', 'cluster'], backend: 'cpu', threads: 1,
    cluster: { features: ['edge:e0_half', 'edge:edge_step'], k: 3, seed: 1, restarts: 2 },
  }));
});

function logs(): string {
  const d = path.join(dir, 'log');
  const files = fs.existsSync(d) ? fs.readdirSync(d) : [];
  return files.map((f) => `--- ${f}\n${fs.readFileSync(path.join(d, f), 'utf8').slice(-1500)}`).join('\n');
}

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('examples/slurm on a one-node Slurm cluster', () => {
  test('a 4-task array and the merge after it write the bytes of one run', async () => {
    const single = path.join(dir, 'single');
    const r = await runCli(['run', recipe, '--out', single]);
    expect(r.code, r.err).toBe(0);

    const state = path.join(dir, 'slurm');
    const started = spawnSync('bash', [cluster, 'start', state], { encoding: 'utf8' });
    try {
      if (started.status !== 0) throw new Error(`Slurm did not start (exit ${started.status}): ${started.stderr.trim()} ${started.error?.message ?? ''}`);
      const study = path.join(dir, 'study');
      fs.mkdirSync(path.join(dir, 'log'));
      const env = {
        ...process.env, SLURM_CONF: started.stdout.trim().split('\n').pop()!,
        RECIPE: recipe, STUDY: study, XANES: `${process.execPath} ${path.join(repo, 'bin', 'xanes.js')}`,
      };
      const sbatch = (args: string[]) => execFileSync('sbatch', ['--parsable', '--partition=main', '--cpus-per-task=1', '--mem=1G', ...args], { env, encoding: 'utf8' }).trim().split(';')[0];
      // The two commands of the README, with the test cluster's partition and a 4-task array.
      const array = sbatch(['--array=0-3', `--output=${dir}/log/shard-%A_%a.log`, path.join(repo, 'examples', 'slurm', 'xanes-shards.sbatch')]);
      const merge = sbatch([`--dependency=afterok:${array}`, `--output=${dir}/log/merge-%j.log`, path.join(repo, 'examples', 'slurm', 'xanes-merge.sbatch')]);
      const t0 = Date.now();
      for (;;) {
        const q = execFileSync('squeue', ['-h', '-j', `${array},${merge}`, '-o', '%i %T %r'], { env, encoding: 'utf8' }).trim();
        if (q === '') break;
        if (/DependencyNeverSatisfied/.test(q)) throw new Error(`a shard failed, the merge will never run:\n${q}\n${logs()}`);
        if (Date.now() - t0 > JOBS_LIMIT_MS) throw new Error(`the jobs did not finish within ${JOBS_LIMIT_MS / 1000} s:\n${q}\n${logs()}`);
        await new Promise((res) => setTimeout(res, 1000));
      }
      console.log(`slurm: 4-task array + merge over 8 fields took ${((Date.now() - t0) / 1000).toFixed(1)} s from submission`);
      expect(fs.existsSync(path.join(study, 'summary.json')), logs()).toBe(true);
      const shards = fs.readdirSync(path.join(study, 'shards')).sort();
      expect(shards).toEqual([0, 1, 2, 3].map((i) => `shard-${i}-of-4.json`));
      for (const s of shards) expect(JSON.parse(fs.readFileSync(path.join(study, 'shards', s), 'utf8')).shard.from).toBe('slurm');
      expect(JSON.parse(fs.readFileSync(path.join(study, 'summary.json'), 'utf8')).fields).toHaveLength(8);
      expect(differences(single, study)).toEqual([]);
    } finally {
      spawnSync('bash', [cluster, 'stop', state]);
    }
  }, 240_000);
});
