/**
 * Alignment: images registered per second (one FFT of the moving image, the cross-power
 * spectrum, its inverse FFT and peak, the 151 x 151 upsampled DFT at 1/100 px: what each
 * image costs in a neighbour chain) at 1024^2 and 2048^2, on each backend; and, on the same
 * image pairs, scikit-image's phase_cross_correlation(upsample_factor=100) run through
 * /usr/bin/python3 on one core (timing and the shifts it finds, so accuracy is compared
 * too). The test image is the project's synthetic Ni K-edge field at 8350 eV with 1 %
 * Gaussian noise; moving images are Fourier shifts of it by known subpixel amounts.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Backend } from '../src/pipeline/step.js';
import { makeNiTxmStack } from '../src/synth/ni-txm.js';
import { makeRng } from '../src/synth/random.js';
import { fft2Cpu } from '../src/cpu/fft.js';
import { fourierShiftCpu } from '../src/cpu/shift_apply.js';
import { prepareImage } from '../src/align/prepare.js';
import { CpuRegistrar } from '../src/align/registrar-cpu.js';
import { GpuRegistrar } from '../src/align/registrar-gpu.js';
import { CrossPowerMode, UPSAMPLED_REGION } from '../src/kernels/align_layout.js';
import { writeNpy } from '../src/io/npy.js';
import { machine, type BenchRecord } from './common.js';

const SHIFTS: [number, number][] = [[3.37, -5.82], [-7.15, 2.49], [0.61, 6.03]];

function testImages(n: number): { ref: Float32Array; movs: Float32Array[] } {
  const s = makeNiTxmStack({ width: n, height: n, seed: 1, noise: false, energies: Float64Array.of(8350) });
  const rng = makeRng(7);
  const base = s.absorbance;
  const noisy = (img: ArrayLike<number>) => Float32Array.from({ length: n * n }, (_, i) => img[i] + 0.01 * rng.normal());
  // The moving images: content moved by (+dy, +dx), periodically (a phase ramp exp(-2 pi i k.d / n)).
  const movs = SHIFTS.map(([dy, dx]) => {
    const c = new Float64Array(2 * n * n);
    for (let i = 0; i < n * n; i++) c[2 * i] = base[i];
    fft2Cpu(c, n, n);
    fourierShiftCpu(c, n, n, -dy, -dx);
    fft2Cpu(c, n, n, true);
    return noisy(Float64Array.from({ length: n * n }, (_, i) => c[2 * i]));
  });
  return { ref: noisy(base), movs };
}

const PEER = String.raw`
import json, sys, time, numpy as np
from skimage.registration import phase_cross_correlation
d = sys.argv[1]; k = int(sys.argv[2]); norm = None if sys.argv[3] == 'none' else 'phase'
ref = np.load(d + '/ref.npy').astype(np.float64)
out = []
for i in range(k):
    mov = np.load(d + '/mov%d.npy' % i).astype(np.float64)
    t = time.perf_counter()
    s = phase_cross_correlation(ref, mov, upsample_factor=100, normalization=norm)[0]
    out.append({'seconds': time.perf_counter() - t, 'dy': float(-s[0]), 'dx': float(-s[1])})
print(json.dumps(out))
`;

interface PeerResult { seconds: number; dy: number; dx: number }

/** scikit-image on the same pairs, one core; null (with the reason logged) if it cannot run. */
function skimagePeer(ref: Float32Array, movs: Float32Array[], n: number, norm: 'none' | 'phase', log: (s: string) => void): PeerResult[] | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-align-bench-'));
  try {
    writeNpy(path.join(dir, 'ref.npy'), ref, [n, n]);
    movs.forEach((m, i) => writeNpy(path.join(dir, `mov${i}.npy`), m, [n, n]));
    const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
    const text = execFileSync('/usr/bin/python3', ['-c', PEER, dir, String(movs.length), norm], { env, encoding: 'utf8', maxBuffer: 1 << 20 });
    return JSON.parse(text) as PeerResult[];
  } catch (e) {
    log(`  scikit-image peer not run: ${(e as Error).message.split('\n')[0]}`);
    return null;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[s.length >> 1];
}

export async function benchAlign(b: Backend, sizes: number[], log: (s: string) => void, peer = true): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  for (const n of sizes) {
    const { ref, movs } = testImages(n);
    for (const norm of ['none', 'phase'] as const) {
      const mode = norm === 'phase' ? CrossPowerMode.PHASE : CrossPowerMode.NONE;
      const reg = b.gpu ? new GpuRegistrar(b.gpu, n, n, { mode, highpass: 0 }, UPSAMPLED_REGION) : new CpuRegistrar(n, n, { mode, highpass: 0 });
      const prep = (img: Float32Array) => prepareImage(img, n, n, { on: 'intensity', window: 'none' }).image;
      const refSpec = await reg.spectrum(prep(ref));
      // Warm-up (pipeline compilation), then each image timed: prepare + FFT + registration.
      (await reg.spectrum(prep(movs[0]))).release();
      const times: number[] = [], errors: number[] = [];
      for (let i = 0; i < movs.length; i++) {
        const t0 = performance.now();
        const m = await reg.spectrum(prep(movs[i]));
        const s = await reg.register(refSpec, m);
        times.push((performance.now() - t0) / 1000);
        m.release();
        errors.push(Math.max(Math.abs(s.dy - SHIFTS[i][0]), Math.abs(s.dx - SHIFTS[i][1])));
      }
      refSpec.release();
      reg.destroy();
      const med = median(times);
      const rec: BenchRecord = {
        kernel: 'align', mode: `register ${n}x${n}, normalization ${norm}, upsample 100`, backend: b.name, adapter: b.adapter,
        machine: machine(), spectra: 0, energies: 0, repeats: times.length, median_s: med, min_s: Math.min(...times),
        spectra_per_s: 0, gb_per_s: (4 * n * n) / med / 1e9, images_per_s: 1 / med, size: n, max_error_px: Math.max(...errors),
        notes: 'one image: prepare, FFT, cross-power, inverse FFT + peak, 151x151 upsampled DFT; CPU backend on one thread',
      };
      let line = `  align ${n}^2 ${norm}: ${(1 / med).toFixed(2)} images/s, max error ${Math.max(...errors).toFixed(4)} px`;
      if (peer) {
        const p = skimagePeer(ref, movs, n, norm, log);
        if (p) {
          const pm = median(p.map((x) => x.seconds));
          const pe = Math.max(...p.map((x, i) => Math.max(Math.abs(x.dy - SHIFTS[i][0]), Math.abs(x.dx - SHIFTS[i][1]))));
          Object.assign(rec, { peer: 'scikit-image phase_cross_correlation(upsample_factor=100), /usr/bin/python3, 1 thread', peer_images_per_s: 1 / pm, peer_max_error_px: pe });
          line += `; scikit-image ${(1 / pm).toFixed(2)} images/s, max error ${pe.toFixed(4)} px`;
        }
      }
      log(line);
      out.push(rec);
    }
  }
  return out;
}
