/**
 * The --memory budget is honest: a 2000 x 2000 x 101 synthetic stack through `xanes edge` at
 * --memory 256 on both backends, and a 1000 x 1000 x 101 one at 512 and 2048 (a quarter of
 * the work, to keep the suite short; at 2048 both fit in one tile anyway), keep the peak
 * resident size the operating system reports (getrusage maxRSS of the child process, worker
 * threads included) within 1.1 x the budget. Where the budget cannot hold the run (Dawn's software GPU, Node and
 * HDF5 need more than 256 MiB beside a 2000 x 2000 image), the run is one error line that
 * names --memory and how much it needs, and leaves nothing behind.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-memory-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const helper = fileURLToPath(new URL('../helpers/peak-rss.mjs', import.meta.url));

/** The acceptance: peak RSS at most 1.1 x --memory. */
const RSS_TOLERANCE = 1.1;

function run(args: string[]): { code: number; maxRssMiB: number; stderr: string } {
  const r = spawnSync(process.execPath, [helper, ...args], { encoding: 'utf8', timeout: 900_000 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  const { code, maxRssKiB } = JSON.parse(last) as { code: number; maxRssKiB: number };
  return { code, maxRssMiB: maxRssKiB / 1024, stderr: r.stderr };
}

/** stderr without Dawn's C++ warnings (another part of the engine keeps them off the terminal). */
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('xanes'));

describe('peak RSS within --memory', () => {
  for (const backend of ['cpu', 'webgpu'] as const) {
    for (const [mib, size] of [[256, 2000], [512, 1000], [2048, 1000]] as const) {
      test(`edge, synthetic ${size}x${size}x101, ${backend}, --memory ${mib}`, () => {
        const out = path.join(dir, `edge-${backend}-${mib}`);
        const r = run(['edge', `synthetic:${size}x${size}`, '--backend', backend, '--memory', String(mib), '--out', out]);
        expect(r.maxRssMiB, `peak ${r.maxRssMiB.toFixed(0)} MiB`).toBeLessThanOrEqual(RSS_TOLERANCE * mib);
        if (r.code === 0) {
          const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
          expect(summary.memory.budget_MiB).toBe(mib);
          expect(summary.memory.process_baseline_MiB).toBeGreaterThan(10);
          expect(fs.existsSync(path.join(out, 'results.h5'))).toBe(true);
        } else {
          // Only the smallest budget may be too small, and then: one line saying how much is needed.
          expect(mib).toBe(256);
          expect(r.code).toBe(2);
          const lines = errorLines(r.stderr);
          expect(lines).toHaveLength(1);
          expect(lines[0]).toMatch(/^xanes: error: --memory: a budget of 256 MiB is too small for synthetic:2000x2000 \(101 energies x 2000 x 2000 pixels\): it needs at least \d+ MiB/);
          expect(fs.existsSync(out)).toBe(false);
        }
        if (mib > 256) expect(r.code, r.stderr).toBe(0);
        expect(fs.readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
      }, 900_000);
    }
  }

  test('a budget larger than the machine, and an image no map can hold, are one clear line each', () => {
    let r = run(['edge', 'synthetic:100x100', '--memory', '1e9', '--out', path.join(dir, 'huge')]);
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/^xanes: error: --memory: 1000000000 MiB is more than this machine's memory \(\d+ MiB\)$/)]);
    r = run(['edge', 'synthetic:100000x100000', '--out', path.join(dir, 'huge')]);
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/^xanes: error: synthetic:100000x100000: 100000 x 100000 = 1\.00e\+10 pixels is more than one image may have/)]);
    expect(fs.existsSync(path.join(dir, 'huge'))).toBe(false);
  });
});
