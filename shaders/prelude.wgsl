// Shared by every kernel (spliced in after the generated Params struct).
// WG is the workgroup size, set per pipeline as an override so one shader serves any size.
override WG: u32 = 64;

// Linear invocation index for a grid folded into y beyond 65,535 workgroups
// (src/gpu/kernel.ts foldDispatch). Callers return early when index >= params.n_invocations.
fn linear_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.y * (nwg.x * WG) + gid.x;
}

// A quiet NaN. WGSL rejects NaN in constant expressions, so the bit pattern is made a
// runtime value through the uniform (n_invocations * 0u is 0 but not a constant).
fn nan_f32() -> f32 {
  return bitcast<f32>(0x7fc00000u + params.n_invocations * 0u);
}

// WGSL has no isnan; compare bit patterns so fast-math cannot fold the test away.
fn is_finite_f32(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}
