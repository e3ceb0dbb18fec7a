/**
 * The library API under the `xanes` command (bundled as dist/index.js by `npm install`).
 */
export { runEdge, type EdgeRunOptions } from './pipeline/edge-run.js';
export { makeEdgePlan, derivativeMaxEnergy, DEFAULT_EDGE_OPTIONS, type EdgeOptions, type EdgePlan } from './pipeline/edge-plan.js';
export { edgeStep, EDGE_MAP_NAMES, EDGE_MAP_UNITS } from './pipeline/edge-step.js';
export { runTiles, tileBudget, type RunResult } from './pipeline/run-tiles.js';
export { selectBackend, cpuBackend, type BackendChoice } from './pipeline/backend.js';
export type { Backend, PixelStep, TileResult } from './pipeline/step.js';
export { openStack, MemoryStack, type StackSource } from './stack/source.js';
export { AbsorbanceStack } from './stack/absorbance.js';
export { readEnergies } from './io/energies.js';
export { readNpy, writeNpy } from './io/npy.js';
export { writeTiffFloat32, writeTiffStack } from './io/tiff.js';
export { InputError } from './io/errors.js';
export { getGpu } from './gpu/device.js';
export { makeNiTxmStack } from './synth/ni-txm.js';
export { SyntheticStream } from './synth/stream.js';
