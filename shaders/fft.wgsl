// fft: one radix-2 Stockham autosort stage (Govindaraju et al., SC 2008) on many lines of a
// complex array: the 2-D FFT is log2(nx) stages along rows then log2(ny) along columns,
// ping-ponging between two buffers (src/kernels/fft.ts). Forward exp(-2 pi i kn/N) unscaled;
// the inverse uses sign = -1 (conjugate twiddles) and scale = 1/(nx ny) on its last stage.
//
// Bindings: 0 params, 1 src: vec2f complex, 2 dst: vec2f complex, 3 tw: exp(-2 pi i m / n)
//           for m in [0, n/2), computed in float64 on the host and rounded once.
// Layout: element e of line l at l * line_stride + e * elem_stride (rows: 1, nx; columns: nx, 1).
// One invocation = one butterfly: j in [0, n/2) of one line, k = j mod ns,
//   a = src[j], b = tw[k n / 2ns] * src[j + n/2], dst[2(j-k)+k] = a + b, dst[2(j-k)+k+ns] = a - b.
// Accuracy: float32; twiddles from the table (no sin/cos on the GPU); error grows ~log2(n) ulp.
// CPU twin: src/cpu/fft.ts (fftStageCpu, fft2Cpu).

@group(0) @binding(1) var<storage, read> src: array<vec2f>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec2f>;
@group(0) @binding(3) var<storage, read> tw: array<vec2f>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= params.n_invocations) { return; }
  let half = params.n / 2u;
  let line = i / half;
  let j = i % half;
  let ns = params.ns;
  let k = j & (ns - 1u);
  let t = tw[k * params.tw_stride];
  let w = vec2f(t.x, params.sign * t.y);
  let base = line * params.line_stride;
  let es = params.elem_stride;
  let a = src[base + j * es];
  let x = src[base + (j + half) * es];
  let b = vec2f(w.x * x.x - w.y * x.y, w.x * x.y + w.y * x.x);
  let o = 2u * (j - k) + k;
  dst[base + o * es] = (a + b) * params.scale;
  dst[base + (o + ns) * es] = (a - b) * params.scale;
}
