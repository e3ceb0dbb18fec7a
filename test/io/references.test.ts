/**
 * Reference spectra: 2-column text / CSV (eV and keV), XDI (a real file from the XAS Data
 * Library and hand-written edge cases), Athena projects (gzip'd Perl-data and Larch's JSON
 * form, written here in the layout Demeter and Larch write), --ref parsing, placement on a
 * stack's energies, and region references.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import {
  loadReferences, parseRefSpec, readAthenaGroups, readReferenceFile, readSpectrumFile, readXdi, referenceOnGrid,
} from '../../src/io/references.js';
import { MemoryStack } from '../../src/stack/source.js';
import { exampleDataPath } from '../../src/synth/paths.js';
import { expectInputError, tempDir } from './helpers.js';

const dir = tempDir('refs');
const file = (name: string, text: string | Uint8Array) => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
};


/** An Athena project as Demeter writes it: one block per group, then the journal. */
function athenaProject(groups: { key: string; label: string; x: number[]; y: number[]; chi?: boolean }[]): string {
  const q = (v: string | number) => `'${String(v).replace(/'/g, "\\'")}'`;
  const lines = ['# Athena project file -- Demeter version 0.9.26', '# This file created at 2024-01-01T00:00:00', '# Using Demeter 0.9.26 with perl 5.030000 and using Larch X on linux', ''];
  for (const g of groups) {
    const args = ['label', g.label, 'bkg_e0', '8333', 'bkg_pre1', '-150', 'datatype', g.chi ? 'chi' : 'xmu', 'is_xmu', g.chi ? '0' : '1', 'is_chi', g.chi ? '1' : '0', 'fft_kmin', '2'];
    lines.push(`$old_group = ${q(g.key)};`);
    lines.push(`@args = (${args.map(q).join(',')});`);
    lines.push(`@x = (${g.x.map(q).join(',')});`);
    lines.push(`@y = (${g.y.map(q).join(',')});`);
    lines.push(`@i0 = (${g.x.map(() => q(1)).join(',')});`);
    lines.push('[record] # ', '');
  }
  lines.push('@journal = {};', '', '1;', '', '', '# Local Variables:', '# truncate-lines: t', '# End:', '');
  return lines.join('\n');
}

const ex = Array.from({ length: 40 }, (_, i) => 8300 + 2 * i);
const mu1 = ex.map((e) => 0.5 * (1 + Math.tanh((e - 8340) / 3)));
const mu2 = ex.map((e) => 0.5 * (1 + Math.tanh((e - 8344) / 3)) + 0.2 * Math.exp(-(((e - 8350) / 4) ** 2)));

