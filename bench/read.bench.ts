/**
 * Reader throughput: the same uint16 stack (counts) read tile by tile (readRows over every
 * row, as a run reads it) from .npy (the floor: positioned reads), HDF5 through h5wasm
 * (contiguous; chunked by 32 and by 128 rows (FXI) with gzip; chunked by whole frames with
 * gzip; the last two with the band cache off, where every tile decompresses the chunks it cuts
 * through again, and on, as a run whose budget holds it reads them) and Xradia .txrm (SheetJS cfb whole-file parse, and
 * the engine's own sector reader). MB/s counts the bytes of the data as stored (uint16), per
 * second of reading, medians after a warm-up. The files are written to a temporary folder
 * (the HDF5 ones with h5wasm, the .txrm with the tests' OLE writer) and removed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Backend } from '../src/pipeline/step.js';
import { openStack, type StackSource } from '../src/stack/source.js';
import { writeNpy } from '../src/io/npy.js';
import { h5wasm, Hdf5Stack } from '../src/io/hdf5.js';
import { openOle } from '../src/io/ole.js';
import { XradiaStack } from '../src/io/xradia.js';
import { writeOle, xradiaStreams } from '../test/helpers/ole-writer.js';
import { machine, timeRepeats, type BenchRecord } from './common.js';

export async function benchRead(b: Backend, o: { nE: number; height: number; width: number; tileRows: number; repeats: number; log: (s: string) => void }): Promise<BenchRecord[]> {
  const { nE, height: H, width: W } = o;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-bench-read-'));
  try {
    // Counts with Poisson-like noise (compressible as real detector data is, not as zeros are).
    const cube = new Uint16Array(nE * H * W);
    let s = 12345;
    for (let i = 0; i < cube.length; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      cube[i] = 15000 + ((i % W) * 3) + ((s >>> 16) % 256);
    }
    const bytes = cube.length * 2;
    const files: { mode: string; open: () => Promise<StackSource>; size: () => number }[] = [];
    const npy = path.join(dir, 'stack.npy');
    writeNpy(npy, cube, [nE, H, W]);
    files.push({ mode: '.npy (positioned reads, the floor)', open: () => openStack(npy), size: () => fs.statSync(npy).size });
    const h5 = await h5wasm();
    // [file, mode, dataset options, band cache on]: a run turns the band cache on where its
    // memory plan holds it (src/pipeline/run-tiles.ts); off, each tile that cuts through a
    // chunk decompresses it again.
    const variants: [string, string, Record<string, unknown>, boolean][] = [
      ['contiguous.h5', 'HDF5 contiguous (h5wasm)', {}, false],
      ['rows_gzip.h5', 'HDF5 chunks [1,32,W] gzip 4 (h5wasm)', { chunks: [1, Math.min(32, H), W], compression: 4 }, false],
      ['rows128_gzip.h5', 'HDF5 chunks [1,128,W] gzip 4 (FXI-like; band cache off: chunks re-read per tile)', { chunks: [1, Math.min(128, H), W], compression: 4 }, false],
      ['rows128_gzip.h5', 'HDF5 chunks [1,128,W] gzip 4 (FXI-like; band cache on)', { chunks: [1, Math.min(128, H), W], compression: 4 }, true],
      ['frames_gzip.h5', 'HDF5 chunks [1,H,W] gzip 4 (h5wasm; band cache off: whole frames re-read per tile)', { chunks: [1, H, W], compression: 4 }, false],
      ['frames_gzip.h5', 'HDF5 chunks [1,H,W] gzip 4 (h5wasm; band cache on: the whole stack held)', { chunks: [1, H, W], compression: 4 }, true],
    ];
    for (const [name, mode, opts, band] of variants) {
      const p = path.join(dir, name);
      if (!fs.existsSync(p)) {
        const f = new h5.File(p, 'w');
        f.create_dataset({ name: 'img_xanes', data: cube, shape: [nE, H, W], dtype: '<H', ...opts });
        f.close();
      }
      const open = async () => {
        const s = await openStack(`${p}#/img_xanes`);
        if (s instanceof Hdf5Stack) s.useBandCache(band);
        return s;
      };
      files.push({ mode, open, size: () => fs.statSync(p).size });
    }
    const txrm = path.join(dir, 'scan.txrm');
    const images = Array.from({ length: nE }, (_, e) => cube.subarray(e * H * W, (e + 1) * H * W));
    fs.writeFileSync(txrm, writeOle(xradiaStreams({ width: W, height: H, images, energies: images.map((_, e) => 8300 + e) })));
    const txrmStack = (whole: boolean) => async () => {
      const ole = openOle(txrm, { whole });
      const refs = images.map((_, e) => ({ ole, stream: `ImageData${Math.ceil((e + 1) / 100)}/Image${e + 1}` }));
      return new XradiaStack(txrm, refs, W, H, { name: 'uint16', bytes: 2 }, [ole]);
    };
    files.push({ mode: '.txrm, SheetJS cfb (whole file parsed, then rows)', open: txrmStack(true), size: () => fs.statSync(txrm).size });
    files.push({ mode: '.txrm, sector reader (tables, then only the rows)', open: txrmStack(false), size: () => fs.statSync(txrm).size });

    const out: BenchRecord[] = [];
    const buf = new Float32Array(nE * o.tileRows * W);
    for (const f of files) {
      const t = await timeRepeats(async () => {
        const src = await f.open();
        try {
          for (let y = 0; y < H; y += o.tileRows) await src.readRows(y, Math.min(o.tileRows, H - y), buf);
        } finally {
          src.close();
        }
      }, o.repeats);
      const mbps = bytes / t.median / 1e6;
      out.push({
        kernel: 'read', mode: f.mode, backend: b.name, adapter: b.adapter, machine: machine(), spectra: H * W, energies: nE, repeats: o.repeats,
        median_s: t.median, min_s: t.min, spectra_per_s: (H * W) / t.median, gb_per_s: bytes / t.median / 1e9,
        mb_per_s: mbps, data_bytes: bytes, file_bytes: f.size(), tile_rows: o.tileRows,
        bytes_read: bytes, notes: 'uint16 data bytes per second into float32 tiles (open + every tile)',
      });
      o.log(`  read ${f.mode}: ${mbps.toFixed(0)} MB/s (file ${(f.size() / 1e6).toFixed(1)} MB for ${(bytes / 1e6).toFixed(1)} MB of data)`);
    }
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
