// Synthetic full-field TXM stack at the Ni K-edge with known truth: the bundled example
// dataset and the fixture most tests check chemical maps against. Spectra are the measured,
// normalised NiO (Ni2+) and LiNiO2 (Ni3+) references mixed per pixel by a state of charge s,
// on the energy grid of a real TXM scan (see examples/data/README.md for sources/licences).
//
// Model, per pixel p and energy E:
//   A(p,E) = film + t(p) * ( jump * [(1-s) NiO(E) + s LiNiO2(E)] + bg0 + bgSlope*(E - eRef) )
//   flat   = i0 * g(p) * beam(E) + dark          sample = flat_no_dark * exp(-A) + dark
// t is a projected thickness (um), film a weak support-film absorbance everywhere, the bg
// terms the non-Ni matrix (Li, O, Mn, Co) absorbing smoothly under the edge.
import { exampleDataPath } from './paths.js';
import { interpLinear, readEnergyList, readTwoColumnSpectrum, type Spectrum } from './references.js';
import { makeRng, poissonSampler } from './random.js';

/** Physical constants of the model; exported so tests can rebuild the truth spectra. */
export const NI_TXM_PHYSICS = {
  /** Shorter side of the frame, um; particle sizes scale with it, not with pixel count. */
  fieldOfViewUm: 30,
  /** Ni K edge jump per um of particle: the largest particle (12 um thick) gives ~1.4. */
  jumpPerUm: 0.115,
  /** Non-Ni matrix absorbance per um at eRef, and its (falling) slope per eV. */
  matrixBgPerUm: 0.02,
  matrixBgSlopePerUmPerEv: -1.5e-5,
  eRefEv: 8333,
  /** Support-film absorbance, present on every pixel including background. */
  film: 0.02,
  /** Relative drop of the beam intensity across the scan (undulator/mono drift). */
  beamDrop: 0.08,
  /** Peak relative fall-off of the illumination at the frame corners. */
  illuminationFalloff: 0.12,
} as const;

export type ParticleRole = 'core-shell' | 'gradient' | 'cracked' | 'inactive' | 'uniform';

export interface NiTxmParticle {
  id: number;
  role: ParticleRole;
  /** Centre as fractions of width and height. */
  cx: number;
  cy: number;
  /** Semi-axes as fractions of min(width, height); a along `angleDeg`. */
  a: number;
  b: number;
  angleDeg: number;
  /** uniform/cracked/inactive: s; core-shell: [core, shell]; gradient: [start, end] along a. */
  soc: number | readonly [number, number];
}

/**
 * The fixed layout (the seed drives only the counting noise, so every stack of a given size
 * has the same truth). Painted in order: where two would overlap, the earlier one wins.
 */
export const NI_TXM_PARTICLES: readonly NiTxmParticle[] = [
  { id: 1, role: 'core-shell', cx: 0.3, cy: 0.32, a: 0.2, b: 0.2, angleDeg: 0, soc: [0.15, 0.85] },
  { id: 2, role: 'gradient', cx: 0.72, cy: 0.27, a: 0.16, b: 0.1, angleDeg: 30, soc: [0.1, 0.9] },
  { id: 3, role: 'cracked', cx: 0.68, cy: 0.72, a: 0.15, b: 0.15, angleDeg: 0, soc: 0.6 },
  { id: 4, role: 'inactive', cx: 0.25, cy: 0.78, a: 0.1, b: 0.1, angleDeg: 0, soc: 0 },
  { id: 5, role: 'uniform', cx: 0.47, cy: 0.58, a: 0.06, b: 0.06, angleDeg: 0, soc: 0.45 },
  { id: 6, role: 'uniform', cx: 0.9, cy: 0.55, a: 0.05, b: 0.05, angleDeg: 0, soc: 0.7 },
  { id: 7, role: 'uniform', cx: 0.5, cy: 0.1, a: 0.045, b: 0.045, angleDeg: 0, soc: 0.3 },
  { id: 8, role: 'uniform', cx: 0.08, cy: 0.55, a: 0.05, b: 0.05, angleDeg: 0, soc: 0.55 },
];

