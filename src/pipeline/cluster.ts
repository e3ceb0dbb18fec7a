/**
 * Chemical domains: the library behind `xanes pca` and `xanes cluster`.
 *
 *  inputs   readFeatureMaps(files, names?)               --features a.npy,b.tif
 *           featurePathsFromDir(dir, names)              --from DIR --features e0_half,...
 *           featuresFromStack(source, energies)          whole spectra; featuresFromMaps(pca.scores)
 *  k-means  kmeansFit(backend, features, opts)           one k, restarts, best WCSS
 *           kmeansFromCentres(backend, features, ...)    one Lloyd run from given centres
 *           elbow(backend, features, ks, opts)           { table: {k, wcss}[], k, rule } (Kneedle)
 *           parseKRange('2:12'), kneedle(table)
 *           prepareKmeans + fitPrepared                  several k on one upload (what elbow does)
 *           kmeansAssignStep(model)                      PixelStep: labels of new pixels
 *  stats    clusterStats(labels, k, weight?)             counts, fractions, weighted fractions
 *           clusterSpectra(source, labels, k)            mean +/- std spectrum per cluster
 *  PCA      pcaRun(backend, source, energies, n, opts)   two streamed passes + outputs
 *           pcaProjectStep(model, n)                     PixelStep: scores + error
 *  outputs  writeKmeansOutputs(dir, result, {...}) writes them all and returns summary.json
 *           fields; or one by one: writeLabels, writeMap, centresCsv, clusterStatsCsv,
 *           elbowCsv, renderElbowPng, renderLabelsPng, clusterSpectraCsv,
 *           renderClusterSpectraPng, screeCsv, renderScreePng, componentsCsv, renderMapAuto
 *  bench    benchKmeansIteration, benchPcaCovariance (timing lives here, not in tests)
 *
 * This module only gathers them; each job lives in its own file:
 *   features.ts        feature inputs            kmeans.ts        k-means (fit, restarts)
 *   elbow.ts           choosing k (Kneedle)      kmeans-step.ts   labels of new pixels (PixelStep)
 *   cluster-stats.ts   counts, cluster spectra   pca.ts           PCA over a stack
 *   cluster-outputs.ts files of cluster and pca  cluster-bench.ts benchmark entry points
 *   ../io/maps.ts, ../io/cluster-csv.ts          map and table writers
 *   ../plot/cluster.ts                           the pictures
 */
export type { Features, FeatureView, Standardization } from '../cpu/kmeans.js';
export { featuresFromMaps } from '../cpu/kmeans.js';
export type { PcaModel, ExplainedRow } from '../cpu/pca.js';
export * from './features.js';
export * from './kmeans.js';
export * from './elbow.js';
export * from './kmeans-step.js';
export * from './pca.js';
export * from './cluster-stats.js';
export * from './cluster-outputs.js';
export * from './cluster-bench.js';
export { labelsToInt16, writeLabels, writeMap } from '../io/maps.js';
export { centresCsv, clusterStatsCsv, elbowCsv, clusterSpectraCsv, screeCsv, componentsCsv } from '../io/cluster-csv.js';
export {
  renderElbowPng, LABEL_COLORS, labelColor, renderLabelsPng, renderClusterSpectraPng, renderScreePng, renderMapAuto,
} from '../plot/cluster.js';
