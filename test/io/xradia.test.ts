/**
 * Xradia .txrm and .xrm series, against files written by the tests' own OLE writer
 * (test/helpers/ole-writer.ts), which python3-olefile (an independent OLE implementation)
 * must read back stream for stream. The engine must read them identically through SheetJS
 * cfb and through its own sector reader, and give maps byte-identical to TIFF stacks of the
 * same images (with the reference image as a one-page flat).
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import CFB from 'cfb';
import { runCli } from '../helpers/cli.js';
import { tempDir } from './helpers.js';
import { writeOle, xradiaStreams } from '../helpers/ole-writer.js';
import { openOle } from '../../src/io/ole.js';
import { openStack } from '../../src/stack/source.js';
import { writeTiffStack } from '../../src/io/tiff.js';

const PYTHON = '/usr/bin/python3';
const dir = tempDir('xradia');
const f = (n: string) => path.join(dir, n);
// Images of 5120 bytes (uint16): above the 4096-byte mini-stream cutoff, so regular sectors;
// 105 energies: images in ImageData1 and ImageData2.
const W = 40, H = 64;
const energies: number[] = [];
for (let e = 8233; e < 8313; e += 10) energies.push(e);
for (let e = 8313; e < 8363; e += 0.5) energies.push(e);
for (let e = 8363; e <= 8433; e += 10) energies.push(e);
const nE = energies.length;
let images: Uint16Array[];
let reference: Float32Array;
let txrmStreams: { path: string; data: Uint8Array }[];

/** mulberry32 */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

beforeAll(() => {
  const r = rng(7);
  reference = Float32Array.from({ length: W * H }, () => 20000 + Math.round(400 * r()) / 4);
  images = energies.map((e) => {
    const img = new Uint16Array(W * H);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const e0 = 8340 + 4 * (x / (W - 1) - 0.5);
        const step = 0.3 + 0.7 * (y / (H - 1));
        const mu = 0.2 + step * (0.5 + Math.atan((e - e0) / 2) / Math.PI);
        img[y * W + x] = Math.round(reference[y * W + x] * Math.exp(-mu) + 30 * (r() - 0.5));
      }
    }
    return img;
  });
  txrmStreams = xradiaStreams({ width: W, height: H, images, energies, pixelSizeUm: 0.0325, reference });
  fs.writeFileSync(f('scan.txrm'), writeOle(txrmStreams));
  fs.mkdirSync(f('series'));
  images.forEach((img, k) => {
    // Written out of energy order on purpose: the series is sorted by ImageInfo/Energy.
    const name = `tile_${String((k * 37) % nE).padStart(3, '0')}.xrm`;
    fs.writeFileSync(path.join(f('series'), name), writeOle(xradiaStreams({ width: W, height: H, images: [img], energies: [energies[k]], pixelSizeUm: 0.0325 })));
  });
  // The same data as TIFF (float32 pages hold uint16 values exactly) and text energies
  // (the float32 energies of the file, printed so that they read back exactly).
  const cube = new Float32Array(nE * W * H);
  images.forEach((img, k) => cube.set(img, k * W * H));
  writeTiffStack(f('stack.tif'), cube, W, H, nE);
  writeTiffStack(f('reference.tif'), reference, W, H, 1);
  fs.writeFileSync(f('energies.txt'), energies.map((e) => String(Math.fround(e))).join('\n') + '\n');
  // Bad files.
  fs.writeFileSync(f('noimage.xrm'), writeOle(xradiaStreams({ width: W, height: H, images: [images[0]], energies: [8300], omitImages: true })));
  const whole = fs.readFileSync(f('scan.txrm'));
  fs.writeFileSync(f('truncated.txrm'), whole.subarray(0, Math.floor(whole.length * 0.6)));
});

