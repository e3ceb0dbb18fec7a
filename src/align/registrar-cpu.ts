/** The registration steps on the CPU twins (float64). See registrar.ts. */
import { fft2Cpu } from '../cpu/fft.js';
import { crossPowerCpu } from '../cpu/cross_power.js';
import { corrPeakCpu } from '../cpu/corr_peak.js';
import { dftUpsampleCpu } from '../cpu/dft_upsample.js';
import { imageEnergy, normalisePeak, regionAround, refineUpsampled, type PairShift, type Registrar, type RegisterOptions, type Spectrum } from './registrar.js';

class CpuSpectrum implements Spectrum {
  constructor(public data: Float64Array | null, readonly energy: number) {}
  release(): void {
    this.data = null;
  }
}

export class CpuRegistrar implements Registrar {
  private scratch: Float64Array;
  constructor(readonly ny: number, readonly nx: number, private o: RegisterOptions) {
    this.scratch = new Float64Array(2 * ny * nx);
  }

  async spectrum(image: Float32Array): Promise<Spectrum> {
    const c = new Float64Array(2 * this.ny * this.nx);
    for (let i = 0; i < image.length; i++) c[2 * i] = image[i];
    fft2Cpu(c, this.ny, this.nx, false, this.scratch);
    return new CpuSpectrum(c, imageEnergy(image));
  }

  async register(ref: Spectrum, moving: Spectrum): Promise<PairShift> {
    const { ny, nx } = this;
    const X = crossPowerCpu((ref as CpuSpectrum).data!, (moving as CpuSpectrum).data!, { ny, nx, mode: this.o.mode, highpass: this.o.highpass });
    const c = X.slice();
    fft2Cpu(c, ny, nx, true, this.scratch);
    const p = corrPeakCpu(c, ny * nx);
    if (p.index < 0) return { dy: NaN, dx: NaN, peak: NaN };
    const region = regionAround(p.index, ny, nx);
    return normalisePeak(refineUpsampled(dftUpsampleCpu(X, region), region), this.o.mode, ref, moving);
  }

  destroy(): void {}
}
