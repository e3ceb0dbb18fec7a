/**
 * Writes a stack in the FXI (NSLS-II 18-ID) HDF5 layout with h5wasm: /img_xanes [E,H,W]
 * uint16 counts (chunked by rows, gzip), /img_bkg flat and /img_dark dark frames, /X_eng
 * energies in keV, "/Pixel Size" as text ("117.2nm"), as the beamline's files hold them.
 * Used by the demo, the benchmarks and anyone who wants an FXI file to try the engine on.
 */
import { h5wasm } from '../io/hdf5.js';

export interface FxiFileData {
  width: number;
  height: number;
  /** eV; written as keV like FXI's X_eng. */
  energies: Float64Array;
  sample: Uint16Array;
  flat: Uint16Array;
  dark: Uint16Array;
  /** Frames in flat and dark (1..nE each). */
  flatFrames: number;
  darkFrames: number;
  pixelSizeUm?: number;
  /** gzip level (0 = uncompressed, contiguous). */
  gzip?: number;
  /** Rows per chunk of img_xanes (default 32). */
  chunkRows?: number;
}

export async function writeFxiFile(path: string, d: FxiFileData): Promise<void> {
  const h5 = await h5wasm();
  const nE = d.energies.length;
  const { width: W, height: H } = d;
  const f = new h5.File(path, 'w');
  try {
    const gz = d.gzip ?? 4;
    const chunkRows = Math.min(H, d.chunkRows ?? 32);
    f.create_dataset({
      name: 'img_xanes', data: d.sample, shape: [nE, H, W], dtype: '<H',
      ...(gz > 0 ? { chunks: [1, chunkRows, W], compression: gz } : {}),
    });
    f.create_dataset({ name: 'img_bkg', data: d.flat, shape: [d.flatFrames, H, W], dtype: '<H' });
    f.create_dataset({ name: 'img_dark', data: d.dark, shape: [d.darkFrames, H, W], dtype: '<H' });
    f.create_dataset({ name: 'X_eng', data: Float64Array.from(d.energies, (e) => e / 1000), shape: [nE], dtype: '<d' });
    if (d.pixelSizeUm) f.create_dataset({ name: 'Pixel Size', data: `${Number((d.pixelSizeUm * 1000).toPrecision(6))}nm` });
    f.create_dataset({ name: 'note', data: 'synthetic Ni K-edge TXM stack written by xanes-engine (src/synth/fxi.ts)' });
  } finally {
    f.close();
  }
}