describe('the test OLE writer against python3-olefile', () => {
  test('a file over 7 MB (FAT listed in DIFAT sectors): olefile and the sector reader read every stream', () => {
    const big = Array.from({ length: 105 }, (_, k) => Uint16Array.from({ length: 256 * 160 }, (_, i) => (i * 7 + k * 13) % 65536));
    const streams = xradiaStreams({ width: 256, height: 160, images: big, energies: big.map((_, k) => 8300 + k) });
    const bytes = writeOle(streams);
    expect(bytes.length).toBeGreaterThan(109 * 128 * 512); // more sectors than 109 FAT sectors map
    fs.writeFileSync(f('big.txrm'), bytes);
    const py = `
import sys, json, hashlib, olefile
ole = olefile.OleFileIO(sys.argv[1])
print(json.dumps({'/'.join(p): hashlib.sha256(ole.openstream(p).read()).hexdigest() for p in ole.listdir(streams=True, storages=False)}))`;
    const got = JSON.parse(execFileSync(PYTHON, ['-W', 'error', '-c', py, f('big.txrm')], { encoding: 'utf8' }));
    expect(got).toEqual(Object.fromEntries(streams.map((s) => [s.path, crypto.createHash('sha256').update(s.data).digest('hex')])));
    const o = openOle(f('big.txrm'), { whole: false });
    try {
      for (const s of streams) expect(Buffer.compare(Buffer.from(o.read(s.path, 0, s.data.length)), Buffer.from(s.data)), s.path).toBe(0);
    } finally {
      o.close();
    }
  });

  test('olefile lists every stream with the bytes written', () => {
    const py = `
import sys, json, hashlib, olefile
ole = olefile.OleFileIO(sys.argv[1])
out = {'/'.join(p): hashlib.sha256(ole.openstream(p).read()).hexdigest() for p in ole.listdir(streams=True, storages=False)}
print(json.dumps(out))`;
    const got = JSON.parse(execFileSync(PYTHON, ['-W', 'error', '-c', py, f('scan.txrm')], { encoding: 'utf8' }));
    const want = Object.fromEntries(txrmStreams.map((s) => [s.path, crypto.createHash('sha256').update(s.data).digest('hex')]));
    expect(got).toEqual(want);
  });
});

