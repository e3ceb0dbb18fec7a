#!/usr/bin/env python3
"""Peer timings on this machine with Debian's packages, for the ratios in bench/README.md.

  /usr/bin/python3 bench/peers/peers.py OUT_DIR

Each peer does the job the way a scientist's script does today: one spectrum at a time
(larch pre_edge, scipy least_squares, scipy nnls) or one vectorised call (numpy lstsq,
sklearn KMeans). Spectra are mixtures of the bundled NiO and LiNiO2 references on the real
101-energy TXM grid, with noise. Writes peers-<host>.json; never asserts.
"""
import json, os, platform, sys, time
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, '..', '..', 'examples', 'data', 'ni-k')


def load(name):
    a = np.loadtxt(os.path.join(data, name))
    return a[:, 0] * 1000.0, a[:, 1]


def spectra(n, seed=1):
    e = np.loadtxt(os.path.join(data, 'ni-k-fxi-energies-keV.txt')) * 1000.0
    e1, m1 = load('ref_NiO.txt')
    e2, m2 = load('ref_LiNiO2.txt')
    r1, r2 = np.interp(e, e1, m1), np.interp(e, e2, m2)
    rng = np.random.default_rng(seed)
    s = rng.uniform(size=(n, 1))
    t = 0.3 + 1.2 * rng.uniform(size=(n, 1))
    y = 0.02 + t * ((1 - s) * r1 + s * r2) + 0.01 * rng.normal(size=(n, e.size))
    return e, y, np.stack([r1, r2], axis=1)


def timed(fn, n):
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return {'spectra': n, 'seconds': dt, 'spectra_per_s': n / dt}


def main(out_dir):
    res = {}
    e, y, refs = spectra(2000)
    try:
        from larch.xafs import pre_edge
        from larch import Group

        def larch_loop():
            for k in range(500):
                pre_edge(Group(energy=e, mu=y[k]), e0=8343.0, pre1=-150, pre2=-30, norm1=50, nnorm=2)
        res['larch_pre_edge'] = timed(larch_loop, 500) | {'what': 'xraylarch pre_edge (normalisation + edge step), one spectrum per call'}
    except Exception as ex:  # recorded, not fatal: a peer that cannot run is reported as such
        res['larch_pre_edge'] = {'error': str(ex)}

    from scipy.optimize import least_squares, nnls
    from scipy.special import erf
    # The erf-2lorentz preset on a 40-energy ptychography-like grid (V K-edge).
    # 40 energies, 5420-5540 eV, 0.5 eV steps across the pre-edge peak and the edge.
    ev = np.concatenate([[5420, 5435, 5450, 5460], np.arange(5465, 5480, 0.5), [5482, 5486, 5492, 5500, 5515, 5540]])
    def model(p, x):
        a, b1, b2, b3, c11, c12, c13, c21, c22, c23 = p
        return a + b1 / 2 * (1 + erf((x - b2) / b3)) + c11 / (1 + ((x - c12) / c13) ** 2) + c21 / (1 + ((x - c22) / c23) ** 2)
    # Energies centred on the edge, as a careful scipy user does (absolute eV in the centre
    # parameters makes the finite-difference Jacobian useless and the fit crawl).
    ev = ev - 5480.0
    truth = np.array([0.05, 1.0, 0.0, 3.0, 0.3, -10.0, 1.2, 0.2, 6.0, 4.0])
    rng = np.random.default_rng(2)
    ys = [model(truth, ev) + 0.01 * rng.normal(size=ev.size) for _ in range(300)]
    p0 = truth * np.array([1, 0.9, 1, 1.2, 0.8, 1, 1.1, 0.9, 1, 1.1]) + np.array([0, 0, 0.5, 0, 0, 0.3, 0, 0, -0.3, 0])
    res['scipy_least_squares_fit'] = timed(lambda: [least_squares(lambda p: model(p, ev) - yk, p0) for yk in ys], len(ys)) | {'what': 'scipy least_squares (TRF), erf-2lorentz, 40 energies, one pixel per call'}

    res['scipy_nnls_lcf'] = timed(lambda: [nnls(refs, yk) for yk in y], len(y)) | {'what': 'scipy nnls, 2 references, 101 energies, one pixel per call'}
    big_e, big_y, big_refs = spectra(200000)
    res['numpy_lstsq_lcf'] = timed(lambda: np.linalg.lstsq(big_refs, big_y.T, rcond=None), 200000) | {'what': 'numpy lstsq, 2 references, 101 energies, all pixels in one call'}

    try:
        from sklearn.cluster import KMeans
        X = np.random.default_rng(3).normal(size=(1_000_000, 3)).astype(np.float32)
        km = KMeans(n_clusters=6, n_init=1, max_iter=20, tol=0, random_state=0)
        t = timed(lambda: km.fit(X), 1_000_000)
        t['iterations'] = int(km.n_iter_)
        t['seconds_per_iteration'] = t['seconds'] / max(1, km.n_iter_)
        res['sklearn_kmeans'] = t | {'what': 'sklearn KMeans (Lloyd/elkan default), 1M x 3 features, k=6, 1 init'}
    except Exception as ex:
        res['sklearn_kmeans'] = {'error': str(ex)}

    doc = {'benchmark': 'peers', 'python': sys.version.split()[0], 'numpy': np.__version__, 'machine': f'{platform.processor() or platform.machine()} x{os.cpu_count()}, {platform.platform()}', 'results': res}
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, 'peers-cpu.json')
    with open(path, 'w') as f:
        json.dump(doc, f, indent=2)
    print(json.dumps({k: round(v.get('spectra_per_s', 0)) for k, v in res.items()}), '->', path)


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, '..', 'results'))
