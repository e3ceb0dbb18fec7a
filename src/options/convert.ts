/**
 * Schema values (./schema.ts) to the library's option objects, and back to the recipe form
 * summary.json records ("options"): one set of names in and out.
 */
import { DEFAULT_EDGE_OPTIONS, type EdgeOptions } from '../pipeline/edge-plan.js';
import { parseMemoryMiB } from '../stack/tiles.js';
import type { SectionValues, Values } from './schema.js';
import type { StackInputs } from '../pipeline/inputs.js';

/** --pre/--post/--edge-window/... as the edge plan's fields (post "end" = to the end of the scan). */
export function edgeOptionsOf(edge: SectionValues<'edge'>, e0?: number): Partial<EdgeOptions> {
  const e: Partial<EdgeOptions> = {};
  if (e0 !== undefined) e.e0 = e0;
  if (edge.pre) [e.pre1, e.pre2] = edge.pre as [number, number];
  if (edge.post) {
    e.norm1 = edge.post[0];
    e.norm2 = edge.post[1] === 'end' ? Infinity : edge.post[1];
  }
  if (edge.nnorm !== undefined) e.nnorm = edge.nnorm;
  if (edge.maskSigma !== undefined) e.maskSigma = edge.maskSigma;
  if (edge.edgeWindow) [e.edge1, e.edge2] = edge.edgeWindow as [number, number];
  if (edge.derivSmooth !== undefined) e.derivSmooth = edge.derivSmooth;
  if (edge.whitelineWidth !== undefined) e.whitelineWidth = edge.whitelineWidth;
  return e;
}

/** The edge options a run used, in the schema's names (summary.json "options"). */
export function edgeSectionOf(o: EdgeOptions): SectionValues<'edge'> {
  return {
    pre: [o.pre1, o.pre2], post: [o.norm1, Number.isFinite(o.norm2) ? o.norm2 : 'end'], nnorm: o.nnorm, maskSigma: o.maskSigma,
    edgeWindow: [o.edge1, o.edge2], derivSmooth: o.derivSmooth as 1 | 3 | 5 | 7, whitelineWidth: o.whitelineWidth,
  };
}

export const DEFAULT_EDGE_SECTION = edgeSectionOf(DEFAULT_EDGE_OPTIONS);

/** --memory (MiB) in bytes, the default when absent. */
export const memoryBytes = (mib: number | undefined): number => parseMemoryMiB(mib === undefined ? undefined : String(mib));

/** The stack inputs of the common options. */
export function stackInputsOf(stack: string, c: Values['common']): StackInputs {
  return { stack, energies: c.energies, energyUnit: c.energyUnit, flat: c.flat, dark: c.dark, noFlat: c.noFlat, pixelSize: c.pixelSize, i0: c.i0, i0Region: c.i0Region };
}