describe('reference files', () => {
  test('2-column text and CSV: eV, keV (converted), header lines, decreasing order', () => {
    const ev = readSpectrumFile(file('a.txt', '# energy mu\n8300 0.1\n8301 0.2\n8302.5 0.4\n'));
    expect([...ev.energy]).toEqual([8300, 8301, 8302.5]);
    expect([...ev.values]).toEqual([0.1, 0.2, 0.4]);
    expect(ev.unit).toBe('eV');
    const kev = readSpectrumFile(file('b.csv', 'energy,mu\n8.300,0.1\n8.301,0.2\n8.302,0.4\n'));
    expect(kev.unit).toBe('keV');
    expect(kev.energy[1]).toBeCloseTo(8301, 9);
    const down = readSpectrumFile(file('c.dat', '702;3\n701;2\n700;1\n'));
    expect([...down.energy]).toEqual([700, 701, 702]);
    expect([...down.values]).toEqual([1, 2, 3]);
    // The bundled pyxas reference (keV) reads as eV.
    const r = readReferenceFile('NiO', exampleDataPath('ni-k/ref_NiO.txt'));
    expect(r.format).toBe('2-column');
    expect(r.energy[0]).toBeGreaterThan(8100);
    expect(r.energy[r.energy.length - 1]).toBeLessThan(9100);
  });

  test('2-column errors name the file and the line', async () => {
    const p1 = file('bad1.txt', '8300 0.1\n8301 abc\n');
    await expectInputError(() => readSpectrumFile(p1), p1, "line 2: 'abc' is not a number");
    const p2 = file('bad2.txt', '8300 0.1\n8300 0.2\n8302 0.3\n');
    await expectInputError(() => readSpectrumFile(p2), p2, 'not strictly increasing');
    const p3 = file('bad3.txt', '8300\n8301\n');
    await expectInputError(() => readSpectrumFile(p3), p3, 'expected 2 columns');
    const p4 = file('empty.txt', '# nothing\n');
    await expectInputError(() => readSpectrumFile(p4), p4, 'no data');
    await expectInputError(() => readSpectrumFile(path.join(dir, 'missing.txt')), path.join(dir, 'missing.txt'), 'no such file');
  });

  test('XDI: ln(i0/itrans) from the raw columns of a real file, a mu column, keV units', () => {
    const p = fileURLToPath(new URL('../fixtures/ni-k/Ni2O3_rt_01.xdi', import.meta.url));
    const { spectrum, detail } = readXdi(p);
    expect(detail).toBe('ln(i0/itrans)');
    // Independently: data lines are 'energy i0 itrans irefer'.
    const rows = fs.readFileSync(p, 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).map((l) => l.trim().split(/\s+/).map(Number));
    expect(spectrum.energy.length).toBe(rows.length);
    for (const k of [0, 100, rows.length - 1]) {
      expect(spectrum.energy[k]).toBe(rows[k][0]);
      expect(spectrum.values[k]).toBeCloseTo(Math.log(rows[k][1] / rows[k][2]), 12);
    }
    const ref = readReferenceFile('Ni2O3', p);
    expect(ref.format).toBe('xdi');

    const withMu = file('mu.xdi', '# XDI/1.0\n# Column.1: energy keV\n# Column.2: mutrans\n# Column.3: i0\n# ///\n#----\n# energy mutrans i0\n7.100 0.10 5\n7.101 0.15 5\n7.102 0.30 5\n');
    const m = readXdi(withMu);
    expect(m.detail).toBe('mutrans');
    expect([...m.spectrum.energy].map((e) => Math.round(e * 1000) / 1000)).toEqual([7100, 7101, 7102]);
    expect([...m.spectrum.values]).toEqual([0.1, 0.15, 0.3]);
    // Column labels from the last header line only.
    const labelsOnly = file('labels.xdi', '# XDI/1.0\n# Element.symbol: Fe\n#----\n# energy i0 itrans\n7100 10 5\n7101 10 4\n');
    expect(readXdi(labelsOnly).spectrum.values[1]).toBeCloseTo(Math.log(10 / 4), 12);
  });

  test('XDI errors: no usable columns, not XDI', async () => {
    const p = file('nomu.xdi', '# XDI/1.0\n# Column.1: energy eV\n# Column.2: ifluor\n#----\n# energy ifluor\n7100 1\n7101 2\n');
    await expectInputError(() => readXdi(p), p, 'no mu column');
    const q = file('plain.xdi', '7100 1\n7101 2\n');
    await expectInputError(() => readXdi(q), q, 'not an XDI file');
  });

  test('Athena projects: gzip\'d Perl data and Larch JSON, groups by label or key', () => {
    const text = athenaProject([
      { key: 'abcde', label: 'NiO powder', x: ex, y: mu1 },
      { key: 'fghij', label: "LiNiO2 'fresh'", x: ex, y: mu2 },
      { key: 'klmno', label: 'NiO chi', x: ex.map((_, i) => i * 0.05), y: mu1, chi: true },
    ]);
    const prj = file('refs.prj', gzipSync(Buffer.from(text)));
    const groups = readAthenaGroups(prj);
    expect(groups.map((g) => [g.label, g.key, g.isChi])).toEqual([['NiO powder', 'abcde', false], ["LiNiO2 'fresh'", 'fghij', false], ['NiO chi', 'klmno', true]]);
    const a = readReferenceFile('A', prj, 'NiO powder');
    expect(a.format).toBe('athena');
    expect([...a.energy]).toEqual(ex);
    expect(a.mu[10]).toBeCloseTo(mu1[10], 12);
    expect(readReferenceFile('B', prj, 'fghij').mu[20]).toBeCloseTo(mu2[20], 12);
    expect(readReferenceFile('B', prj, "linio2 'FRESH'").source).toBe(`${prj}#LiNiO2 'fresh'`);
    // Not gzip'd works too, and so does a single-group project without #group.
    const single = file('one.prj', athenaProject([{ key: 'aaaaa', label: 'only', x: ex, y: mu2 }]));
    expect(readReferenceFile('C', single).mu[5]).toBeCloseTo(mu2[5], 12);
    // Larch's JSON form.
    const json = { _____header: '# Athena project file -- Larch', _____order: ['g1'], g1: { args: { label: 'json group' }, x: ex, y: mu1 } };
    const jp = file('larch.prj', gzipSync(Buffer.from(JSON.stringify(json))));
    expect(readReferenceFile('D', jp, 'json group').mu[3]).toBeCloseTo(mu1[3], 12);
  });

  test('Athena errors: several groups and none chosen, unknown group, chi(k) data, not a project', async () => {
    const prj = file('two.prj', gzipSync(Buffer.from(athenaProject([
      { key: 'abcde', label: 'one', x: ex, y: mu1 },
      { key: 'fghij', label: 'two', x: ex, y: mu2 },
      { key: 'klmno', label: 'kspace', x: ex, y: mu1, chi: true },
    ]))));
    await expectInputError(() => readReferenceFile('A', prj), prj, "holds 3 groups ('one', 'two', 'kspace'): choose one with A=");
    await expectInputError(() => readReferenceFile('A', prj, 'three'), `${prj}#three`, "no such group; the project holds 'one', 'two', 'kspace'");
    await expectInputError(() => readReferenceFile('A', prj, 'kspace'), `${prj}#kspace`, 'chi(k)');
    const bad = file('bad.prj', gzipSync(Buffer.from('hello\n')));
    await expectInputError(() => readReferenceFile('A', bad), bad, 'not an Athena project file');
    const txt = file('x.txt', '8300 1\n8301 2\n');
    await expectInputError(() => readReferenceFile('A', txt, 'g'), txt, 'not an Athena project');
  });
});

