/**
 * Numbers shared by the WGSL kernels and their CPU twins: per-pixel status codes and the
 * row order of struct-of-arrays outputs ([row][pixel]). The WGSL sees them as generated
 * constants (src/gpu/kernel.ts), so they are written only here.
 */

/** Per-pixel status of normalize + edge (the `status` map, uint8). */
export const EdgeStatus = {
  OK: 0,
  /** Too few finite points in the pre- or post-edge window (all-NaN pixels land here). */
  NO_DATA: 1,
  /** Edge step below mask-sigma x pre-edge noise, or not positive (flat or inverted). */
  LOW_STEP: 2,
  /** No crossing of 0.5 by the normalised spectrum. */
  NO_EDGE: 3,
} as const;
export const EDGE_STATUS_NAMES = ['ok', 'no_data', 'low_step', 'no_edge'] as const;

/** Rows of the normalize kernel's per-pixel output. */
export const NormRow = {
  STATUS: 0,
  /** pre-edge line: a + b u, u = (x - pre.centre) / pre.scale (the plan's basis) */
  PRE_A: 1,
  PRE_B: 2,
  /** post - pre (larch's post-edge polynomial of mu - pre): c0 + c1 v + c2 v^2, v = (x - post.centre) / post.scale */
  POST_C0: 3,
  POST_C1: 4,
  POST_C2: 5,
  /** edge step: post - pre at the pixel's own e0 (E0_OWN) */
  STEP: 6,
  NOISE: 7,
  /** x (eV from the plan's e0) of the pixel's derivative maximum; NaN if none */
  E0_DERIV: 8,
  /** x of the grid energy the windows and the step were taken from (nearest E0_DERIV) */
  E0_OWN: 9,
} as const;
export const NORM_ROWS = 10;

/** Rows of the edge kernel's per-pixel output. */
export const EdgeRow = {
  E0_HALF: 0,
  E0_DERIV: 1,
  WL_ENERGY: 2,
  WL_HEIGHT: 3,
} as const;
export const EDGE_ROWS = 4;

/** All of the above as WGSL constants. */
export function layoutConstants(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(EdgeStatus)) out[`STATUS_${k}`] = v;
  for (const [k, v] of Object.entries(NormRow)) out[`NORM_${k}`] = v;
  for (const [k, v] of Object.entries(EdgeRow)) out[`EDGE_${k}`] = v;
  out.NORM_ROWS = NORM_ROWS;
  out.EDGE_ROWS = EDGE_ROWS;
  out.SINGULAR_REL = SINGULAR_REL;
  out.STEP_MIN_REL = STEP_MIN_REL;
  return out;
}

/**
 * Relative pivot below which a window's normal equations count as singular. The basis
 * variables run over [-1, 1], so any window with >= 3 distinct energies is far above it;
 * it only catches windows whose finite points collapse to one energy.
 */
export const SINGULAR_REL = 1e-6;

/**
 * An edge step must also exceed this fraction of the pre-edge level at e0 to count: float32
 * rounding of order-one values is ~1e-7, so a flat spectrum can show a "step" of that size
 * with a noise estimate that is smaller still; no measurable edge is below 1e-5 of the
 * absorbance under it.
 */
export const STEP_MIN_REL = 1e-5;
