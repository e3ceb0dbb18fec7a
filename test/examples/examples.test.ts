/**
 * The scripts in examples/ run as a user copies them (against the built dist/), and print what
 * their comments promise. They are JavaScript, so nothing else would notice when the API under
 * them changes. (examples/api/ is type-checked by test/api/example.test.ts;
 * examples/cluster-maps.mjs needs a demo run's fit folder and is covered by the demo tests'
 * cluster step instead.)
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, test } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-examples-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function example(args: string[]): Promise<string> {
  const r = await run(process.execPath, args, { cwd: root, timeout: 120_000 });
  return r.stdout;
}

test('edge-map.mjs maps the synthetic stack in memory: the core pixel has a Ni K-edge energy', async () => {
  const out = await example(['examples/edge-map.mjs']);
  const m = /e0_half at \(x 19, y 20\) = ([\d.]+) eV, state of charge ([\d.]+)/.exec(out);
  expect(m, out).not.toBeNull();
  // The synthetic Ni K-edge stack's edges lie between its NiO-like and LiNiO2-like references.
  expect(Number(m![1])).toBeGreaterThan(8335);
  expect(Number(m![1])).toBeLessThan(8350);
}, 120_000);

test('fit-vk.mjs recovers edge energies in valence order (V3+ < V4+ < V5+)', async () => {
  const out = await example(['examples/fit-vk.mjs']);
  const b2 = [...out.matchAll(/median b2 ([\d.]+) eV/g)].map((m) => Number(m[1]));
  expect(b2, out).toHaveLength(3);
  expect(b2[0]).toBeLessThan(b2[1]);
  expect(b2[1]).toBeLessThan(b2[2]);
}, 120_000);

test('lcf-stxm.mjs fits the bundled STXM stack and writes the fraction maps and composite', async () => {
  const out = path.join(tmp, 'lcf');
  const stdout = await example(['examples/lcf-stxm.mjs', 'test/fixtures/stxm-fe-l3/71214098.hdr', out]);
  expect(stdout).toMatch(/"ok":\d+/);
  for (const f of ['fraction_peak708.npy', 'fraction_peak710.npy', 'rgb.png', 'summary.json']) expect(fs.existsSync(path.join(out, f)), f).toBe(true);
}, 120_000);