describe('references on the stack', () => {
  const E = Float64Array.from({ length: 30 }, (_, i) => 8310 + i);

  test('linear interpolation inside the range; a range not covering the fit window names the reference', async () => {
    const ref = { name: 'NiO', energy: Float64Array.from(ex), mu: Float64Array.from(mu1), source: 'nio.txt' };
    const on = referenceOnGrid(ref, E);
    expect(on[0]).toBeCloseTo(mu1[5], 12); // 8310 = ex[5]
    expect(on[1]).toBeCloseTo((mu1[5] + mu1[6]) / 2, 12);
    const narrow = { ...ref, energy: Float64Array.from(ex.slice(0, 15)), mu: Float64Array.from(mu1.slice(0, 15)) }; // 8300..8328
    const err = await expectInputError(() => referenceOnGrid(narrow, E), 'NiO', 'covers 8300.00..8328.00 eV, which does not include the fit range 8310.00..8339.00 eV');
    expect(err.message).toContain('nio.txt');
    // Within a window it covers, fine: NaN outside the window only.
    const w = referenceOnGrid(narrow, E, { i0: 0, i1: 19 });
    expect(Number.isFinite(w[18])).toBe(true);
    expect(w[19]).toBeNaN();
  });

  test('--ref parsing and loading: files, Athena groups, regions of the stack', async () => {
    const prj = file('load.prj', gzipSync(Buffer.from(athenaProject([{ key: 'k1', label: 'A', x: ex, y: mu1 }, { key: 'k2', label: 'B', x: ex, y: mu2 }]))));
    const txt = file('nio.txt', ex.map((e, i) => `${e} ${mu1[i]}`).join('\n'));
    expect(parseRefSpec(`x=${txt}`)).toEqual({ name: 'x', kind: 'file', path: txt });
    expect(parseRefSpec(`y=${prj}#B`)).toEqual({ name: 'y', kind: 'file', path: prj, group: 'B' });
    expect(parseRefSpec('z=rect:0,0,2,2')).toEqual({ name: 'z', kind: 'region', spec: 'rect:0,0,2,2' });
    await expectInputError(() => parseRefSpec('novalue'), '--ref', 'expected NAME=FILE');
    await expectInputError(() => parseRefSpec('bad name=x.txt'), '--ref bad name', 'letters, digits');

    const W = 4, H = 3;
    const cube = new Float32Array(E.length * H * W);
    for (let e = 0; e < E.length; e++) for (let i = 0; i < H * W; i++) cube[e * H * W + i] = e + (i % W); // column index + energy index
    const stack = new MemoryStack(cube, E.length, H, W);
    const refs = await loadReferences(['t=' + txt, `p=${prj}#B`, 'r=rect:1,0,3,3'].map(parseRefSpec), stack, E, undefined, { kind: 'none' });
    expect(refs.map((r) => [r.name, r.format])).toEqual([['t', '2-column'], ['p', 'athena'], ['r', 'region']]);
    expect(refs[0].mu[3]).toBeCloseTo((mu1[6] + mu1[7]) / 2, 12); // 8313 eV, between ex[6] and ex[7]
    expect(refs[1].mu[4]).toBeCloseTo(mu2[7], 12); // 8314 eV = ex[7]
    expect(refs[2].mu[7]).toBeCloseTo(7 + 1.5, 12); // mean of columns 1 and 2
    expect(refs[2].region).toEqual({ spec: 'rect:1,0,3,3', pixels: 6 });
    await expectInputError(() => loadReferences([parseRefSpec('r=rect:1,0,5,3')], stack, E), '--ref r', 'outside the image');
    const far = file('far.txt', '7000 1\n7100 2\n');
    await expectInputError(() => loadReferences([parseRefSpec(`far=${far}`)], stack, E), 'far', 'does not include the fit range');
  });
});

