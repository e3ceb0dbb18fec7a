// pca_mask_direct: pca_mask.wgsl's rule (a pixel takes part in PCA when every value of its
// spectrum is finite and of magnitude below params.max_abs, PCA_MAX_ABS) for the texture
// layout of pca_cov_direct.wgsl, the covariance shape for CPU-emulated adapters (llvmpipe).
//
// Bindings: 0 params (uniform, generated),
//           1 cube: texture_storage_2d<rgba32float, read>, the tile as texels of 4 consecutive pixels
//             of one energy: texel t (pixels 4t..4t+3) of energy e at x = t % TEX_W,
//             y = e * rpe + t / TEX_W (rpe texture rows per energy; src/kernels/pca.ts
//             writes it from a mapped staging buffer with copyBufferToTexture),
//           2 mask: texture_storage_2d<rgba32float, write>: texel t at (t % TEX_W, t / TEX_W)
//             holds the masks of its 4 pixels, 1 = usable, 0 = not (or past the tile's end).
// One invocation = one texel (4 pixels): d texel fetches. llvmpipe fetches a texel per lane in
// ~3-4 ns of CPU, where a storage-buffer load costs ~7 ns per value (a per-lane loop with bounds
// checks): reading the tile from the texture is ~8x cheaper than pca_mask's buffer loads.
// No early exit: a break would be a divergent loop exit for 4 pixels at once and unusable
// pixels are rare.
// Cost on an H100 (not the shape used there: a GPU runs pca_mask): per pixel 4d B read, 4 B
// written; memory-bound, 2e7 x 101: 8.1 GB -> 2.4 ms at 3.35 TB/s.
// CPU twin: pcaGramCpu in src/cpu/pca.ts (same rule).

@group(0) @binding(1) var cube: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var mask: texture_storage_2d<rgba32float, write>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear_index(gid, nwg);
  if (t >= params.n_invocations) { return; }
  let x = t % TEX_W;
  let k = t / TEX_W;
  var ok = vec4<bool>(true);
  for (var e = 0u; e < params.d; e++) {
    let v = textureLoad(cube, vec2u(x, e * params.rpe + k));
    // Bit patterns, not isnan: fast-math may not fold them away (see is_finite_f32).
    let finite = (bitcast<vec4u>(v) & vec4u(0x7f800000u)) != vec4u(0x7f800000u);
    ok = ok & finite & (abs(v) < vec4f(params.max_abs));
  }
  // Pixels past the tile's end (the last texel's unused lanes) never take part.
  let p = vec4u(4u * t) + vec4u(0u, 1u, 2u, 3u);
  ok = ok & (p < vec4u(params.n_pixels));
  textureStore(mask, vec2u(x, k), select(vec4f(0.0), vec4f(1.0), ok));
}
