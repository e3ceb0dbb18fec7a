/**
 * Fit-model components (src/models/components.ts): their analytic derivatives against finite
 * differences (TypeScript, float64), and their WGSL against their TypeScript on the GPU; the
 * two error functions against reference values.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { getGpu, type GpuContext } from '../../src/gpu/device.js';
import { BufferSet, readFloat32 } from '../../src/gpu/buffers.js';
import { encodeDispatch, type KernelDef } from '../../src/gpu/kernel.js';
import { COMPONENTS } from '../../src/models/components.js';
import type { ComponentDef, ParamRole } from '../../src/models/component.js';
import { erf64, ERF_F32_WGSL } from '../../src/models/erf.js';
import { makeRng } from '../../src/synth/random.js';

const SEED = 7151;
/** erf64 against 40-digit values: float64 rounding of the Clenshaw sums and exp (1.1e-16 seen). */
const ERF64_TOL = 3e-16;
/** erf_f32 against erf64: the fit's 1.3e-7 (one float32 ulp of 1) plus the GPU's exp and division. */
const ERF32_TOL = 2.5e-7;
/**
 * Central differences with step h = 1e-6 x the parameter's scale have a truncation error
 * ~h^2 f''' and a rounding error ~1e-16 / h relative to the function's scale: 1e-7 of the
 * scale (|value| + |derivative| x scale) leaves a wrong factor of 2 or a sign far outside.
 */
const FD_REL = 1e-7;
/**
 * WGSL (float32) against TypeScript (float64) for one component evaluation, relative to the
 * output's scale (|output| + 1). Float32 rounding of u = (t - c) / w, erf_f32's 1.3e-7 and the
 * shader's exp / atan give 7e-7 on llvmpipe; 3e-5 leaves room for GPUs whose exp and atan are
 * only as accurate as WGSL requires, and still fails a wrong term, constant or output order
 * (errors of 1e-2 and more).
 */
const WGSL_REL = 3e-5;

// erf at 40 digits (mpmath.erf), rounded to 20.
const ERF_REFERENCE: [number, number][] = [
  [-5.5, -0.99999999999999264215],
  [-3.2, -0.99999397423884823791],
  [-2.5, -0.99959304798255504106],
  [-1.7, -0.98379045859077456084],
  [-0.9, -0.79690821242283213966],
  [-0.3, -0.32862675945912741619],
  [1e-8, 1.1283791670955125599e-8],
  [0.05, 0.056371977797016626955],
  [0.5, 0.52049987781304653768],
  [0.875, 0.78407506105985965831],
  [1.0, 0.84270079294971486934],
  [1.3, 0.93400794494065244585],
  [2.0, 0.99532226501895273416],
  [2.9, 0.99995890212190054114],
  [3.0, 0.99997790950300141456],
  [3.7, 0.99999983284894209085],
  [4.5, 0.99999999980338395585],
  [6.0, 0.99999999999999997848],
  [6.4, 0.99999999999999999986],
];

describe('erf64', () => {
  test('matches 40-digit reference values', () => {
    for (const [x, ref] of ERF_REFERENCE) expect(Math.abs(erf64(x) - ref), `erf(${x})`).toBeLessThanOrEqual(ERF64_TOL);
  });
  test('is odd, bounded, and NaN-preserving', () => {
    for (let x = 0; x < 8; x += 0.37) {
      expect(erf64(-x)).toBe(-erf64(x));
      expect(Math.abs(erf64(x))).toBeLessThanOrEqual(1);
    }
    expect(erf64(0)).toBe(0);
    expect(erf64(Infinity)).toBe(1);
    expect(erf64(-Infinity)).toBe(-1);
    expect(erf64(NaN)).toBeNaN();
  });
  test('is continuous across its region boundaries', () => {
    for (const b of [1, 3, 6.5]) {
      const dx = 1e-9 * b;
      // The step across the boundary minus what the slope 2/sqrt(pi) exp(-x^2) accounts for.
      const jump = erf64(b + dx) - erf64(b - dx) - (4 / Math.sqrt(Math.PI)) * Math.exp(-b * b) * dx;
      expect(Math.abs(jump), `at ${b}`).toBeLessThan(1e-15);
    }
  });
});

