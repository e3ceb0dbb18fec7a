// kmeans_partial: per-workgroup partial sums for the centre update (no float atomics).
//
// Bindings: 0 params (uniform, generated), 1 feat: raw features f32[d][n_pixels],
//           2 aux: as in kmeans_assign.wgsl (shift, inv_scale, centres [d][kp], active),
//           3 assign: f32[KM_ROWS][n_pixels] from kmeans_assign.wgsl,
//           4 partials: f32[n_groups][k][f_wg].
// Entries: cluster j has m = d + 2 entries f:
//   f < d:  sum over its pixels of (z_f - c_jf)   (deviations from the centre used, small),
//   f = d:  the pixel count,   f = d + 1: the sum of squared distances (its WCSS share).
// Workgroup w = chunk * n_fblocks + fb covers entries f in [fb*f_wg, (fb+1)*f_wg) of every
// cluster over one chunk of pixels. Invocation t owns entry f = fb*f_wg + t % f_wg and
// slice s = t / f_wg (s < slices; the rest idle). Per batch of KM_WG pixels the labels
// are staged in workgroup memory; invocation (f, s) takes the batch's pixels b = s, s+S, ...
// and adds its value to bins[s][label][f] in workgroup memory. Only that invocation
// writes that bin, so no atomics are needed; the invocations of one SIMD group hold
// consecutive f for the same pixel, so they agree on the label (no divergence) and hit
// consecutive bins (no bank conflicts). Each (pixel, entry) value is read once in all.
// At the end of the chunk the slices are added and k * f_wg partials written.
// Accuracy: sums of deviations carry no offset; each bin collects about
// chunk / (slices * k) values (hundreds at most with the host's chunk sizes), and the
// host adds the workgroups' partials in float64. CPU twin: kmeansPartialCpu in src/cpu/kmeans.ts.
// Cost on an H100 (3.35 TB/s), 2e7 pixels, d = 101: per pixel 4d B of features + 8 B of
// assignment read (the same bytes as kmeans_assign: one Lloyd step reads the features
// twice, ~5 ms), d + 2 workgroup-memory additions; memory-bound. The partials (bounded by
// KM_TARGET_PARTIALS per tile) are added on the device by kmeans_reduce.wgsl.

@group(0) @binding(1) var<storage, read> feat: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read> assign: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

var<workgroup> lab: array<i32, KM_WG>;
var<workgroup> bins: array<f32, KM_BINS>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wgid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  // Workgroup-uniform: the whole workgroup leaves together, before any barrier.
  let w = wgid.y * nwg.x + wgid.x;
  if (w >= params.n_groups) { return; }
  let P = params.n_pixels;
  let d = params.d;
  let k = params.k;
  let fw = params.f_wg;
  let S = params.slices;
  let chunk_i = w / params.n_fblocks;
  let fb = w % params.n_fblocks;
  let fl = t % fw;
  let s = t / fw;
  let f = fb * fw + fl;
  let works = s < S && f < d + 2u;
  var shift = 0.0;
  var inv_scale = 0.0;
  if (works && f < d) {
    shift = aux[f];
    inv_scale = aux[d + f];
  }
  let n_bins = S * k * fw;
  for (var q = t; q < n_bins; q += KM_WG) { bins[q] = 0.0; }

  let p_begin = chunk_i * params.chunk;
  let p_end = min(p_begin + params.chunk, P);
  for (var p0 = p_begin; p0 < p_end; p0 += KM_WG) {
    let pt = p0 + t;
    var l = -1;
    if (pt < p_end) { l = i32(assign[KM_ROW_LABEL * P + pt]); }
    lab[t] = l;
    workgroupBarrier();
    if (works) {
      for (var b = s; b < KM_WG; b += S) {
        let j = lab[b];
        if (j < 0) { continue; }
        let q = p0 + b;
        var v: f32;
        if (f < d) {
          v = (feat[f * P + q] - shift) * inv_scale - aux[2u * d + f * params.kp + u32(j)];
        } else if (f == d) {
          v = 1.0;
        } else {
          v = assign[KM_ROW_DIST2 * P + q];
        }
        let at = (s * k + u32(j)) * fw + fl;
        bins[at] += v;
      }
    }
    workgroupBarrier();
  }
  // (Also orders the zeroing above before these reads should a chunk hold no batch.)
  workgroupBarrier();

  for (var q = t; q < k * fw; q += KM_WG) {
    var acc = 0.0;
    for (var ss = 0u; ss < S; ss++) { acc += bins[ss * k * fw + q]; }
    partials[w * k * fw + q] = acc;
  }
}
