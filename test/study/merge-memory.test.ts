/**
 * `xanes merge --memory`: the k-means across fields holds one field's maps at a time and at
 * most cluster.fitSample fitted pixels, so a study whose feature maps are larger than the
 * budget merges within it (peak RSS of the process, getrusage, at most 1.1 x --memory), and
 * the clustering still finds the fields' known domains (adjusted Rand index against the
 * truth) while the centres are fitted on a sample. A budget below what the plan needs is one
 * error line naming --memory and how much, exit 2, nothing written.
 *
 * The study: four small synthetic fields run as two real shards (manifests, field.json and
 * maps as the shards write them), whose two feature maps are then replaced by large maps
 * with three known domains each (the shards' own maps of 16 x 16 pixels would fit anything).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { peakRss, RSS_TOLERANCE } from '../helpers/peak-rss.js';
import { runCli } from '../helpers/cli.js';
import { writeStudyFields } from '../helpers/study.js';
import { adjustedRandIndex } from '../helpers/cluster.js';
import { readNpy, writeNpy } from '../../src/io/npy.js';
import { makeRng } from '../../src/synth/random.js';

/** Three well-separated domains (centres 2.5 eV and 0.5 apart, noise 0.25 eV and 0.05): near-perfect recovery. */
const ARI_MIN = 0.99;

const BUDGET_MIB = 192;
const FIELDS = 8;
/** Side of each field's replaced maps: 8 fields x 2 maps x 1800 x 1800 x 4 bytes = 207 MB of features. */
const SIDE = 1800;
/** The fit's sample (recipe cluster.fitSample): 26 M pixels in the study, 200,000 fitted. */
const FIT_SAMPLE = 200_000;
/** The labelling pass writes each field's cluster folder (pictures, TIFFs, report): a field's outputs, more than its maps. */
const LABELS_BUDGET_MIB = 288;
const CENTRES: [number, number][] = [[8340, 1.0], [8342.5, 0.5], [8345, 1.5]];

let dir: string;
let study: string;
let recipe: string;
const truth = new Map<string, Int8Array>();

/** Field i's domains: three bands across the image, turned with i; a NaN row at the top (excluded pixels). */
function growField(name: string, i: number): void {
  const rng = makeRng(100 + i);
  const P = SIDE * SIDE;
  const e0 = new Float32Array(P), step = new Float32Array(P), t = new Int8Array(P);
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const p = y * SIDE + x;
      const along = i % 2 === 0 ? x : y;
      const c = (Math.floor((3 * along) / SIDE) + i) % 3;
      t[p] = y === 0 ? -1 : c;
      e0[p] = y === 0 ? NaN : CENTRES[c][0] + 0.25 * rng.normal();
      step[p] = CENTRES[c][1] + 0.05 * rng.normal();
    }
  }
  writeNpy(path.join(study, name, 'edge', 'e0_half.npy'), e0, [SIDE, SIDE]);
  writeNpy(path.join(study, name, 'edge', 'edge_step.npy'), step, [SIDE, SIDE]);
  const fj = path.join(study, name, 'field.json');
  const rec = JSON.parse(fs.readFileSync(fj, 'utf8'));
  rec.shape = { ...rec.shape, height: SIDE, width: SIDE };
  fs.writeFileSync(fj, JSON.stringify(rec, null, 2) + '\n');
  truth.set(name, t);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-merge-memory-'));
  const { energies } = writeStudyFields(dir, FIELDS);
  recipe = path.join(dir, 'recipe.json');
  fs.writeFileSync(recipe, JSON.stringify({
    stacks: ['fov_*.npy'], energies: path.basename(energies), steps: ['edge', 'cluster'], backend: 'cpu', threads: 1,
    cluster: { features: ['edge:e0_half', 'edge:edge_step'], k: 3, seed: 5, restarts: 2, fitSample: FIT_SAMPLE },
  }));
  study = path.join(dir, 'study');
  for (const s of ['0/2', '1/2']) {
    const r = await runCli(['run', recipe, '--out', study, '--shard', s]);
    if (r.code !== 0) throw new Error(r.err);
  }
  Array.from({ length: FIELDS }, (_, i) => `fov_${String(i).padStart(2, '0')}`).forEach(growField);
}, 300_000);

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const featureBytes = () => [...truth.keys()].reduce((a, n) => a + ['e0_half', 'edge_step'].reduce((b, m) => b + fs.statSync(path.join(study, n, 'edge', `${m}.npy`)).size, 0), 0);

