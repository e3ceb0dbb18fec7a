/**
 * A study run as shards (`xanes run --shard i/n`) and merged (`xanes merge`) writes the same
 * bytes as one `xanes run`; the second, sharded labelling pass (--assign-from) too; a merge
 * of an unfinished study names the missing fields and exits 2.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.js';
import { writeStudyFields, differences, productFiles, h5Differences } from '../helpers/study.js';
import { partition, shardOf } from '../../src/pipeline/study.js';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'xanes.js');
let dir: string;
let recipe: string;

let single: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-shard-'));
  const { energies } = writeStudyFields(dir, 5);
  recipe = path.join(dir, 'recipe.json');
  fs.writeFileSync(recipe, JSON.stringify({
    stacks: ['fov_*.npy'], energies: path.basename(energies), steps: ['edge', 'cluster'], backend: 'cpu', threads: 1,
    // fitSample below the study's 463 included pixels: the centres are fitted on a seeded sample.
    cluster: { features: ['edge:e0_half', 'edge:edge_step'], kRange: '2:4', seed: 3, restarts: 2, fitSample: 300 },
  }));
  single = path.join(dir, 'single');
  const r = await runCli(['run', recipe, '--out', single]);
  if (r.code !== 0) throw new Error(r.err);
});

const run = async (args: string[]) => {
  const r = await runCli(args);
  expect(r.code, r.err).toBe(0);
  return r;
};

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('shards and merge', () => {
  test('the split: balanced by size, every field once, the same in every shard', () => {
    const sizes = [5, 1, 4, 2, 3, 3, 1, 9];
    const parts = partition(sizes, 3);
    expect(parts.flat().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const loads = parts.map((p) => p.reduce((s, i) => s + sizes[i], 0));
    // Largest first to the least loaded: 9 | 5 3 | 4 3 2 1 1 ... within the largest field of each other.
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(Math.max(...sizes));
    expect(loads).toEqual([10, 9, 9]);
    expect(partition(sizes, 3)).toEqual(parts);
    expect(shardOf(undefined, { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '4', SLURM_ARRAY_TASK_COUNT: '4' })).toEqual({ index: 1, count: 4, from: 'slurm' });
    expect(shardOf(undefined, {})).toBe(null);
    expect(shardOf('off', { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '2' })).toBe(null);
    expect(shardOf('2/3', {})).toEqual({ index: 2, count: 3, from: 'option' });
  });

  test('two shards + merge = one run, byte for byte; merge of a study with a missing shard exits 2 naming the fields', async () => {
    const study = path.join(dir, 'study');
    await run(['run', recipe, '--out', study, '--shard', '0/2']);
    // Shard 1 has not run: its fields are named, nothing is written.
    const early = await runCli(['merge', study, '--backend', 'cpu', '--threads', '1']);
    expect(early.code).toBe(2);
    expect(early.err.trim().split('\n')).toHaveLength(1);
    const missing = JSON.parse(fs.readFileSync(path.join(study, 'shards', 'shard-0-of-2.json'), 'utf8')).fields.map((f: { name: string }) => f.name)
      .filter((n: string) => !fs.existsSync(path.join(study, n)));
    expect(missing.length).toBeGreaterThan(0);
    for (const n of missing) expect(early.err).toContain(n);
    expect(early.err).toMatch(/not finished/);
    expect(fs.existsSync(path.join(study, 'combined'))).toBe(false);
    expect(fs.existsSync(path.join(study, 'summary.json'))).toBe(false);

    await run(['run', recipe, '--out', study, '--shard', '1/2']);
    // Centres only, then the sharded labelling pass (--assign-from), then a merge with labels.
    await run(['merge', study, '--backend', 'cpu', '--threads', '1', '--no-labels']);
    expect(fs.existsSync(path.join(study, 'fov_00', 'cluster'))).toBe(false);
    expect(differences(single, study).filter((f) => !/^fov_\d+\/cluster\//.test(f))).toEqual([]);
    for (const i of [0, 1]) await run(['run', recipe, '--out', study, '--assign-from', path.join(study, 'combined', 'cluster'), '--shard', `${i}/2`]);
    expect(productFiles(single)).toContain(path.join('combined', 'e0_hist.csv'));
    expect(productFiles(single)).toContain(path.join('combined', 'cluster', 'elbow.png'));
    expect(productFiles(single)).toContain(path.join('fov_03', 'cluster', 'labels.npy'));
    expect(differences(single, study)).toEqual([]);
    fs.rmSync(path.join(study, 'fov_02', 'cluster'), { recursive: true });
    // Another budget: the same bytes (the sample does not depend on it).
    await run(['merge', study, '--backend', 'cpu', '--threads', '1', '--memory', '1024']);
    expect(differences(single, study)).toEqual([]);
    const s = JSON.parse(fs.readFileSync(path.join(study, 'summary.json'), 'utf8'));
    expect(s.memory.budget_MiB).toBe(1024);
    expect(s.combined.cluster.fit_sample).toMatchObject({ limit: 300, pixels: 300 });
    expect(s.combined.cluster.fit_sample.included).toBeGreaterThan(300);
    expect(s.combined.cluster.fit_sample.rule).toMatch(/uniform random sample/);
    expect(s.combined.cluster.pixels_included).toBe(s.combined.cluster.fit_sample.included);
    // The study's results.h5 holds what the single run's holds: every map, table and input.
    const h5 = h5Differences(path.join(single, 'results.h5'), path.join(study, 'results.h5'));
    expect(h5.diff).toEqual([]);
    expect(h5.objects).toBeGreaterThan(100);
    expect(s.command).toBe('run');
    expect(s.merged.shards).toHaveLength(2);
    expect(s.fields).toHaveLength(5);
    expect(fs.readdirSync(study).filter((n) => n.includes('.partial-'))).toEqual([]);
  });

  test('shards refuse a folder a single run wrote; --resume needs --shard', async () => {
    const one = path.join(dir, 'single-2');
    const args = [path.join(dir, 'fov_00.npy'), '--energies', path.join(dir, 'energies.txt'), '--steps', 'edge', '--backend', 'cpu', '--threads', '1', '--out', one];
    await run(['run', ...args]);
    const r = await runCli(['run', ...args, '--shard', '0/2']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/single xanes run/);
    const r2 = await runCli(['run', recipe, '--out', path.join(dir, 'x'), '--resume']);
    expect(r2.code).toBe(2);
    expect(r2.err).toMatch(/--resume/);
  });

  test('a shard killed mid-way leaves no field that looks finished; --resume redoes only the others; the merge equals one run', async () => {
    const study = path.join(dir, 'study-killed');
    // One shard of the whole study, killed (SIGKILL: no clean-up runs) while it writes its second field.
    const child = spawn(process.execPath, [bin, 'run', recipe, '--out', study, '--shard', '0/1'], { stdio: 'ignore' });
    const killedAt = await new Promise<string[]>((resolve, reject) => {
      const poll = setInterval(() => {
        const names = fs.existsSync(study) ? fs.readdirSync(study) : [];
        if (names.some((n) => n.startsWith('fov_01.partial-'))) {
          child.kill('SIGKILL');
          clearInterval(poll);
          resolve(names);
        }
      }, 1);
      child.on('exit', () => { clearInterval(poll); reject(new Error('the shard ended before it was killed')); });
    });
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.on('exit', r)));
    expect(killedAt.some((n) => n.startsWith('fov_01.partial-'))).toBe(true);
    const fields = ['fov_00', 'fov_01', 'fov_02', 'fov_03', 'fov_04'];
    // Every field folder in place is whole (its field.json says finished); the others are not there.
    const finished = fields.filter((f) => fs.existsSync(path.join(study, f)));
    for (const f of finished) expect(JSON.parse(fs.readFileSync(path.join(study, f, 'field.json'), 'utf8')).finished).toBe(true);
    const unfinished = fields.filter((f) => !finished.includes(f));
    expect(unfinished).toContain('fov_01');
    const m = await runCli(['merge', study, '--backend', 'cpu', '--threads', '1']);
    expect(m.code).toBe(2);
    expect(m.err.trim().split('\n')).toHaveLength(1);
    for (const f of unfinished) expect(m.err).toContain(f);
    for (const f of finished) expect(m.err).not.toContain(`${f} (`);
    const before = new Map(finished.map((f) => [f, fs.statSync(path.join(study, f, 'field.json'))]));
    const r = await run(['run', recipe, '--out', study, '--shard', '0/1', '--resume']);
    expect(r.out).toContain(`${finished.length} already finished`);
    for (const f of finished) {
      const st = fs.statSync(path.join(study, f, 'field.json'));
      expect(st.ino, f).toBe(before.get(f)!.ino);
      expect(st.mtimeMs, f).toBe(before.get(f)!.mtimeMs);
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(study, 'shards', 'shard-0-of-1.json'), 'utf8'));
    expect(manifest.skipped).toEqual(finished);
    expect(manifest.finished).toBe(true);
    expect(fs.readdirSync(study).filter((n) => n.includes('.partial-'))).toEqual([]);
    await run(['merge', study, '--backend', 'cpu', '--threads', '1']);
    expect(differences(single, study)).toEqual([]);

    // --resume with a changed recipe refuses the fields finished under the old one (they would be
    // merged as if computed with the new options), and changes nothing.
    const kept = new Map(fields.map((f) => [f, fs.statSync(path.join(study, f, 'field.json')).mtimeMs]));
    const manifestBefore = fs.readFileSync(path.join(study, 'shards', 'shard-0-of-1.json'), 'utf8');
    for (const [extra, named] of [[['--whiteline-width', '5'], /options \(--whiteline-width\)/], [['--steps', 'edge'], /other .*steps/]] as const) {
      const r = await runCli(['run', recipe, '--out', study, '--shard', '0/1', '--resume', ...extra]);
      expect(r.code, extra.join(' ')).toBe(2);
      expect(r.err.trim().split('\n'), extra.join(' ')).toHaveLength(1);
      expect(r.err).toMatch(/fov_00/);
      expect(r.err).toMatch(named);
      expect(r.err).toMatch(/new --out/);
    }
    for (const f of fields) expect(fs.statSync(path.join(study, f, 'field.json')).mtimeMs, f).toBe(kept.get(f));
    expect(fs.readFileSync(path.join(study, 'shards', 'shard-0-of-1.json'), 'utf8')).toBe(manifestBefore);
    // The unchanged recipe still resumes (nothing left to do).
    const again = await run(['run', recipe, '--out', study, '--shard', '0/1', '--resume']);
    expect(again.out).toContain(`${fields.length} already finished`);
  });
});