export interface NiTxmOptions {
  width: number;
  height: number;
  seed: number;
  noise: boolean;
  /** Expected open-beam counts per pixel (before illumination fall-off); default 20000. */
  i0Counts?: number;
  /** Expected dark counts per pixel; default 100. */
  darkCounts?: number;
  /** eV, strictly increasing; default the real 101-energy TXM grid. */
  energies?: Float64Array;
}

export interface NiTxmStack {
  energies: Float64Array;
  /** Counts, [E][H][W]. */
  sample: Float32Array;
  flat: Float32Array;
  dark: Float32Array;
  /** Noise-free -ln(I/I0), [E][H][W]. */
  absorbance: Float32Array;
  truth: {
    /** Fraction of LiNiO2 (Ni3+), NaN off particles. [H*W] */
    soc: Float32Array;
    /** Projected thickness, um. [H*W] */
    thickness: Float32Array;
    /** 0 background (including crack pixels), 1..n particle id. [H*W] */
    particle: Int16Array;
  };
}

let refsCache: { nio: Spectrum; linio2: Spectrum } | undefined;

/** The bundled normalised references (read once per process). */
export function loadNiReferences(): { nio: Spectrum; linio2: Spectrum } {
  refsCache ??= {
    nio: readTwoColumnSpectrum(exampleDataPath('ni-k/ref_NiO.txt')),
    linio2: readTwoColumnSpectrum(exampleDataPath('ni-k/ref_LiNiO2.txt')),
  };
  return refsCache;
}

/** The real TXM Ni K-edge energy grid, eV (a fresh copy). */
export function niTxmEnergies(): Float64Array {
  return readEnergyList(exampleDataPath('ni-k/ni-k-fxi-energies-keV.txt'));
}

/** Noiseless normalised mixture (1-s) NiO + s LiNiO2 on the given energies (eV). */
export function niMixtureSpectrum(s: number, energiesEv: Float64Array): Float64Array {
  const { nio, linio2 } = loadNiReferences();
  return energiesEv.map(
    (e) => (1 - s) * interpLinear(nio.energy, nio.mu, e) + s * interpLinear(linio2.energy, linio2.mu, e),
  );
}

function smoothstep(x: number): number {
  const c = Math.min(1, Math.max(0, x));
  return c * c * (3 - 2 * c);
}

function particleSoc(p: NiTxmParticle, xr: number, rho: number): number {
  if (typeof p.soc === 'number') return p.soc;
  const [s0, s1] = p.soc;
  // Core-shell: delithiated (charged) shell over a less charged core, smooth boundary.
  if (p.role === 'core-shell') return s0 + (s1 - s0) * smoothstep((rho - 0.5) / 0.25);
  return s0 + ((s1 - s0) * (xr + 1)) / 2; // gradient along the major axis
}

/** Truth maps: thickness (um), soc and particle id per pixel. */
function paintParticles(width: number, height: number) {
  const n = width * height;
  const thickness = new Float32Array(n);
  const soc = new Float32Array(n).fill(NaN);
  const particle = new Int16Array(n);
  const L = Math.min(width, height);
  const umPerPx = NI_TXM_PHYSICS.fieldOfViewUm / L;
  // A crack must stay at least about one pixel wide at any frame size to be visible.
  const crackHalfWidthPx = Math.max(0.6, 0.006 * L);
  for (const p of NI_TXM_PARTICLES) {
    const cx = p.cx * width, cy = p.cy * height;
    const a = p.a * L, b = p.b * L;
    const cUm = Math.sqrt(a * b) * umPerPx; // semi-axis along the beam
    const th = (p.angleDeg * Math.PI) / 180;
    const cos = Math.cos(th), sin = Math.sin(th);
    const crackTh = (65 * Math.PI) / 180;
    const ccos = Math.cos(crackTh), csin = Math.sin(crackTh);
    const x0 = Math.max(0, Math.floor(cx - a)), x1 = Math.min(width - 1, Math.ceil(cx + a));
    const y0 = Math.max(0, Math.floor(cy - a)), y1 = Math.min(height - 1, Math.ceil(cy + a));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const i = y * width + x;
        if (particle[i] !== 0) continue;
        const dx = x + 0.5 - cx, dy = y + 0.5 - cy;
        const xr = (dx * cos + dy * sin) / a;
        const yr = (-dx * sin + dy * cos) / b;
        const rho2 = xr * xr + yr * yr;
        if (rho2 >= 1) continue;
        if (p.role === 'cracked') {
          // A crack from outside the rim to half a radius past the centre.
          const along = dx * ccos + dy * csin;
          const across = -dx * csin + dy * ccos;
          if (Math.abs(across) < crackHalfWidthPx && along > -1.1 * a && along < 0.5 * a) continue;
        }
        thickness[i] = 2 * cUm * Math.sqrt(1 - rho2);
        soc[i] = particleSoc(p, xr, Math.sqrt(rho2));
        particle[i] = p.id;
      }
    }
  }
  return { thickness, soc, particle };
}