describe('xanes merge --memory: k-means across fields within the budget', () => {
  test('a budget below the plan is one line naming --memory and what is needed; nothing written', async () => {
    const r = await peakRss(['merge', study, '--memory', '64', '--backend', 'cpu', '--threads', '1']);
    expect(r.code).toBe(2);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('xanes'));
    expect(lines).toEqual([expect.stringMatching(/^xanes: error: --memory: a budget of 64 MiB is too small for the k-means across 8 field\(s\) \(2 feature\(s\)\): it needs at least \d+ MiB \(.*200,000 fitted pixels.*largest field 1800 x 1800/)]);
    expect(fs.existsSync(path.join(study, 'combined'))).toBe(false);
    expect(fs.existsSync(path.join(study, 'summary.json'))).toBe(false);
    expect(fs.readdirSync(study).filter((f) => f.includes('.partial-'))).toEqual([]);
  }, 120_000);

  test(`maps larger than the budget: merge at --memory ${BUDGET_MIB} stays within 1.1 x, and finds the known domains`, async () => {
    expect(featureBytes()).toBeGreaterThan(BUDGET_MIB * 2 ** 20);
    const r = await peakRss(['merge', study, '--memory', String(BUDGET_MIB), '--backend', 'cpu', '--threads', '1', '--no-labels']);
    console.log(`merge-memory: ${FIELDS} fields x ${SIDE} x ${SIDE} x 2 features (${(featureBytes() / 2 ** 20).toFixed(0)} MiB of maps), --memory ${BUDGET_MIB}: exit ${r.code}, peak ${r.maxRssMiB.toFixed(0)} MiB`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.maxRssMiB, `peak ${r.maxRssMiB.toFixed(0)} MiB`).toBeLessThanOrEqual(RSS_TOLERANCE * BUDGET_MIB);
    const s = JSON.parse(fs.readFileSync(path.join(study, 'summary.json'), 'utf8'));
    expect(s.memory.budget_MiB).toBe(BUDGET_MIB);
    expect(s.memory.planned_peak_MiB).toBeLessThanOrEqual(BUDGET_MIB);
    const c = s.combined.cluster;
    // Centres fitted on exactly fitSample pixels of the 4 x (SIDE - 1) x SIDE included; every pixel labelled.
    expect(c.fit_sample).toMatchObject({ limit: FIT_SAMPLE, pixels: FIT_SAMPLE, included: FIELDS * (SIDE - 1) * SIDE });
    expect(c.fit_sample.rule).toMatch(/uniform random sample without replacement/);
    expect(c.pixels_included).toBe(FIELDS * (SIDE - 1) * SIDE);
    expect(c.pixels_excluded).toBe(FIELDS * SIDE);
    expect(c.counts.reduce((a: number, b: number) => a + b, 0)).toBe(c.pixels_included);
    // Centres in feature units near the domains' (sorted by e0 first, as the numbering is).
    const centres = fs.readFileSync(path.join(study, 'combined', 'cluster', 'centres.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
    centres.forEach((row, j) => {
      expect(row[2]).toBeCloseTo(CENTRES[j][0], 1);
      expect(row[3]).toBeCloseTo(CENTRES[j][1], 2);
    });
    // The labels, field by field (the second pass; its own plan: one field at a time).
    // Two of the eight fields (shard 0 of 4), to keep the test short; the others are no different.
    const a = await peakRss(['run', recipe, '--out', study, '--assign-from', path.join(study, 'combined', 'cluster'), '--shard', '0/4', '--memory', String(LABELS_BUDGET_MIB)]);
    expect(a.code, a.stderr).toBe(0);
    const labelled = [...truth.keys()].filter((n) => fs.existsSync(path.join(study, n, 'cluster')));
    expect(labelled).toHaveLength(2);
    console.log(`merge-memory: labels of 2 fields x ${SIDE} x ${SIDE}, --memory ${LABELS_BUDGET_MIB}: exit ${a.code}, peak ${a.maxRssMiB.toFixed(0)} MiB`);
    expect(a.code, a.stderr).toBe(0);
    expect(a.maxRssMiB).toBeLessThanOrEqual(RSS_TOLERANCE * LABELS_BUDGET_MIB);
    for (const name of labelled) {
      const t = truth.get(name)!;
      const labels = readNpy(path.join(study, name, 'cluster', 'labels.npy')).data as Int16Array;
      const inc = [...t.keys()].filter((p) => t[p] >= 0);
      expect(inc.every((p) => labels[p] >= 0)).toBe(true);
      expect([...t.keys()].filter((p) => t[p] < 0).every((p) => labels[p] === -1)).toBe(true);
      const ari = adjustedRandIndex(inc.map((p) => t[p]), inc.map((p) => labels[p]));
      expect(ari, name).toBeGreaterThan(ARI_MIN);
    }
  }, 300_000);
});
