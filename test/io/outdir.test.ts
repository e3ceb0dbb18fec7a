/**
 * Output folders that cannot destroy anything the engine did not create (src/io/outdir.ts),
 * through the CLI as a user meets them: unrelated folders, outputs over their own inputs,
 * recipes pointing elsewhere, stale temporary folders of killed runs, missing parents,
 * parents that are files, read-only places and full disks. Every refusal is exit 2, one
 * line naming the path, no output or temporary folder, every pre-existing file unchanged.
 */
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { makeNiTxmStack } from '../../src/synth/ni-txm.js';
import { writeNpy } from '../../src/io/npy.js';
import { MARKER, OutputDir, cleanStale, checkOutPath, hostTag } from '../../src/io/outdir.js';

let dir: string;
let energies: string;
const W = 8, H = 6;

/** A small absorbance stack of the Ni K-edge, written where the test wants it. */
function writeStack(file: string): string {
  const s = makeNiTxmStack({ width: W, height: H, seed: 3, noise: true });
  const a = new Float32Array(s.sample.length);
  for (let i = 0; i < a.length; i++) a[i] = -Math.log((s.sample[i] - s.dark[i]) / (s.flat[i] - s.dark[i]));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeNpy(file, a, [s.energies.length, H, W]);
  return file;
}

/** Every file under a folder with its bytes, to prove nothing changed. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(root, p)] = fs.readFileSync(p).toString('base64');
    }
  };
  walk(root);
  return out;
}

const edge = (stack: string, out: string, ...more: string[]) => runCli(['edge', stack, '--energies', energies, '--backend', 'cpu', '--threads', '1', '--e0', '8343', '--out', out, ...more]);

/** Exit 2, one line naming `where`, matching `problem`. */
function expectRefused(r: { code: number; err: string; out: string }, where: string, problem: RegExp): void {
  expect(r.code, r.out + r.err).toBe(2);
  const lines = r.err.trim().split('\n');
  expect(lines, r.err).toHaveLength(1);
  expect(lines[0]).toMatch(/^xanes: error: /);
  expect(lines[0]).toContain(where);
  expect(lines[0]).toMatch(problem);
}

const partials = (d: string) => fs.readdirSync(d).filter((f) => /\.(partial|old)-\d+$/.test(f));

