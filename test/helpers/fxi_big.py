"""Writes a 2 GiB FXI-layout HDF5 file with h5py, fast, for test/cli/fxi-2gib.test.ts.

usage: python3 fxi_big.py OUT.h5 SAMPLE_PREFIX [NE H W CHUNK_ROWS]

/img_xanes [NE,H,W] uint16 counts in chunks [1,CHUNK_ROWS,W], gzip level 1 (HDF5's deflate
filter); /img_bkg 2 flat frames and /img_dark 2 dark frames (uint16, gzip); /X_eng in keV,
8.250 keV upwards in 2 eV steps; '/Pixel Size' text.

Speed: the chunks are compressed once and reused. Band b (rows b*CHUNK_ROWS ..) at energy
index e holds base image e + b, one of NE + bands base images of CHUNK_ROWS x W counts, so
the edge of band b lies 2b eV below that of band 0 (every band's maps differ, so a band read
from the wrong place is seen) while only NE + bands chunks are compressed; the 2 GiB are
written with write_direct_chunk (already-deflated bytes, as HDF5's own filter would write).

Pixel (band b, row r of the band, column x): an erf-like edge (tanh, 2 eV wide) of step 0.4
to 1.2 at E0 = 8385 + 3 x / (W - 1) + r / (CHUNK_ROWS - 1) - 2 b eV, transmitted counts
(flat - dark) exp(-mu) + dark with a fixed pseudo-random noise of sd ~ sqrt(counts) / 16.

Besides the .h5 it writes, for the test's cross-check, a small sample of the same data as .npy:
SAMPLE_PREFIX_stack.npy [NE, rows, 256] (uint16) holding the first 256 columns of the rows
listed in SAMPLE_PREFIX_rows.npy (int32, rows of several bands, the last band included),
SAMPLE_PREFIX_flat.npy / _dark.npy (the same columns of the 2 flat / 2 dark frames),
SAMPLE_PREFIX_energies.npy (eV) and SAMPLE_PREFIX_e0.npy (float64, the generator's E0 of each
sampled pixel).
"""
import sys
import zlib
import numpy as np
import h5py

out, prefix = sys.argv[1], sys.argv[2]
NE, H, W, CR = (int(v) for v in sys.argv[3:7]) if len(sys.argv) > 3 else (101, 3264, 3264, 128)
bands = -(-H // CR)
SAMPLE_COLS = min(256, W)

rng = np.random.default_rng(20261129)
# A uniform grid (band b's spectra are band 0's shifted by b steps): 2 eV steps from 8250 eV.
STEP = 2.0
E_eV = 8250.0 + STEP * np.arange(NE, dtype=np.float64)
# The flat and dark of every band are those of band 0 (rows repeat with period CR), so that
# base image i of band 0 is exactly band b's image at energy index i - b.
flat0 = rng.normal(20000.0, 140.0, size=(2, CR, W)).round().astype(np.uint16)
dark0 = rng.normal(100.0, 10.0, size=(2, CR, W)).round().astype(np.uint16)
flat = np.tile(flat0, (1, bands, 1))[:, :H]
dark = np.tile(dark0, (1, bands, 1))[:, :H]
flat_band = flat0.astype(np.float64).mean(0)
dark_band = dark0.astype(np.float64).mean(0)


def e0_of(b, rows, cols):
    return 8385.0 + 3.0 * cols[None, :] / (W - 1) + 1.0 * rows[:, None] / max(1, CR - 1) - STEP * b


r_idx = np.arange(CR)
x_idx = np.arange(W)
e0_base = e0_of(0, r_idx, x_idx)
step = 0.4 + 0.8 * (x_idx[None, :] / (W - 1))
base = []  # compressed chunk bytes of base image i (band 0's image at energy index i)
noise_rng = np.random.default_rng(7)
for i in range(NE + bands - 1):
    mu = 0.3 + step * 0.5 * (1.0 + np.tanh((E_eV[0] + STEP * i - e0_base) / 2.0))
    c = (flat_band - dark_band) * np.exp(-mu) + dark_band
    c = c + noise_rng.normal(0.0, 1.0, size=c.shape) * np.sqrt(c) / 16.0
    base.append(np.clip(np.rint(c), 0, 65535).astype(np.uint16))
compressed = [zlib.compress(b.tobytes(), 1) for b in base]

with h5py.File(out, 'w') as f:
    d = f.create_dataset('img_xanes', shape=(NE, H, W), dtype='<u2', chunks=(1, CR, W), compression='gzip', compression_opts=1)
    for e in range(NE):
        for b in range(bands):
            d.id.write_direct_chunk((e, b * CR, 0), compressed[e + b])
    f.create_dataset('img_bkg', data=flat, chunks=(1, CR, W), compression='gzip', compression_opts=1)
    f.create_dataset('img_dark', data=dark, chunks=(1, CR, W), compression='gzip', compression_opts=1)
    f.create_dataset('X_eng', data=E_eV / 1000.0)
    f.create_dataset('Pixel Size', data='30nm')

# The sample: rows of the first, a middle and the last band (the last one partial when
# H is not a multiple of CR), first SAMPLE_COLS columns.
rows = sorted({0, 1, CR - 1, (bands // 2) * CR + 5, (bands // 2) * CR + CR // 2, (bands - 1) * CR, H - 1})
rows = np.array([r for r in rows if r < H], dtype=np.int32)
stack = np.empty((NE, len(rows), SAMPLE_COLS), dtype=np.uint16)
e0 = np.empty((len(rows), SAMPLE_COLS))
for k, y in enumerate(rows):
    b, r = divmod(int(y), CR)
    for e in range(NE):
        stack[e, k] = base[e + b][r, :SAMPLE_COLS]
    e0[k] = e0_of(b, np.array([r]), x_idx[:SAMPLE_COLS])[0]
np.save(f'{prefix}_stack.npy', stack)
np.save(f'{prefix}_rows.npy', rows)
np.save(f'{prefix}_flat.npy', np.ascontiguousarray(flat[:, rows, :SAMPLE_COLS]))
np.save(f'{prefix}_dark.npy', np.ascontiguousarray(dark[:, rows, :SAMPLE_COLS]))
np.save(f'{prefix}_energies.npy', E_eV)
np.save(f'{prefix}_e0.npy', e0)
