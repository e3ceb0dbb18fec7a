/**
 * The malformed-input suite: inputs generated broken in every way we know (.npy, TIFF
 * compressed, tiled, bilevel, RGB, truncated, looping, bombs; STXM .hdr/.xim; energies;
 * flat/dark; options; recipes; output folders), each run through the `xanes` entry point
 * (exit code and stderr as the command returns and writes them). Every case must give:
 * exit code 2, exactly one stderr line that names the file or option at fault, no output
 * folder, no partial folder, and every file that existed before byte-identical afterwards.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { buildTiff, compress, type TiffPageSpec } from '../helpers/tiff-builder.js';
import { makeNiTxmStack } from '../../src/synth/ni-txm.js';
import { writeNpy } from '../../src/io/npy.js';
import { MARKER } from '../../src/io/outdir.js';

const W = 8, H = 6;
const world = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-malformed-'));
afterAll(() => fs.rmSync(world, { recursive: true, force: true }));
const P = (...p: string[]) => path.join(world, ...p);

const s = makeNiTxmStack({ width: W, height: H, seed: 11, noise: true });
const nE = s.energies.length;
const absorbance = new Float32Array(s.sample.length);
for (let i = 0; i < absorbance.length; i++) absorbance[i] = -Math.log((s.sample[i] - s.dark[i]) / (s.flat[i] - s.dark[i]));

/** The good inputs every case can lean on. */
const good = {
  stack: P('good', 'stack.npy'),
  sample: P('good', 'sample.npy'),
  flat: P('good', 'flat.npy'),
  dark: P('good', 'dark.npy'),
  energies: P('good', 'energies.txt'),
  ref: P('good', 'ref.txt'),
};

beforeAll(() => {
  fs.mkdirSync(P('good'));
  writeNpy(good.stack, absorbance, [nE, H, W]);
  writeNpy(good.sample, s.sample, [nE, H, W]);
  writeNpy(good.flat, s.flat, [nE, H, W]);
  writeNpy(good.dark, s.dark, [nE, H, W]);
  fs.writeFileSync(good.energies, Array.from(s.energies).join('\n') + '\n');
  fs.writeFileSync(good.ref, Array.from(s.energies, (e, i) => `${e} ${i / nE}`).join('\n') + '\n');
});

// ------------------------------------------------------------------ builders of bad files