let stack: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-outdir-'));
  const s = makeNiTxmStack({ width: W, height: H, seed: 3, noise: true });
  energies = path.join(dir, 'energies.txt');
  fs.writeFileSync(energies, Array.from(s.energies).join('\n') + '\n');
  stack = writeStack(path.join(dir, 'stack.npy'));
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('--out never replaces what xanes did not make', () => {
  test('a folder with an unrelated summary.json and other files is refused and left byte-identical', async () => {
    const out = path.join(dir, 'notes');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'summary.json'), '{"my": "own summary"}');
    fs.writeFileSync(path.join(out, 'thesis.tex'), '\\chapter{1}');
    const before = snapshot(out);
    expectRefused(await edge(stack, out), out, /was not written by xanes/);
    expect(snapshot(out)).toEqual(before);
    expect(partials(dir)).toEqual([]);
  });

  test('an earlier xanes output (marker) is replaced; an empty folder is used', async () => {
    const out = path.join(dir, 'again');
    expect((await edge(stack, out)).code).toBe(0);
    expect(fs.existsSync(path.join(out, MARKER))).toBe(true);
    fs.writeFileSync(path.join(out, 'stale.txt'), 'from the first run');
    const r = await edge(stack, out);
    expect(r.code, r.err).toBe(0);
    expect(fs.existsSync(path.join(out, 'stale.txt'))).toBe(false);
    expect(fs.existsSync(path.join(out, 'e0_half.npy'))).toBe(true);
    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty);
    expect((await edge(stack, empty)).code).toBe(0);
    expect(fs.existsSync(path.join(empty, 'summary.json'))).toBe(true);
    expect(partials(dir)).toEqual([]);
  });

  test('a stack stored inside --out (even a marked one) is refused; the stack is intact', async () => {
    const out = path.join(dir, 'marked');
    expect((await edge(stack, out)).code).toBe(0);
    const inner = writeStack(path.join(out, 'raw', 'inner.npy'));
    const before = snapshot(out);
    expectRefused(await edge(inner, out), out, /holds the input/);
    expect(snapshot(out)).toEqual(before);
  });

  test('--out equal to an input file, or inside an input folder, is refused', async () => {
    const before = fs.readFileSync(stack);
    expectRefused(await edge(stack, stack), stack, /is the input/);
    expect(fs.readFileSync(stack).equals(before)).toBe(true);
    expectRefused(await edge(stack, energies), energies, /is the input/);
    // --flat/--dark are inputs too.
    const flatDir = path.join(dir, 'flats');
    const flat = writeStack(path.join(flatDir, 'flat.npy'));
    expectRefused(await edge(stack, flatDir, '--flat', flat), flatDir, /holds the input/);
  });

  test('xanes cluster --from fit/ --out fit/ (and --out inside --from) is refused; the maps are intact', async () => {
    const fit = path.join(dir, 'fitout');
    expect((await edge(stack, fit)).code).toBe(0);
    const before = snapshot(fit);
    expectRefused(await runCli(['cluster', '--from', fit, '--features', 'e0_half,edge_step', '--k', '2', '--backend', 'cpu', '--out', fit]), fit, /holds the input|is the input/);
    const sub = path.join(fit, 'clusters');
    expectRefused(await runCli(['cluster', '--from', fit, '--features', 'e0_half,edge_step', '--k', '2', '--backend', 'cpu', '--out', sub]), sub, /is inside the input/);
    expect(snapshot(fit)).toEqual(before);
    // Beside it, it works.
    const ok = await runCli(['cluster', '--from', fit, '--features', 'e0_half,edge_step', '--k', '2', '--backend', 'cpu', '--out', path.join(dir, 'clusters-ok')]);
    expect(ok.code, ok.err).toBe(0);
  });

  test('xanes report writes only into a folder xanes made; inspect checks --pixel by the schema', async () => {
    const notes = path.join(dir, 'notes-report');
    fs.mkdirSync(notes);
    fs.writeFileSync(path.join(notes, 'summary.json'), '{"mine": true}');
    const before = snapshot(notes);
    expectRefused(await runCli(['report', notes]), notes, /was not written by xanes/);
    expect(snapshot(notes)).toEqual(before);
    const made = path.join(dir, 'made-report');
    expect((await edge(stack, made)).code).toBe(0);
    expectRefused(await runCli(['inspect', made, '--pixel', '3,x', '--out', path.join(dir, 'insp')]), '--pixel', /expected x,y \(whole numbers from 0\) for the pixel, got "3,x"$/);
    expect(fs.existsSync(path.join(dir, 'insp'))).toBe(false);
  });

  test('xanes demo --dir never writes its example data over files it did not make', async () => {
    const home = path.join(dir, 'home');
    fs.mkdirSync(path.join(home, 'data'), { recursive: true });
    fs.writeFileSync(path.join(home, 'data', 'sample.tif'), 'my own measurement');
    const before = snapshot(home);
    expectRefused(await runCli(['demo', '--dir', home, '--size', '16']), path.join(home, 'data'), /was not written by xanes/);
    expect(snapshot(home)).toEqual(before);
  });

  test('a recipe whose "out" is ../victim (not made by xanes) is refused; the victim is intact', async () => {
    const victim = path.join(dir, 'victim');
    fs.mkdirSync(victim);
    fs.writeFileSync(path.join(victim, 'data.csv'), '1,2,3\n');
    const rdir = path.join(dir, 'recipes');
    fs.mkdirSync(rdir);
    fs.copyFileSync(stack, path.join(rdir, 'fov.npy'));
    fs.copyFileSync(energies, path.join(rdir, 'energies.txt'));
    const recipe = path.join(rdir, 'r.json');
    fs.writeFileSync(recipe, JSON.stringify({ stacks: ['fov.npy'], energies: 'energies.txt', steps: ['edge'], e0: 8343, backend: 'cpu', out: '../victim' }));
    const before = snapshot(victim);
    expectRefused(await runCli(['run', recipe]), victim, /was not written by xanes/);
    expect(snapshot(victim)).toEqual(before);
    // "out" pointing at the recipe's own folder (which holds its inputs) is refused too.
    fs.writeFileSync(recipe, JSON.stringify({ stacks: ['fov.npy'], energies: 'energies.txt', steps: ['edge'], e0: 8343, backend: 'cpu', out: '.' }));
    const rbefore = snapshot(rdir);
    expectRefused(await runCli(['run', recipe]), 'recipes', /holds the input/);
    expect(snapshot(rdir)).toEqual(rbefore);
  });
});