describe('size caps on whole-file inputs', () => {
  test('a gzip bomb posing as an Athena project is one clear error, inflated no further than the cap', async () => {
    // 80 gzip members of 1 MiB of zeros each: a 80 KiB file that inflates to 80 MiB.
    const member = gzipSync(Buffer.alloc(2 ** 20));
    const bomb = file('bomb.prj', Buffer.concat(Array.from({ length: 80 }, () => member)));
    expect(fs.statSync(bomb).size).toBeLessThan(200 * 1024);
    await expectInputError(() => readAthenaGroups(bomb), bomb, 'gzip data inflates to more than 64 MiB: too large for an Athena project (a damaged file or a decompression bomb)');
    await expectInputError(() => readReferenceFile('A', bomb), bomb, 'inflates to more than 64 MiB');
  });

  test('a damaged gzip stream is named as such', async () => {
    const gz = gzipSync(Buffer.from(athenaProject([{ key: 'k', label: 'A', x: [1, 2], y: [3, 4] }])));
    const cut = file('cut.prj', gz.subarray(0, gz.length - 20));
    await expectInputError(() => readAthenaGroups(cut), cut, 'damaged gzip data');
  });

  test('a spectrum file larger than the cap is refused before it is read', async () => {
    const big = path.join(dir, 'big.txt');
    const fd = fs.openSync(big, 'w');
    fs.ftruncateSync(fd, 65 * 2 ** 20); // sparse: no disk used
    fs.closeSync(fd);
    await expectInputError(() => readSpectrumFile(big), big, '65 MiB is too large for a spectrum or reference file (at most 64 MiB)');
  });
});
