/**
 * Readers bounded by the budget, through the CLI: a TIFF decompression bomb (a small file
 * whose pages declare 20000x20000 pixels) is one error line naming the file, its size and
 * the memory it would need, before anything is inflated; a legitimate one-strip Deflate stack
 * reads correctly; `xanes edge` refuses the bomb the same way.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterAll, describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { buildTiff } from '../helpers/tiff-builder.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-readers-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('bounded readers through the CLI', () => {
  const bomb = path.join(dir, 'bomb.tif');
  // Each page: one Deflate strip said to hold 20000 x 20000 bytes (its data holds far fewer).
  const payload = new Uint8Array(deflateSync(new Uint8Array(20000 * 50)));
  fs.writeFileSync(bomb, buildTiff({ pages: [0, 1, 2].map(() => ({ width: 20000, height: 20000, sample: 'uint8' as const, compression: 8, blocks: [payload] })) }));
  const energies = path.join(dir, 'e3.txt');
  fs.writeFileSync(energies, '8330\n8340\n8350\n');

  test('xanes info on a TIFF bomb: one line naming --memory, the file, its size and the need', async () => {
    expect(fs.statSync(bomb).size).toBeLessThan(20000);
    const r = await runCli(['info', bomb]);
    expect(r.code).toBe(2);
    const lines = r.err.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^xanes: error: --memory: a budget of 2048 MiB is too small for ${bomb.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(3 energies x 20000 x 20000 pixels\\): it needs at least \\d+ MiB`));
    expect(r.out).toBe('');
  });

  test('xanes edge on the same bomb: the same one line, and no output folder', async () => {
    const out = path.join(dir, 'out-bomb');
    const r = await runCli(['edge', bomb, '--energies', energies, '--backend', 'cpu', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain(`too small for ${bomb} (3 energies x 20000 x 20000 pixels)`);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
  });

  test('xanes info on a legitimate one-strip Deflate stack prints its true value range', async () => {
    const w = 96;
    const h = 80;
    const pages = Array.from({ length: 6 }, (_, e) => Array.from({ length: w * h }, (_, i) => 1000 + ((i * 7 + e * 13) % 500)));
    pages[3][100] = 7; // the minimum
    pages[5][w * h - 1] = 4242; // the maximum, in the last row of the last page
    const p = path.join(dir, 'legit.tif');
    fs.writeFileSync(p, buildTiff({ pages: pages.map((v) => ({ width: w, height: h, values: v, compression: 8, predictor: 2 as const })) }));
    const r = await runCli(['info', p, '--memory', '256']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('shape [E,H,W] = [6, 80, 96]');
    expect(r.out).toContain('stored as uint16');
    expect(r.out).toContain('values 7 .. 4242');
  });
});