describe('temporary folders, parents, and file-system failures', () => {
  test('stale *.partial-<pid> folders of dead processes are removed by the next run; others are left', async () => {
    const out = path.join(dir, 'killed');
    const dead = `${out}.partial-999999`; // no such process (pid_max is far lower on Linux by default)
    fs.mkdirSync(dead);
    fs.writeFileSync(path.join(dead, MARKER), '{}');
    fs.writeFileSync(path.join(dead, 'half.npy'), 'x');
    const foreign = `${out}.partial-999998`; // same pattern, but not ours (no marker): left alone
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'keep.txt'), 'mine');
    const r = await edge(stack, out);
    expect(r.code, r.err).toBe(0);
    expect(fs.existsSync(dead)).toBe(false);
    expect(fs.readFileSync(path.join(foreign, 'keep.txt'), 'utf8')).toBe('mine');
    expect(cleanStale(out)).toEqual([]);
    fs.rmSync(foreign, { recursive: true });
  });

  test('missing parents are created (mkdir -p)', async () => {
    const out = path.join(dir, 'deep', 'er', 'out');
    const r = await edge(stack, out);
    expect(r.code, r.err).toBe(0);
    expect(fs.existsSync(path.join(out, 'e0_half.npy'))).toBe(true);
  });

  test('a parent that is a file is one clear error naming it; nothing is created', async () => {
    const file = path.join(dir, 'afile');
    fs.writeFileSync(file, 'not a folder');
    expectRefused(await edge(stack, path.join(file, 'sub')), 'afile', /is a file, not a folder/);
    expect(fs.readFileSync(file, 'utf8')).toBe('not a folder');
    expectRefused(await edge(stack, path.join(file, 'a', 'b')), 'afile', /is a file, not a folder/);
  });

  test('a read-only place is one clear error; parents created for the run are removed again', async () => {
    const out = path.join(dir, 'ro', 'parent', 'out');
    const real = fs.mkdirSync;
    // As root, permissions do not stop writes: the file system's answer is simulated.
    vi.spyOn(fs, 'mkdirSync').mockImplementation(((p: fs.PathLike, o?: fs.MakeDirectoryOptions) => {
      if (String(p).includes(`${path.sep}parent`)) throw Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS', path: String(p) });
      return real(p, o as fs.MakeDirectoryOptions & { recursive: true });
    }) as typeof fs.mkdirSync);
    expectRefused(await edge(stack, out), out, /cannot create the folder .*parent: the file system is read-only \(EROFS\)/);
    expect(fs.existsSync(path.join(dir, 'ro'))).toBe(false);
  });

  test('a full disk while writing is one line naming the output file; no partial folder is left', async () => {
    const out = path.join(dir, 'full');
    const real = fs.writeFileSync;
    vi.spyOn(fs, 'writeFileSync').mockImplementation(((p: fs.PathOrFileDescriptor, data: string | NodeJS.ArrayBufferView, o?: fs.WriteFileOptions) => {
      if (String(p).endsWith('summary.json')) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC', path: String(p) });
      return real(p, data, o);
    }) as typeof fs.writeFileSync);
    expectRefused(await edge(stack, out), path.join(out, 'summary.json'), /the disk is full \(ENOSPC\)/);
    expect(fs.existsSync(out)).toBe(false);
    expect(partials(dir)).toEqual([]);
  });

  test('OutputDir.commit refuses a folder that appeared during the run without the marker', () => {
    const out = path.join(dir, 'race');
    const d = OutputDir.create(out);
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'other.txt'), 'someone else');
    expect(() => d.commit()).toThrow(/appeared during the run/);
    d.abandon();
    expect(fs.readFileSync(path.join(out, 'other.txt'), 'utf8')).toBe('someone else');
    expect(() => checkOutPath(out)).toThrow(/was not written by xanes/);
  });
});

test('a study part never removes a same-named folder it did not make; its own marked leftover is replaced', () => {
  const study = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-part-'));
  try {
    const foreign = path.join(study, `f1.partial-${hostTag()}`);
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'keep.txt'), 'user data');
    expect(() => OutputDir.createPart(study, 'f1')).toThrow(/was not made by xanes/);
    expect(fs.readFileSync(path.join(foreign, 'keep.txt'), 'utf8')).toBe('user data');
    const ours = path.join(study, `f2.partial-${hostTag()}`);
    fs.mkdirSync(ours);
    fs.writeFileSync(path.join(ours, MARKER), 'xanes');
    fs.writeFileSync(path.join(ours, 'old.npy'), 'stale');
    const d = OutputDir.createPart(study, 'f2');
    expect(fs.existsSync(path.join(d.tmp, 'old.npy'))).toBe(false);
    expect(fs.existsSync(path.join(d.tmp, MARKER))).toBe(true);
  } finally {
    fs.rmSync(study, { recursive: true, force: true });
  }
});

test('a run never removes a same-named temporary folder it did not make (one error, the folder kept)', () => {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-tmp-foreign-'));
  try {
    const out = path.join(parent, 'out');
    const foreign = `${out}.partial-${process.pid}`;
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'keep.txt'), 'user data');
    expect(() => OutputDir.create(out)).toThrow(/is in the way and was not written by xanes/);
    expect(fs.readFileSync(path.join(foreign, 'keep.txt'), 'utf8')).toBe('user data');
    expect(fs.existsSync(out)).toBe(false);
  } finally {
    fs.rmSync(parent, { recursive: true, force: true });
  }
});
