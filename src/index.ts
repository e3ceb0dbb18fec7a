/// <reference types="@webgpu/types" preserve="true" />
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
export { runFit, type FitRunOptions } from './pipeline/fit-run.js';
export { fitStep, fitTileCpu, fitTileGpu, FIT_STATUS_NAMES } from './pipeline/fit-step.js';
export { parseModelSpec, PRESETS } from './models/model.js';
export { parseFitOptions } from './models/options.js';
export { runLcf, runSpectra, type LcfRunOptions, type SpectraRunOptions } from './pipeline/lcf-run.js';
export { lcfStep, LCF_STATUS_NAMES } from './pipeline/lcf-step.js';
export { renderRgbComposite } from './plot/maps.js';
export { loadReferences, parseRefSpec, readReferenceFile } from './io/references.js';
export { StxmStack } from './io/stxm.js';
export { opticalDensity } from './stack/od.js';
export { runPcaCommand, runClusterCommand } from './pipeline/cluster-run.js';
export { kmeansFit } from './pipeline/kmeans.js';
export { elbow } from './pipeline/elbow.js';
export { pcaRun } from './pipeline/pca.js';
export { featuresFromMaps } from './cpu/kmeans.js';
export { readFeatureMaps } from './pipeline/features.js';
export { clusterStats } from './pipeline/cluster-stats.js';
export { runRecipe, type RunRecipe } from './pipeline/run-recipe.js';
export { combineSteps, splitRun } from './pipeline/combine.js';
export { makeVkPtychoStack } from './synth/vk-ptycho.js';
export { runAlign, type AlignRunOptions } from './pipeline/align-run.js';
export { computeAlignment, alignedView, ALIGN_DEFAULTS, type AlignOptions, type Alignment } from './align/align.js';
export { ShiftedStack, commonArea } from './stack/shifted.js';
export { readShiftsCsv, shiftsCsv } from './io/shifts-csv.js';
// The in-memory entry points: typed arrays in, maps out; nothing written, no signal handlers.
export { edgeMaps, fitMaps, lcfMaps, type EdgeMapsOptions, type EdgeMapsResult, type EdgeMapName, type FitMapsOptions, type FitMapsResult, type LcfMapsOptions, type LcfMapsResult, type ReferenceArray, type PixelMaps, type BackendRecord } from './api/maps.js';
export { kmeans, pca, type KmeansMapsOptions, type KmeansMapsResult, type PcaOptions, type PcaResult } from './api/cluster.js';
export type { BackendOptions, CubeShape } from './api/options.js';
// What each command writes to summary.json (and its run function returns), as types.
export type {
  EdgeSummary, FitSummary, LcfSummary, SpectraCommandSummary, PcaSummary, ClusterSummary, AlignSummary, RunSummary, RunFieldSummary, BackendSummary, SummaryHead,
  RunStepHead, RunEdgeStepSummary, RunFitStepSummary, RunLcfStepSummary, RunClusterStepSummary, RunFieldPageSummary, RunCombinedPageSummary,
} from './pipeline/summary.js';
export type { EdgeRunReport } from './pipeline/edge-run.js';
export type { AlignRunReport } from './pipeline/align-run.js';
export type { RecipeForm } from './options/parse.js';
export type { AlignmentRecord } from './align/align.js';
export type { MemorySummary } from './pipeline/memory.js';
export type { KmeansOutputSummary } from './pipeline/cluster-outputs.js';