/** Random parameter values for a role, in units where t runs over [-1, 1] (like the fit's). */
function randomParam(role: ParamRole, u: () => number): number {
  switch (role) {
    case 'energy': return -0.5 + u();
    case 'width': return 0.02 + 0.2 * u();
    case 'fraction': return u();
    case 'slope': return -1 + 2 * u();
    default: return 0.2 + 1.3 * u() * (u() < 0.2 ? -1 : 1);
  }
}

/** A scale for finite-difference steps of a role. */
function roleScale(role: ParamRole, value: number): number {
  return role === 'width' ? value : 1;
}

describe.each(COMPONENTS.map((c) => [c.kind, c] as [string, ComponentDef]))('component %s', (_kind, c) => {
  test('analytic partial derivatives match central differences', () => {
    const rng = makeRng(SEED + c.kind.length);
    const u = () => rng.uniform();
    const K = c.params.length;
    const p = new Float64Array(K);
    const d = new Float64Array(K);
    const scratch = new Float64Array(K);
    for (let trial = 0; trial < 300; trial++) {
      c.params.forEach((q, k) => (p[k] = randomParam(q.role, u)));
      const t = -1 + 2 * u();
      const f = c.evaluate(t, p, 0, d);
      for (let k = 0; k < K; k++) {
        const h = 1e-6 * roleScale(c.params[k].role, p[k]);
        const save = p[k];
        p[k] = save + h;
        const fp = c.evaluate(t, p, 0, scratch);
        p[k] = save - h;
        const fm = c.evaluate(t, p, 0, scratch);
        p[k] = save;
        const fd = (fp - fm) / (2 * h);
        const scale = Math.abs(f) + Math.abs(d[k]) * roleScale(c.params[k].role, p[k]) + 1e-3;
        expect(Math.abs(fd - d[k]) * roleScale(c.params[k].role, p[k]), `d/d${c.params[k].name} at t=${t}, p=${Array.from(p)} (seed ${SEED})`).toBeLessThanOrEqual(FD_REL * scale);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------
// WGSL against TypeScript on the GPU: one kernel evaluates every component (switch on a kind
// index) and erf_f32 at the same inputs.

const MAXK = Math.max(...COMPONENTS.map((c) => c.params.length));
const IN_STRIDE = 2 + MAXK; // kind, t, params
const OUT_STRIDE = 1 + MAXK;

function componentKernel(): KernelDef {
  const helpers = new Map<string, string>([['erf_f32', ERF_F32_WGSL]]);
  for (const c of COMPONENTS) for (const [n, code] of Object.entries(c.helpers ?? {})) helpers.set(n, code);
  const cases = COMPONENTS.map((c, ci) => {
    const args = c.params.map((_, k) => `inp[b + ${2 + k}u]`).join(', ');
    const stores = Array.from({ length: c.params.length + 1 }, (_, k) => `out[o + ${k}u] = r[${k}];`).join(' ');
    return `    case ${ci}u: { let r = cmp_${c.kind}(inp[b + 1u], ${args}); ${stores} }`;
  }).join('\n');
  const wgsl = `
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${[...helpers.values()].join('\n')}
${COMPONENTS.map((c) => c.wgsl).join('\n')}
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= params.n_invocations) { return; }
  let b = i * ${IN_STRIDE}u;
  let o = i * ${OUT_STRIDE}u;
  let kind = u32(inp[b]);
  if (kind == ${COMPONENTS.length}u) { out[o] = erf_f32(inp[b + 1u]); return; }
  switch kind {
${cases}
    default: { }
  }
}`;
  return { name: 'components_test', wgsl, bindings: [{ name: 'params', kind: 'uniform' }, { name: 'inp', kind: 'read-only-storage' }, { name: 'out', kind: 'storage' }], params: [] };
}

async function runKernel(ctx: GpuContext, inp: Float32Array, n: number): Promise<Float32Array> {
  const set = new BufferSet(ctx, 'componentsTest');
  try {
    const def = componentKernel();
    const inBuf = set.upload('inp', inp);
    const outBuf = set.storage('out', n * OUT_STRIDE * 4);
    const read = set.readback('out', n * OUT_STRIDE * 4);
    const enc = ctx.device.createCommandEncoder();
    await encodeDispatch(ctx, enc, def, n, {}, [inBuf, outBuf], set.buffers);
    enc.copyBufferToBuffer(outBuf, 0, read, 0, n * OUT_STRIDE * 4);
    ctx.device.queue.submit([enc.finish()]);
    return await readFloat32(ctx, read, n * OUT_STRIDE);
  } finally {
    await set.release();
  }
}

describe('WGSL against TypeScript on the GPU', () => {
  let gpu: GpuContext | null = null;
  beforeAll(async () => {
    gpu = await getGpu();
    expect(gpu, 'no WebGPU adapter (llvmpipe expected)').not.toBeNull();
  });

  test('every component: value and partial derivatives', async () => {
    const rng = makeRng(SEED);
    const u = () => rng.uniform();
    const perKind = 2000;
    const n = perKind * COMPONENTS.length;
    const inp = new Float32Array(n * IN_STRIDE);
    for (let ci = 0; ci < COMPONENTS.length; ci++) {
      const c = COMPONENTS[ci];
      for (let j = 0; j < perKind; j++) {
        const b = (ci * perKind + j) * IN_STRIDE;
        inp[b] = ci;
        inp[b + 1] = -1 + 2 * u();
        c.params.forEach((q, k) => (inp[b + 2 + k] = randomParam(q.role, u)));
      }
    }
    const out = await runKernel(gpu!, inp, n);
    const d = new Float64Array(MAXK);
    for (let ci = 0; ci < COMPONENTS.length; ci++) {
      const c = COMPONENTS[ci];
      let worst = 0;
      for (let j = 0; j < perKind; j++) {
        const i = ci * perKind + j;
        const b = i * IN_STRIDE;
        // The inputs as the GPU saw them (float32).
        const p = Float64Array.from({ length: c.params.length }, (_, k) => inp[b + 2 + k]);
        const f = c.evaluate(inp[b + 1], p, 0, d);
        const ref = [f, ...Array.from(d.subarray(0, c.params.length))];
        for (let k = 0; k < ref.length; k++) {
          const scale = k === 0 ? Math.abs(f) + 1 : (Math.abs(ref[k]) + 1) * roleScale(c.params[k - 1].role, p[k - 1]);
          const err = (Math.abs(out[i * OUT_STRIDE + k] - ref[k]) * (k === 0 ? 1 : roleScale(c.params[k - 1].role, p[k - 1]))) / scale;
          worst = Math.max(worst, err);
          expect(err, `${c.kind} output ${k} at t=${inp[b + 1]}, p=${Array.from(p)}: GPU ${out[i * OUT_STRIDE + k]}, TS ${ref[k]}`).toBeLessThanOrEqual(WGSL_REL);
        }
      }
      console.log(`${c.kind}: worst relative difference WGSL vs TypeScript ${worst.toExponential(2)}`);
    }
  });

  test('erf_f32 against erf64', async () => {
    const n = 24001;
    const inp = new Float32Array(n * IN_STRIDE);
    for (let i = 0; i < n; i++) {
      inp[i * IN_STRIDE] = COMPONENTS.length;
      inp[i * IN_STRIDE + 1] = -6 + (12 * i) / (n - 1);
    }
    const out = await runKernel(gpu!, inp, n);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const x = inp[i * IN_STRIDE + 1];
      worst = Math.max(worst, Math.abs(out[i * OUT_STRIDE] - erf64(x)));
    }
    console.log(`erf_f32: largest absolute error ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(ERF32_TOL);
  });
});
