"""Writes beamline-layout HDF5 files with h5py (an implementation independent of the
engine's h5wasm reader) and the same data as .npy, for test/io/hdf5.test.ts.

usage: python3 h5_layouts.py OUTDIR

Each layout gets <name>.h5 plus <name>_stack.npy, <name>_energies.npy (eV, float64) and,
where the layout has flat/dark fields, <name>_flat.npy / <name>_dark.npy holding one frame
per energy (the mean of the file's frames, computed here in float64 and stored as float32,
repeated at every energy). The engine must give byte-identical maps from both.
"""
import sys
import numpy as np
import h5py
from math import erf

out = sys.argv[1]
rng = np.random.default_rng(20261129)

H, W = 14, 11
E_eV = np.concatenate([np.arange(8233.0, 8313.0, 10.0), np.arange(8313.0, 8363.0, 1.0), np.arange(8363.0, 8473.0, 10.0)])
nE = len(E_eV)
verf = np.vectorize(erf)


def absorbance(e0_shift):
    """[E,H,W] absorbance: an erf edge near 8340 eV whose energy varies across the image."""
    yy, xx = np.mgrid[0:H, 0:W]
    e0 = 8340.0 + e0_shift * (xx / (W - 1) - 0.5)
    step = 0.3 + 0.7 * (yy / (H - 1))
    mu = 0.2 + step[None] * 0.5 * (1 + verf((E_eV[:, None, None] - e0[None]) / 2.5))
    return mu


def counts(mu, flat, dark):
    return rng.poisson((flat - dark) * np.exp(-mu) + dark)


def save_npy(name, stack, flat=None, dark=None, energies=E_eV):
    np.save(f'{out}/{name}_stack.npy', stack)
    np.save(f'{out}/{name}_energies.npy', np.asarray(energies, dtype=np.float64))
    for tag, field in (('flat', flat), ('dark', dark)):
        if field is None:
            continue
        mean = field.astype(np.float64).mean(axis=0).astype(np.float32) if field.shape[0] != nE else field.astype(np.float32)
        full = np.broadcast_to(mean, (nE, H, W)) if mean.ndim == 2 else mean
        np.save(f'{out}/{name}_{tag}.npy', np.ascontiguousarray(full, dtype=np.float32))


# FXI (NSLS-II 18-ID): uint16 counts, chunked + gzip, 2 flat frames, 3 dark frames, X_eng in keV.
mu = absorbance(4.0)
flat = rng.poisson(np.full((2, H, W), 20000.0)).astype(np.uint16)
dark = rng.poisson(np.full((3, H, W), 100.0)).astype(np.uint16)
img = counts(mu, flat.astype(np.float64).mean(0)[None], dark.astype(np.float64).mean(0)[None]).astype(np.uint16)
E_keV = E_eV / 1000.0
with h5py.File(f'{out}/fxi.h5', 'w') as f:
    f.create_dataset('img_xanes', data=img, chunks=(1, 5, W), compression='gzip')
    f.create_dataset('img_bkg', data=flat)
    f.create_dataset('img_dark', data=dark)
    f.create_dataset('X_eng', data=E_keV)
    f.create_dataset('Pixel Size', data='21.3nm')
    f.create_dataset('note', data='synthetic')
save_npy('fxi', img, flat, dark, energies=E_keV * 1000.0)

# APS data exchange: float32 counts, one white frame per energy, one dark; energy in eV via @units.
mu = absorbance(-3.0)
white = rng.poisson(np.full((nE, H, W), 15000.0)).astype(np.float32)
darkx = rng.poisson(np.full((1, H, W), 80.0)).astype(np.float32)
data = counts(mu, white.astype(np.float64), darkx.astype(np.float64)).astype(np.float32)
with h5py.File(f'{out}/aps.h5', 'w') as f:
    ex = f.create_group('exchange')
    ex.create_dataset('data', data=data, chunks=(4, H, W), compression='gzip', compression_opts=1)
    ex.create_dataset('data_white', data=white)
    ex.create_dataset('data_dark', data=darkx)
    en = ex.create_dataset('energy', data=E_eV)
    en.attrs['units'] = 'eV'
    det = f.create_group('measurement/instrument/detector')
    px = det.create_dataset('actual_pixel_size_x', data=0.65)
    px.attrs['units'] = 'microns'