describe('Xradia files', () => {
  test('cfb (whole file) and the sector reader give the same bytes for every stream; cfb agrees with the writer', () => {
    const a = openOle(f('scan.txrm'), { whole: true });
    const b = openOle(f('scan.txrm'), { whole: false });
    try {
      expect(b.streams().sort()).toEqual(a.streams().sort());
      expect(a.streams().length).toBe(txrmStreams.length);
      for (const s of txrmStreams) {
        expect(Buffer.compare(Buffer.from(a.read(s.path, 0, s.data.length)), Buffer.from(s.data)), s.path).toBe(0);
        expect(Buffer.compare(Buffer.from(b.read(s.path, 0, s.data.length)), Buffer.from(s.data)), s.path).toBe(0);
      }
      // A partial read across sector boundaries.
      expect(Buffer.compare(Buffer.from(b.read('ImageData2/Image103', 1000, 3000)), Buffer.from(txrmStreams.find((s) => s.path === 'ImageData2/Image103')!.data.subarray(1000, 4000)))).toBe(0);
    } finally {
      a.close();
      b.close();
    }
    // And cfb's own view of the file (its directory) names the same streams.
    const c = CFB.read(fs.readFileSync(f('scan.txrm')), { type: 'buffer' });
    expect(c.FullPaths.filter((p, i) => c.FileIndex[i].type === 2).length).toBe(txrmStreams.length);
  });

  test('.txrm: energies, pixel size, reference image, dtype from ImageInfo; rows equal the TIFF rows', async () => {
    const s = await openStack(f('scan.txrm'));
    const t = await openStack(f('stack.tif'));
    try {
      expect([s.nE, s.height, s.width]).toEqual([nE, H, W]);
      expect(s.dtype).toBe('Xradia uint16');
      expect(Array.from(s.energies!)).toEqual(energies.map((e) => Math.fround(e)));
      expect(s.pixelSizeUm!.x).toBeCloseTo(0.0325, 6);
      expect(s.flatField?.nE).toBe(1);
      expect(s.layout).toMatchObject({ format: 'xradia', name: 'txrm' });
      const a = new Float32Array(nE * 7 * W), b = new Float32Array(nE * 7 * W);
      for (const y0 of [0, 13, 57]) {
        await s.readRows(y0, 7, a);
        await t.readRows(y0, 7, b);
        expect(Buffer.compare(Buffer.from(a.buffer), Buffer.from(b.buffer)), `rows ${y0}`).toBe(0);
      }
    } finally {
      s.close();
      t.close();
    }
  });

  async function edge(args: string[], out: string) {
    const r = await runCli(['edge', ...args, '--backend', 'cpu', '--threads', '1', '--mask-sigma', '3', '--out', out]);
    expect(r.code, r.err).toBe(0);
    return JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  }

  function expectSameMaps(a: string, b: string): void {
    const files = fs.readdirSync(a).filter((n) => n.endsWith('.npy') || n.endsWith('.tif')).sort();
    expect(files.length).toBeGreaterThan(10);
    for (const n of files) expect(Buffer.compare(fs.readFileSync(path.join(a, n)), fs.readFileSync(path.join(b, n))), n).toBe(0);
  }

  test('.txrm with its reference image gives the maps of the TIFF stack with the reference as --flat', async () => {
    const s = await edge([f('scan.txrm')], f('out-txrm'));
    await edge([f('stack.tif'), '--energies', f('energies.txt'), '--flat', f('reference.tif'), '--pixel-size', '0.0325'], f('out-tif'));
    expectSameMaps(f('out-txrm'), f('out-tif'));
    expect(s.inputs.read.layout.name).toBe('txrm');
    expect(s.inputs.read.flat_from).toContain('ReferenceData/Image');
  });

  test('an .xrm series (glob, folder) sorted by energy gives the maps of the TIFF stack', async () => {
    await edge([path.join(f('series'), 'tile_*.xrm')], f('out-xrm-glob'));
    await edge([f('series')], f('out-xrm-dir'));
    await edge([f('stack.tif'), '--energies', f('energies.txt'), '--pixel-size', '0.0325'], f('out-tif-raw'));
    expectSameMaps(f('out-xrm-glob'), f('out-tif-raw'));
    expectSameMaps(f('out-xrm-dir'), f('out-tif-raw'));
  });

  test('xanes info shows the Xradia layout', async () => {
    const r = await runCli(['info', f('scan.txrm')]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('layout: Xradia .txrm');
    expect(r.out).toContain('pixel size 0.0325 µm');
    expect(r.out).toMatch(/flat\s+ReferenceData\/Image/);
  });

  const bad: [string, () => string[], RegExp][] = [
    ['an .xrm without ImageData', () => [f('noimage.xrm'), '--energies', f('energies.txt')], /noimage\.xrm: no ImageData1\/Image1 stream/],
    ['a truncated .txrm (read whole by cfb)', () => [f('truncated.txrm')], /truncated\.txrm: .*(truncated|damaged|cut short)/],
    ['not an OLE file', () => { fs.writeFileSync(f('fake.txrm'), 'not ole at all'); return [f('fake.txrm')]; }, /fake\.txrm: not an OLE compound file/],
  ];
  for (const [what, args, re] of bad) {
    test(`bad input: ${what}`, async () => {
      const out = f(`out-bad-${what.replace(/\W+/g, '-')}`);
      const r = await runCli(['edge', ...args(), '--backend', 'cpu', '--out', out]);
      expect(r.code).toBe(2);
      const lines = r.err.trim().split('\n');
      expect(lines, r.err).toHaveLength(1);
      expect(lines[0]).toMatch(re);
      expect(fs.existsSync(out)).toBe(false);
    });
  }

  test('a truncated .txrm read by sectors is one clear error', async () => {
    const e = await (async () => {
      try {
        const o = openOle(f('truncated.txrm'), { whole: false });
        const n = o.size('ImageData2/Image105')!;
        o.read('ImageData2/Image105', 0, n);
        o.close();
      } catch (err) {
        return err as Error;
      }
      return null;
    })();
    expect(e?.message).toMatch(/truncated\.txrm: (truncated file|damaged)/);
  });
});