const CORNER_R2 = 2 * 0.55 * 0.55;

function checkOptions(o: NiTxmOptions): void {
  for (const k of ['width', 'height'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new RangeError(`makeNiTxmStack: ${k} must be a positive integer`);
  }
  if (o.i0Counts !== undefined && !(o.i0Counts > 0)) throw new RangeError('makeNiTxmStack: i0Counts must be > 0');
  if (o.darkCounts !== undefined && !(o.darkCounts >= 0)) throw new RangeError('makeNiTxmStack: darkCounts must be >= 0');
}

/** Generates the stack; 256 x 256 x 101 with noise takes well under a second. */
export function makeNiTxmStack(opts: NiTxmOptions): NiTxmStack {
  checkOptions(opts);
  const { width, height, noise } = opts;
  const i0 = opts.i0Counts ?? 20000;
  const darkMean = opts.darkCounts ?? 100;
  const energies = Float64Array.from(opts.energies ?? niTxmEnergies());
  for (let e = 1; e < energies.length; e++) {
    if (!(energies[e] > energies[e - 1])) throw new RangeError('makeNiTxmStack: energies must be strictly increasing');
  }
  const P = NI_TXM_PHYSICS;
  const truth = paintParticles(width, height);
  const { thickness, soc } = truth;
  const nPix = width * height;
  const nE = energies.length;

  // Mild off-centre radial fall-off of the illumination, fixed for the whole scan; it reaches
  // illuminationFalloff at the farthest corner (0.55, 0.55 from the centre at 0.45, 0.55).
  const g = new Float64Array(nPix);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = (x + 0.5) / width - 0.45, v = (y + 0.5) / height - 0.55;
      g[y * width + x] = 1 - (P.illuminationFalloff * (u * u + v * v)) / CORNER_R2;
    }
  }
  const eSpan = energies[nE - 1] - energies[0] || 1;
  const { nio, linio2 } = loadNiReferences();

  const size = nE * nPix;
  const sample = new Float32Array(size);
  const flat = new Float32Array(size);
  const dark = new Float32Array(size);
  const absorbance = new Float32Array(size);
  const rng = makeRng(opts.seed);
  const drawDark = poissonSampler(rng, darkMean);
  for (let e = 0; e < nE; e++) {
    const E = energies[e];
    const muN = interpLinear(nio.energy, nio.mu, E);
    const dMu = interpLinear(linio2.energy, linio2.mu, E) - muN;
    const bg = P.matrixBgPerUm + P.matrixBgSlopePerUmPerEv * (E - P.eRefEv);
    const beam = i0 * (1 - (P.beamDrop * (E - energies[0])) / eSpan);
    const off = e * nPix;
    for (let p = 0; p < nPix; p++) {
      const t = thickness[p];
      const A = t > 0 ? P.film + t * (P.jumpPerUm * (muN + soc[p] * dMu) + bg) : P.film;
      const open = beam * g[p];
      const trans = open * Math.exp(-A);
      absorbance[off + p] = A;
      if (noise) {
        // The dark current during the sample and flat exposures is its own realisation, not
        // the dark frame's; a sum of Poisson variables is Poisson, so one draw each.
        sample[off + p] = rng.poisson(trans + darkMean);
        flat[off + p] = rng.poisson(open + darkMean);
        dark[off + p] = drawDark();
      } else {
        sample[off + p] = trans + darkMean;
        flat[off + p] = open + darkMean;
        dark[off + p] = darkMean;
      }
    }
  }
  return { energies, sample, flat, dark, absorbance, truth };
}
