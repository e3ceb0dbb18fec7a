#!/usr/bin/env python3
"""Peer timing for alignment: scikit-image's phase_cross_correlation with upsample_factor=100
(Debian python3-skimage), one core, on 1024^2 and 2048^2 images, as `npm run bench:peers`
runs it next to bench/align.bench.ts. The images are a smooth random field (Gaussian-filtered
noise, as structured as a TXM field of particles) and copies Fourier-shifted by known
subpixel amounts with 1 % noise. Writes peers-align-cpu.json; never asserts.

  OMP_NUM_THREADS=1 /usr/bin/python3 bench/peers/align_peer.py OUT_DIR
"""
import json, os, platform, sys, time
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
import numpy as np
from scipy import ndimage
import skimage
from skimage.registration import phase_cross_correlation

SHIFTS = [(3.37, -5.82), (-7.15, 2.49), (0.61, 6.03)]


def images(n, seed=3):
    rng = np.random.default_rng(seed)
    ref = ndimage.gaussian_filter(rng.normal(size=(n, n)), n / 128)
    ref /= ref.std()
    movs = []
    for dy, dx in SHIFTS:
        m = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(ref), (dy, dx))).real
        movs.append(m + 0.01 * rng.normal(size=(n, n)))
    return ref + 0.01 * rng.normal(size=(n, n)), movs


def main(out_dir):
    res = {}
    for n in (1024, 2048):
        ref, movs = images(n)
        for norm in (None, 'phase'):
            phase_cross_correlation(ref, movs[0], upsample_factor=100, normalization=norm)  # warm-up
            t, err = [], []
            for (dy, dx), m in zip(SHIFTS, movs):
                t0 = time.perf_counter()
                s = phase_cross_correlation(ref, m, upsample_factor=100, normalization=norm)[0]
                t.append(time.perf_counter() - t0)
                # scikit-image returns the shift that registers the moving image: -(dy, dx).
                err.append(max(abs(-s[0] - dy), abs(-s[1] - dx)))
            med = float(np.median(t))
            res[f'skimage_phase_cross_correlation_{n}_{norm or "none"}'] = {
                'size': n, 'normalization': norm or 'none', 'median_s': med, 'images_per_s': 1 / med, 'max_error_px': float(max(err)),
                'what': f'scikit-image {skimage.__version__} phase_cross_correlation(upsample_factor=100, normalization={norm!r}), {n}x{n} float64, 1 thread',
            }
            print(f'{n}^2 {norm or "none"}: {1 / med:.2f} images/s, max error {max(err):.4f} px')
    doc = {'benchmark': 'peers-align', 'python': sys.version.split()[0], 'numpy': np.__version__, 'machine': f'{platform.processor() or platform.machine()} x{os.cpu_count()}, {platform.platform()}', 'results': res}
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, 'peers-align-cpu.json')
    with open(path, 'w') as f:
        json.dump(doc, f, indent=2)
    print('->', path)


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'results'))