const npyHeader = (dict: string, version = 1) => {
  let text = dict;
  const pre = version === 1 ? 10 : 12;
  while ((pre + text.length + 1) % 64 !== 0) text += ' ';
  text += '\n';
  const head = Buffer.alloc(pre);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(head);
  if (version === 1) head.writeUInt16LE(text.length, 8);
  else head.writeUInt32LE(text.length, 8);
  return Buffer.concat([head, Buffer.from(text, 'latin1')]);
};
const f32 = (n: number) => Buffer.from(new Float32Array(n).fill(1).buffer);
const npy = (dict: string, data: Buffer) => Buffer.concat([npyHeader(dict), data]);
const dict = (descr: string, shape: string, fortran = 'False') => `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;

/** A TIFF of nE pages of W x H with the given per-page settings. */
const tiff = (over: Partial<TiffPageSpec> = {}, pages = nE, extra: { loopTo?: number } = {}) =>
  buildTiff({ ...extra, pages: Array.from({ length: pages }, (_, e) => ({ width: W, height: H, values: Array.from(s.sample.subarray(e * W * H, (e + 1) * W * H), Math.round), sample: 'uint16' as const, ...over })) });

/** A minimal STXM scan definition: nE energies, W x H positions. */
function hdr(o: { energies?: number[]; w?: number; h?: number; drop?: 'StackAxis' | 'ScanDefinition' | 'QAxis'; unclosed?: boolean; countOff?: number } = {}): string {
  const e = o.energies ?? Array.from({ length: 5 }, (_, i) => 700 + i);
  const w = o.w ?? W, h = o.h ?? H;
  const pts = (n: number, x0: number) => `Points = (${n + (o.countOff ?? 0)}, ${Array.from({ length: n }, (_, i) => (x0 + 0.1 * i).toFixed(3)).join(', ')});`;
  const scan = o.drop === 'ScanDefinition' ? 'ScanDef' : 'ScanDefinition';
  const stack = o.drop === 'StackAxis' ? '' : `StackAxis = { Name = "Energy"; Unit = "eV"; Points = (${e.length}, ${e.join(', ')}); };`;
  const q = o.drop === 'QAxis' ? '' : `QAxis = { Name = "Sample Y"; Unit = "um"; ${pts(h, 20)} };`;
  return `${scan} = { Label = "x.hdr"; Type = "NEXAFS Image Scan"; Regions = (1, { PAxis = { Name = "Sample X"; Unit = "um"; ${pts(w, 10)} }; ${q} }); ${stack} Channels = (1, { Name = "Counter0"; }); ${o.unclosed ? '' : '};'}\n`;
}
const xim = (w = W, h = H, cell = (x: number, y: number) => String(1000 + x + y)) =>
  Array.from({ length: h }, (_, y) => Array.from({ length: w }, (_, x) => cell(x, y)).join('\t')).join('\n') + '\n';

/** Writes an STXM stack (hdr + .xim per energy) into the case folder; returns the .hdr path. */
function stxm(dir: string, o: Parameters<typeof hdr>[0] = {}, ximOf: (i: number) => string | null = () => xim()): string {
  const p = path.join(dir, 'scan.hdr');
  fs.writeFileSync(p, hdr(o));
  const n = (o.energies ?? [0, 1, 2, 3, 4]).length;
  for (let i = 0; i < n; i++) {
    const t = ximOf(i);
    if (t !== null) fs.writeFileSync(path.join(dir, `scan_a${String(i).padStart(3, '0')}.xim`), t);
  }
  return p;
}

// ------------------------------------------------------------------ the cases

interface Case {
  name: string;
  /** Creates the case's files in `dir` and returns the command line (without --out). */
  setup: (dir: string) => string[];
  /** What the one error line must name: a path (relative to the case folder, or absolute) or an option. */
  culprit: (dir: string) => string;
  /** --out given by the case itself (output-folder cases). */
  ownOut?: (dir: string) => string;
}

const file = (dir: string, name: string, data: string | Uint8Array) => {
  const p = path.join(dir, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
  return p;
};
const edgeOn = (stack: string, ...more: string[]) => ['edge', stack, '--energies', good.energies, '--backend', 'cpu', ...more];
const at = (name: string) => (dir: string) => path.join(dir, name);
const opt = (o: string) => () => o;

const cases: Case[] = [];
const add = (name: string, setup: Case['setup'], culprit: Case['culprit'], ownOut?: Case['ownOut']) => cases.push({ name, setup, culprit, ownOut });

// .npy
const npyCases: [string, Buffer][] = [
  ['npy: not numpy at all', Buffer.from('hello, this is text')],
  ['npy: empty file', Buffer.alloc(0)],
  ['npy: magic only', Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59])],
  ['npy: version 9', (() => { const b = npy(dict('<f4', `(${nE}, ${H}, ${W})`), f32(nE * H * W)); b[6] = 9; return b; })()],
  ['npy: header length past the end', (() => { const b = npy(dict('<f4', `(${nE}, ${H}, ${W})`), f32(4)); b.writeUInt16LE(60000, 8); return b; })()],
  ['npy: truncated data', npy(dict('<f4', `(${nE}, ${H}, ${W})`), f32(nE * H * W - 7))],
  ['npy: extra bytes after the data', npy(dict('<f4', `(${nE}, ${H}, ${W})`), f32(nE * H * W + 3))],
  ['npy: complex dtype', npy(dict('<c8', `(${nE}, ${H}, ${W})`), f32(2 * nE * H * W))],
  ['npy: big-endian float', npy(dict('>f4', `(${nE}, ${H}, ${W})`), f32(nE * H * W))],
  ['npy: object dtype', npy(dict('|O', `(${nE}, ${H}, ${W})`), f32(nE * H * W))],
  ['npy: structured dtype', npy(`{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (${nE}, ${H}, ${W}), }`, f32(nE * H * W))],
  ['npy: Fortran order', npy(dict('<f4', `(${nE}, ${H}, ${W})`, 'True'), f32(nE * H * W))],
  ['npy: 2-D array', npy(dict('<f4', `(${H}, ${W})`), f32(H * W))],
  ['npy: 4-D array', npy(dict('<f4', `(1, ${nE}, ${H}, ${W})`), f32(nE * H * W))],
  ['npy: negative shape', npy(dict('<f4', `(${nE}, -${H}, ${W})`), f32(4))],
  ['npy: float shape', npy(dict('<f4', `(${nE}.0, ${H}, ${W})`), f32(nE * H * W))],
  ['npy: header not a dict', npy(`['<f4', False, (${nE}, ${H}, ${W})]`, f32(nE * H * W))],
  ['npy: unclosed header dict', npy(`{'descr': '<f4', 'fortran_order': False, 'shape': (${nE}, ${H}, ${W})`, f32(nE * H * W))],
  ['npy: an extra header key', npy(`{'descr': '<f4', 'fortran_order': False, 'shape': (${nE}, ${H}, ${W}), 'x': 1}`, f32(nE * H * W))],
  ['npy: duplicate descr, the last one bad', npy(`{'descr': '<f4', 'fortran_order': False, 'shape': (${nE}, ${H}, ${W}), 'descr': '<c16'}`, f32(nE * H * W))],
  ['npy: empty stack (0 energies)', npy(dict('<f4', `(0, ${H}, ${W})`), Buffer.alloc(0))],
  ['npy: all NaN', npy(dict('<f4', `(${nE}, ${H}, ${W})`), Buffer.from(new Float32Array(nE * H * W).fill(NaN).buffer))],
  ['npy: all zero', npy(dict('<f4', `(${nE}, ${H}, ${W})`), Buffer.alloc(4 * nE * H * W))],
];
for (const [name, bytes] of npyCases) add(name, (d) => edgeOn(file(d, 'stack.npy', bytes)), at('stack.npy'));
add('npy: a directory named stack.npy', (d) => (fs.mkdirSync(path.join(d, 'dir.npy')), edgeOn(path.join(d, 'dir.npy'))), at('dir.npy'));
add('npy: missing file', (d) => edgeOn(path.join(d, 'nope.npy')), at('nope.npy'));
add('stack: unknown extension', (d) => edgeOn(file(d, 'stack.xyz', 'x')), at('stack.xyz'));

// TIFF
const tiffCases: [string, () => Uint8Array][] = [
  ['tiff: not a TIFF', () => Buffer.from('II*\0 this is not a TIFF at all')],
  ['tiff: 3 bytes', () => Buffer.from('II*')],
  ['tiff: wrong version', () => { const b = Buffer.from(tiff()); b.writeUInt16LE(41, 2); return b; }],
  ['tiff: bilevel (1 bit)', () => tiff({ tags: { 258: [1] }, blocks: [new Uint8Array(H)] })],
  ['tiff: RGB', () => tiff({ tags: { 262: [2], 277: [3] }, blocks: [new Uint8Array(3 * W * H * 2)] })],
  ['tiff: palette colour', () => tiff({ tags: { 262: [3] } })],
  ['tiff: CMYK', () => tiff({ tags: { 262: [5], 277: [4] }, blocks: [new Uint8Array(4 * W * H * 2)] })],
  ['tiff: 2 samples per pixel', () => tiff({ tags: { 277: [2] }, blocks: [new Uint8Array(2 * W * H * 2)] })],
  ['tiff: float16 samples', () => tiff({ tags: { 339: [3] } })],
  ['tiff: 64-bit integers', () => tiff({ tags: { 258: [64] }, blocks: [new Uint8Array(8 * W * H)] })],
  ['tiff: 12-bit samples', () => tiff({ tags: { 258: [12] } })],
  ['tiff: JPEG compressed', () => tiff({ tags: { 259: [7] } })],
  ['tiff: Zstandard compressed', () => tiff({ tags: { 259: [50000] } })],
  ['tiff: unknown predictor', () => tiff({ tags: { 317: [7] } })],
  ['tiff: strip past the end (truncated file)', () => { const b = tiff(); return b.subarray(0, Math.floor(b.length * 0.95)); }],
  ['tiff: cut inside the directories', () => { const b = tiff(); return b.subarray(0, b.length - 20); }],
  ['tiff: directory loop', () => tiff({}, nE, { loopTo: 3 })],
  ['tiff: a page pointing at itself', () => tiff({}, 2, { loopTo: 1 })],
  ['tiff: first directory outside the file', () => { const b = Buffer.from(tiff()); b.writeUInt32LE(b.length + 100, 4); return b; }],
  ['tiff: pages of different sizes', () => buildTiff({ pages: [{ width: W, height: H }, { width: W + 1, height: H }] })],
  ['tiff: pages of different formats', () => buildTiff({ pages: [{ width: W, height: H, sample: 'uint16' }, { width: W, height: H, sample: 'float32' }] })],
  ['tiff: zero width', () => tiff({ tags: { 256: [0] } })],
  ['tiff: strip counts missing', () => tiff({ tags: { 279: [] } })],
  ['tiff: fewer strip offsets than strips', () => tiff({ rowsPerStrip: 2, tags: { 278: [1] } })],
  ['tiff: uncompressed strip too short', () => tiff({ blocks: [new Uint8Array(10)] })],
  ['tiff: corrupt Deflate data', () => tiff({ compression: 8, blocks: [Uint8Array.from({ length: 40 }, (_, i) => (i * 37) & 255)] })],
  ['tiff: truncated Deflate strip', () => tiff({ compression: 8, blocks: [new Uint8Array(deflateSync(new Uint8Array(W * H * 2).fill(7))).subarray(0, 6)] })],
  ['tiff: damaged LZW codes', () => tiff({ compression: 5, blocks: [Uint8Array.of(0x80, 0x4b, 0x00, 0x00)] })],
  ['tiff: truncated PackBits strip', () => tiff({ compression: 32773, blocks: [compress(new Uint8Array(W * H * 2).fill(3), 32773).subarray(0, 2)] })],
  ['tiff: tiled, truncated tiles', () => tiff({ tile: { width: 16, height: 16 }, compression: 8, blocks: [new Uint8Array(deflateSync(new Uint8Array(16 * 16 * 2))).subarray(0, 5)] })],
  ['tiff: decompression bomb (20000 x 20000 pages)', () => buildTiff({ pages: Array.from({ length: nE }, () => ({ width: 20000, height: 20000, sample: 'uint8' as const, compression: 8, blocks: [new Uint8Array(deflateSync(new Uint8Array(20000 * 4)))] })) })],
  ['tiff: ImageJ stack behind one directory', () => buildTiff({ pages: [{ width: W, height: H, tags: { 270: [...Buffer.from('ImageJ=1.54f\nimages=50\n\0')] } }] })],
];
for (const [name, bytes] of tiffCases) add(name, (d) => edgeOn(file(d, 'stack.tif', bytes())), at('stack.tif'));

// STXM .hdr / .xim
add('stxm: no ScanDefinition', (d) => ['edge', stxm(d, { drop: 'ScanDefinition' }), '--backend', 'cpu'], at('scan.hdr'));
add('stxm: no energy axis', (d) => ['edge', stxm(d, { drop: 'StackAxis' }), '--backend', 'cpu'], at('scan.hdr'));
add('stxm: no QAxis', (d) => ['edge', stxm(d, { drop: 'QAxis' }), '--backend', 'cpu'], at('scan.hdr'));
add('stxm: energies not increasing', (d) => ['edge', stxm(d, { energies: [700, 701, 701, 703, 704] }), '--backend', 'cpu'], at('scan.hdr'));
add('stxm: Points count wrong', (d) => ['edge', stxm(d, { countOff: 2 }), '--backend', 'cpu'], at('scan.hdr'));
add('stxm: an image missing', (d) => ['edge', stxm(d, {}, (i) => (i === 3 ? null : xim())), '--backend', 'cpu'], at('scan_a003.xim'));
add('stxm: a ragged image', (d) => ['edge', stxm(d, {}, (i) => (i === 2 ? xim(W - 1) : xim())), '--backend', 'cpu'], at('scan_a002.xim'));
add('stxm: too few rows', (d) => ['edge', stxm(d, {}, (i) => (i === 1 ? xim(W, H - 2) : xim())), '--backend', 'cpu'], at('scan_a001.xim'));
add('stxm: too many rows', (d) => ['edge', stxm(d, {}, (i) => (i === 4 ? xim(W, H + 1) : xim())), '--backend', 'cpu'], at('scan_a004.xim'));
add('stxm: a word among the numbers', (d) => ['edge', stxm(d, {}, (i) => (i === 0 ? xim(W, H, (x, y) => (x === 3 && y === 2 ? 'oops' : '5')) : xim())), '--backend', 'cpu'], at('scan_a000.xim'));
add('stxm: an image far larger than its axes say', (d) => ['edge', stxm(d, {}, (i) => (i === 0 ? xim() + ' '.repeat(2 ** 20 + 10) : xim())), '--backend', 'cpu'], at('scan_a000.xim'));
add('stxm: binary junk as the .hdr', (d) => ['edge', file(d, 'scan.hdr', crypto.randomBytes(300)), '--backend', 'cpu'], at('scan.hdr'));

// energies
const energiesCases: [string, string | Buffer][] = [
  ['energies: empty file', ''],
  ['energies: only comments', '# energies\n# none\n'],
  ['energies: a word', Array.from(s.energies).join('\n').replace(/\n[^\n]*\n/, '\neight\n')],
  ['energies: not increasing', Array.from(s.energies).reverse().join('\n')],
  ['energies: a repeated energy', Array.from(s.energies, (e, i) => (i === 5 ? s.energies[4] : e)).join('\n')],
  ['energies: NaN', Array.from(s.energies, (e, i) => (i === 5 ? 'nan' : e)).join('\n')],
  ['energies: one too few', Array.from(s.energies).slice(1).join('\n')],
  ['energies: one too many', [...Array.from(s.energies), 9999].join('\n')],
  ['energies: in keV without --energy-unit', Array.from(s.energies, (e) => (e / 1000).toFixed(5)).join('\n')],
  ['energies: binary file', Buffer.from([0, 1, 2, 3, 0, 0, 9])],
];
for (const [name, text] of energiesCases) add(name, (d) => ['edge', good.stack, '--energies', file(d, 'e.txt', text), '--backend', 'cpu'], at('e.txt'));
add('energies: a 2-D .npy', (d) => { const p = path.join(d, 'e.npy'); writeNpy(p, new Float64Array(nE * 2), [nE, 2]); return ['edge', good.stack, '--energies', p, '--backend', 'cpu']; }, at('e.npy'));
add('energies: missing file', (d) => ['edge', good.stack, '--energies', path.join(d, 'missing.txt'), '--backend', 'cpu'], at('missing.txt'));
add('energies: not given for a .npy stack', () => ['edge', good.stack, '--backend', 'cpu'], opt('--energies'));

// flat / dark
add('flat: another shape', (d) => { const p = path.join(d, 'flat.npy'); writeNpy(p, new Float32Array(nE * H * (W + 1)).fill(1), [nE, H, W + 1]); return edgeOn(good.sample, '--flat', p); }, at('flat.npy'));
add('flat: missing file', (d) => edgeOn(good.sample, '--flat', path.join(d, 'nope.npy')), at('nope.npy'));
add('flat: --dark without --flat', () => edgeOn(good.sample, '--dark', good.dark), opt('--dark'));
add('flat: flat and dark swapped', () => edgeOn(good.sample, '--flat', good.dark, '--dark', good.flat), () => good.flat);
add('flat: dark brighter than the flat', (d) => { const p = path.join(d, 'dark.npy'); writeNpy(p, s.flat.map((v) => 2 * v), [nE, H, W]); return edgeOn(good.sample, '--flat', good.flat, '--dark', p); }, at('dark.npy'));
add('flat: the flat is the sample', () => edgeOn(good.sample, '--flat', good.sample), () => good.sample);
add('flat: the dark is the sample', () => edgeOn(good.sample, '--flat', good.flat, '--dark', good.sample), () => good.sample);
add('flat: all-zero flat', (d) => { const p = path.join(d, 'flat0.npy'); writeNpy(p, new Float32Array(nE * H * W), [nE, H, W]); return edgeOn(good.sample, '--flat', p); }, at('flat0.npy'));

// options
const optionCases: [string, string[], string][] = [
  ['option: --memory negative', ['--memory', '-5'], '--memory'],
  ['option: --memory text', ['--memory', 'abc'], '--memory'],
  ['option: --memory beyond the machine', ['--memory', '1e9'], '--memory'],
  ['option: --memory too small for the run', ['--memory', '1'], '--memory'],
  ['option: --backend unknown', ['--backend', 'gpu'], '--backend'],
  ['option: --threads zero', ['--threads', '0'], '--threads'],
  ['option: --energy-unit MeV', ['--energy-unit', 'MeV'], '--energy-unit'],
  ['option: --e0 outside the scan', ['--e0', '100'], '--e0'],
  ['option: --e0 text', ['--e0', 'edge'], '--e0'],
  ['option: unknown option', ['--memroy', '256'], '--memroy'],
  ['option: --mask-sigma negative', ['--mask-sigma', '-1'], '--mask-sigma'],
  ['option: --nnorm 7', ['--nnorm', '7'], '--nnorm'],
];
for (const [name, extra, o] of optionCases) add(name, () => [...edgeOn(good.stack), ...extra], opt(o));
add('option: cluster --k 0', () => ['cluster', good.stack, '--energies', good.energies, '--backend', 'cpu', '--k', '0'], opt('--k'));
add('option: lcf --ref without NAME=', () => ['lcf', good.stack, '--energies', good.energies, '--backend', 'cpu', '--ref', good.ref], opt('--ref'));
add('option: fit --model unknown', () => ['fit', good.stack, '--energies', good.energies, '--backend', 'cpu', '--model', 'nonsense'], opt('--model'));
add('option: synthetic image too large for one map', () => ['edge', 'synthetic:100000x100000', '--backend', 'cpu'], opt('synthetic:100000x100000'));

// recipes
const recipeCases: [string, Record<string, unknown>, string][] = [
  ['recipe: unknown key', { memroy: 256 }, 'memroy'],
  ['recipe: unknown key in a section', { edge: { mask_sigma: 5 } }, 'mask_sigma'],
  ['recipe: steps as one text', { steps: 'edge' }, 'steps'],
  ['recipe: threads negative', { threads: -3 }, 'threads'],
  ['recipe: energies a number', { energies: 8333 }, 'energies'],
  ['recipe: unbounded glob', { stacks: ['/**/*.xyz'] }, '**'],
  ['recipe: a stack that does not exist', { stacks: ['nope.npy'] }, 'nope.npy'],
  ['recipe: maxIter as text', { steps: ['fit'], fit: { model: 'erf-lorentz', maxIter: '50' } }, 'maxIter'],
];
for (const [name, over, culprit] of recipeCases) {
  add(name, (d) => {
    fs.copyFileSync(good.stack, path.join(d, 'fov.npy'));
    fs.copyFileSync(good.energies, path.join(d, 'energies.txt'));
    const r = { stacks: ['fov.npy'], energies: 'energies.txt', steps: ['edge'], backend: 'cpu', threads: 1, out: 'out-recipe', ...over };
    return ['run', file(d, 'recipe.json', JSON.stringify(r))];
  }, opt(culprit), at('out-recipe'));
}
add('recipe: not JSON', (d) => ['run', file(d, 'recipe.json', '{"stacks": ')], at('recipe.json'));
add('recipe: out at ../victim not made by xanes', (d) => {
  file(d, 'victim/notes.txt', 'precious');
  fs.copyFileSync(good.stack, file(d, 'r/fov.npy', ''));
  fs.copyFileSync(good.energies, file(d, 'r/energies.txt', ''));
  return ['run', file(d, 'r/recipe.json', JSON.stringify({ stacks: ['fov.npy'], energies: 'energies.txt', steps: ['edge'], backend: 'cpu', out: '../victim' }))];
}, at('r/../victim'), at('victim-never'));

// output folders
add('out: a folder of unrelated files', (d) => { file(d, 'results/summary.json', '{}'); file(d, 'results/thesis.tex', 'chapter 1'); return edgeOn(good.stack); }, at('results'), at('results'));
add('out: an existing file', (d) => { file(d, 'afile', 'data'); return edgeOn(good.stack); }, at('afile'), at('afile'));
add('out: under a file', (d) => { file(d, 'afile', 'data'); return edgeOn(good.stack); }, at('afile/sub'), at('afile/sub'));
add('out: the stack itself', (d) => { fs.copyFileSync(good.stack, file(d, 'in/stack.npy', '')); return edgeOn(path.join(d, 'in/stack.npy')); }, at('in/stack.npy'), at('in/stack.npy'));
add('out: the folder holding the stack', (d) => { fs.copyFileSync(good.stack, file(d, 'in/stack.npy', '')); file(d, `in/${MARKER}`, '{}'); return edgeOn(path.join(d, 'in/stack.npy')); }, at('in'), at('in'));
add('out: inside the --from folder', (d) => { fs.mkdirSync(path.join(d, 'fit')); file(d, `fit/${MARKER}`, '{}'); file(d, 'fit/b2.npy', Buffer.alloc(0)); return ['cluster', '--from', path.join(d, 'fit'), '--features', 'b2', '--k', '2', '--backend', 'cpu']; }, at('fit'), at('fit/clusters'));

// ------------------------------------------------------------------ the checks

/** Every file under `root`: path -> sha256 (folders as entries too). */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        out.set(p + '/', 'dir');
        walk(p);
      } else out.set(p, crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
    }
  };
  walk(root);
  return out;
}

describe('malformed inputs: exit 2, one line naming the culprit, nothing written, nothing changed', () => {
  test('there are at least 80 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(80);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  cases.forEach((c, i) => {
    test(c.name, async () => {
      const dir = P(`case-${String(i).padStart(3, '0')}`);
      fs.mkdirSync(dir);
      const args = c.setup(dir);
      const out = c.ownOut ? c.ownOut(dir) : path.join(dir, 'out');
      const before = snapshot(world);
      const ownOutInArgs = args.includes('run');
      const r = await runCli(ownOutInArgs ? args : [...args, '--out', out]);
      {
        expect(r.code, r.err).toBe(2);
        const lines = r.err.split('\n').filter((l) => l.trim() !== '');
        expect(lines, r.err).toHaveLength(1);
        expect(lines[0]).toMatch(/^xanes: error: /);
        const culprit = c.culprit(dir);
        const named = [culprit, path.normalize(culprit), path.relative(dir, culprit)].filter((x) => x !== '');
        expect(named.some((n) => lines[0].includes(n)), `${lines[0]} should name ${culprit}`).toBe(true);
        // Nothing written: no output folder (unless it was there before), no partial folder anywhere.
        if (!before.has(out) && !before.has(out + '/')) expect(fs.existsSync(out), `${out} was created`).toBe(false);
        const after = snapshot(world);
        expect([...after.keys()].filter((p) => /\.(partial|old)-\d+\/?$/.test(p))).toEqual([]);
        for (const [p, hash] of before) expect(after.get(p), `${p} changed`).toBe(hash);
        expect([...after.keys()].filter((p) => !before.has(p))).toEqual([]);
      }
    });
  });
});