save_npy('aps', data, white, darkx)

# NeXus NXstxm: optical density as float64, energy axis in J (NeXus allows any energy unit).
od = absorbance(2.0)
J = E_eV * 1.602176634e-19
with h5py.File(f'{out}/nxstxm.h5', 'w') as f:
    f.attrs['default'] = 'entry1'
    e = f.create_group('entry1')
    e.attrs['NX_class'] = 'NXentry'
    e.attrs['default'] = 'counter0'
    e.create_dataset('definition', data='NXstxm')
    d = e.create_group('counter0')
    d.attrs['NX_class'] = 'NXdata'
    d.attrs['signal'] = 'data'
    d.attrs['axes'] = np.array(['energy', 'sample_y', 'sample_x'], dtype=h5py.string_dtype())
    d.create_dataset('data', data=od)
    en = d.create_dataset('energy', data=J)
    en.attrs['units'] = 'J'
    sy = d.create_dataset('sample_y', data=np.arange(H) * 0.04)
    sy.attrs['units'] = 'um'
    sx = d.create_dataset('sample_x', data=100.0 + np.arange(W) * 0.04)
    sx.attrs['units'] = 'um'
# The energies as the engine must compute them: J / e, in float64.
save_npy('nxstxm', od, energies=J / 1.602176634e-19)

# A plain file with one 3-D dataset and nothing else (energies from --energies), int32.
with h5py.File(f'{out}/plain.h5', 'w') as f:
    f.create_dataset('scan/stack', data=(absorbance(1.0) * 1000).astype(np.int32), chunks=(3, 3, 3), compression='gzip')
    f.create_dataset('scan/temperature', data=np.float64(300.0))
save_npy('plain', (absorbance(1.0) * 1000).astype(np.int32))

# Chunks of several rows in several types, for the band cache (src/io/hdf5.ts): each dataset
# with its values as numpy's float32 (astype: one rounding; int64 values stay below 2^53, so
# the engine's Number() then float32 is one rounding too).
with h5py.File(f'{out}/banded.h5', 'w') as f:
    shape = (6, 23, 9)
    sets = {
        'u16': (rng.integers(0, 65536, shape).astype(np.uint16), (1, 5, 9), {}),
        'f64': (rng.normal(0.0, 1.0, shape) * 1e3, (2, 4, 3), {'shuffle': True}),
        'i64': (rng.integers(-2**40, 2**40, shape).astype(np.int64), (3, 7, 9), {}),
        'i8': (rng.integers(-128, 128, shape).astype(np.int8), (1, 6, 9), {}),
        'vol': (rng.normal(0.0, 1.0, (6, 3, 7, 5)).astype(np.float32), (1, 1, 4, 5), {}),
    }
    for name, (data, chunks, extra) in sets.items():
        f.create_dataset(name, data=data, chunks=chunks, compression='gzip', compression_opts=1, **extra)
        np.save(f'{out}/banded_{name}.npy', data.astype(np.float32).reshape(data.shape[0], -1, data.shape[-1]))

# Bad files for the error messages.
with h5py.File(f'{out}/bad_no3d.h5', 'w') as f:
    f.create_dataset('image', data=np.zeros((4, 5), np.float32))
    f.create_dataset('energy', data=E_eV)
with h5py.File(f'{out}/bad_strings.h5', 'w') as f:
    f.create_dataset('img_xanes', data=np.array([[[b'ab']]]))
    f.create_dataset('stack', data=np.array([[['x', 'y']]], dtype=h5py.string_dtype()))
with h5py.File(f'{out}/bad_energies.h5', 'w') as f:
    f.create_dataset('img_xanes', data=img)
    f.create_dataset('X_eng', data=E_keV[:-1])
with open(f'{out}/fxi.h5', 'rb') as src, open(f'{out}/bad_truncated.h5', 'wb') as dst:
    b = src.read()
    dst.write(b[: len(b) // 2])
print('ok')
