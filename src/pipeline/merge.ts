/**
 * `xanes merge STUDY`: the products over fields of a study run as shards (src/pipeline/study.ts),
 * byte for byte those of one `xanes run` with the same recipe and seed (src/pipeline/combined.ts):
 *  1. Every shard manifest names the same fields and options; every field of the study is
 *     finished (its field.json), and no field is owned by two shards. Otherwise one error line
 *     naming the missing or unfinished fields (exit 2), and nothing is written.
 *  2. combined/: the e0 histogram from the fields' e0 bin counts; k-means across fields
 *     (src/pipeline/combined.ts: centres fitted on at most cluster.fitSample pixels drawn
 *     field by field, then every pixel labelled field by field: one field's maps in memory
 *     at a time, planned within --memory before anything is written), built in
 *     combined.partial-<host>-<pid> and renamed into place.
 *  3. Labels per field (<field>/cluster/, each built aside and renamed), unless --no-labels:
 *     then `xanes run RECIPE --assign-from STUDY/combined/cluster --shard i/n` labels them.
 *  4. summary.json (the study's fields, the products, the shards), written last.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InputError } from '../io/errors.js';
import { OutputDir, realLocation } from '../io/outdir.js';
import { onInterrupt } from '../io/interrupt.js';
import { parseCountsCsv } from '../plot/histogram.js';
import { selectBackend, type BackendChoice } from './backend.js';
import { E0_BIN_EV, writeE0Histogram, writeClusterProducts, fieldContextOf, combinedClusterPlan, checkCombinedBudget, type ClusterFieldSource, type ClusterSettings, type FieldClusterCounts } from './combined.js';
import { baselineBytes } from './run-tiles.js';
import { checkBudgetFitsMachine, memorySummary, workerBytes } from './memory.js';
import { memoryBytes } from '../options/convert.js';
import type { Backend } from './step.js';
import { fieldState, isStudy, readManifests, sameRecord, writeAtomic, type StudyField } from './study.js';
import { clusterFieldSource, updateFieldPage, combinedPageSummary } from './run-recipe.js';
import { writeIndexPage } from '../report/index-page.js';
import { VERSION } from '../version.js';
import { writeResultsH5, type ResultsContext } from '../io/results-h5.js';
import { EDGE_MAP_UNITS } from './edge-step.js';

export interface MergeOptions {
  backend?: BackendChoice;
  threads?: number;
  /** Fit the centres only; label the fields later with `xanes run --assign-from`. */
  noLabels?: boolean;
  /** --memory, bytes (default DEFAULT_MEMORY_MIB): the k-means across fields is planned within it. */
  budgetBytes?: number;
  notice?: (line: string) => void;
}

/** What writing results.h5 holds beside the maps: h5wasm's code and heap (src/pipeline/memory.ts). */
const RESULTS_H5_BYTES = 32 * 2 ** 20;

/** At most this many field names in the error line (then "... and N more"). */
const MAX_NAMED = 12;

export async function mergeStudy(studyArg: string, o: MergeOptions = {}): Promise<Record<string, unknown>> {
  const notice = o.notice ?? ((l: string) => process.stderr.write(`${l}\n`));
  const t0 = performance.now();
  if (!fs.existsSync(studyArg) || !fs.statSync(studyArg).isDirectory()) throw new InputError(studyArg, 'no such study folder');
  const study = realLocation(studyArg);
  if (!isStudy(study)) throw new InputError(studyArg, 'is not a study folder of xanes run --shard (no study marker)');
  const manifests = readManifests(study);
  if (manifests.length === 0) throw new InputError(studyArg, 'no shard has started here (shards/ is empty)');
  const first = manifests[0].m;
  for (const { file, m } of manifests) {
    if (!sameRecord(m.fields, first.fields)) throw new InputError(file, `names other fields than ${path.basename(manifests[0].file)}: shards of different recipes in one study; use one --out per study`);
    if (!sameRecord(m.options, first.options) || !sameRecord(m.steps, first.steps)) throw new InputError(file, `has other options than ${path.basename(manifests[0].file)}: shards of different recipes in one study; use one --out per study`);
  }
  const fields: StudyField[] = first.fields;
  // Every field owned by exactly one shard of one array.
  const owner = new Map<string, string>();
  for (const { m } of manifests) {
    for (const name of m.mine) {
      const here = `${m.shard.index}/${m.shard.count}`;
      const was = owner.get(name);
      if (was !== undefined && was !== here) throw new InputError(studyArg, `field ${name} is claimed by shards ${was} and ${here}: shard manifests of two different arrays (remove the older shards/*.json and rerun with --resume)`);
      owner.set(name, here);
    }
  }
  const bad: string[] = [];
  const records: Record<string, unknown>[] = [];
  for (const f of fields) {
    const st = fieldState(study, f.name);
    if (st.state === 'finished') records.push(st.record);
    else bad.push(`${f.name} (${st.why}${owner.has(f.name) ? `, shard ${owner.get(f.name)}` : ', no shard has started it'})`);
  }
  if (bad.length > 0) {
    const named = bad.slice(0, MAX_NAMED).join(', ') + (bad.length > MAX_NAMED ? `, ... and ${bad.length - MAX_NAMED} more` : '');
    throw new InputError(studyArg, `${bad.length} of ${fields.length} fields are not finished: ${named}; rerun the shards with --resume, then merge`);
  }
  const e0s = new Set(records.map((r) => r.e0_eV));
  if (e0s.size > 1) throw new InputError(studyArg, `the fields used different nominal edges (${[...e0s].join(', ')} eV); rerun the study with --e0`);

  const steps = first.steps;
  const budgetBytes = o.budgetBytes ?? memoryBytes(undefined);
  checkBudgetFitsMachine(budgetBytes);
  // The clustering's backend and memory plan, checked before anything is written.
  let cluster: { c: ClusterSettings; backend: Backend; sources: ClusterFieldSource[]; plannedBytes: number } | null = null;
  let backendInfo: Record<string, unknown> = {};
  if (steps.includes('cluster')) {
    const c = first.cluster as ClusterSettings;
    // The recipe's backend and threads unless --backend/--threads say otherwise: k-means gives
    // the same bytes as the single run on the backend that run used (and the same records).
    const sel = await selectBackend(o.backend ?? (first.options.backend as BackendChoice | undefined) ?? 'auto', notice, 'pixels', o.threads ?? first.threads);
    backendInfo = { name: sel.backend.name, adapter: sel.backend.adapter };
    const sources = fields.map((f, i) => clusterFieldSource(study, f.name, c.features, c.weight ?? null, fieldContextOf(records[i])));
    // results.h5 afterwards: HDF5's WebAssembly heap (~30 MiB) and the largest map's copy in it.
    const h5Bytes = RESULTS_H5_BYTES + 4 * Math.max(...sources.map((s) => s.width * s.height));
    const plannedBytes = checkCombinedBudget(combinedClusterPlan(c, sources, { fit: true, labels: !o.noLabels, heap: !sel.backend.gpu }), sources.length, c.features.length, baselineBytes() + workerBytes(sel.backend), budgetBytes, h5Bytes);
    cluster = { c, backend: sel.backend, sources, plannedBytes };
  }
  const combinedSummary: Record<string, unknown> = {};
  const combined = OutputDir.createPart(study, 'combined');
  const clusterParts: OutputDir[] = [];
  const clusterCounts = new Map<string, FieldClusterCounts>();
  const h5Part = `results.h5.partial-${os.hostname()}-${process.pid}`;
  const release = onInterrupt(() => {
    [combined, ...clusterParts].forEach((d) => d.abandon());
    fs.rmSync(path.join(study, h5Part), { force: true });
  });
  try {
    // The e0 histogram from each field's bin counts, in the study's field order.
    if (steps.includes('edge')) {
      const counts = fields.map((f) => {
        const file = path.join(study, f.name, 'edge', 'e0_counts.csv');
        let text: string;
        try {
          text = fs.readFileSync(file, 'utf8');
        } catch {
          throw new InputError(file, 'missing: the field has no e0 bin counts (written by xanes run from this version on)');
        }
        const c = parseCountsCsv(text, E0_BIN_EV);
        if (!c) throw new InputError(file, 'not an e0 bin count table (bin_start,bin_end,count)');
        return c;
      });
      Object.assign(combinedSummary, await writeE0Histogram(counts, fields.length, combined.tmp));
    }
    if (cluster) {
      combinedSummary.cluster = await writeClusterProducts(cluster.backend, cluster.c, cluster.sources, {
        combinedDir: combined.tmp,
        fieldClusterDir: o.noLabels ? null : (name) => {
          const d = OutputDir.createPart(path.join(study, name), 'cluster');
          clusterParts.push(d);
          return d.tmp;
        },
        onField: (name, counts) => {
          clusterCounts.set(name, counts);
          const r = records.find((x) => x.field === name);
          if (r) r.steps = { ...(r.steps as object), cluster: counts };
        },
      });
    }
    fs.writeFileSync(path.join(combined.tmp, 'summary.json'), JSON.stringify(combinedPageSummary(fields.length, combinedSummary), null, 2) + '\n');
    writeIndexPage(combined.tmp, 'combined');
    combined.commit();
    for (const d of clusterParts) d.commit();
    for (const [name, counts] of clusterCounts) updateFieldPage(study, name, counts);
    const spectra = records.reduce((acc, r) => acc + ((r.shape as { height: number; width: number }).height * (r.shape as { width: number }).width), 0);
    const seconds = (performance.now() - t0) / 1000;
    // The study's summary.json as a run's (its overview page, `xanes report`), with the shards.
    const fieldRecords = records.map(({ energies: _e, e0_eV: _e0, tool: _t, version: _v, finished: _f, results_h5: _h, recipe: _rc, ...r }) => r);
    const summary = {
      tool: 'xanes-engine', version: VERSION, command: 'run', finished: true,
      steps, fields: fieldRecords, combined: combinedSummary,
      merged: {
        labels: o.noLabels ? 'not written: xanes run --assign-from combined/cluster' : 'written',
        shards: manifests.map(({ m }) => ({ ...m.shard, fields: m.mine, skipped: m.skipped, host: m.host, started: m.started, ended: m.ended ?? null, finished: m.finished })),
      },
      options: first.options, parameters: { e0_eV: records[0]?.e0_eV },
      backend: backendInfo, spectra,
      timings_s: { merge: seconds, total: seconds, spectra_per_s: spectra / seconds },
      memory: memorySummary(budgetBytes, cluster ? { planned_peak_MiB: Math.ceil(cluster.plannedBytes / 2 ** 20) } : {}),
      map_units: { edge: EDGE_MAP_UNITS },
    };
    // results.h5 of the whole study, as a single run writes it (src/io/results-h5.ts): built
    // aside and renamed, then summary.json last.
    await writeResultsH5(study, studyResultsContext(study, records), { summary, file: h5Part });
    fs.renameSync(path.join(study, h5Part), path.join(study, 'results.h5'));
    writeAtomic(path.join(study, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    writeIndexPage(study, path.basename(study));
    return summary;
  } catch (e) {
    combined.abandon();
    clusterParts.forEach((d) => d.abandon());
    fs.rmSync(path.join(study, h5Part), { force: true });
    throw e;
  } finally {
    release();
  }
}

/**
 * What the study's results.h5 needs beyond its files: each field's input (stack, energies,
 * pixel size, how it was read) and status names, from its field.json; leftover partial
 * folders of killed shards are left out.
 */
function studyResultsContext(study: string, records: Record<string, any>[]): ResultsContext {
  const ctx: ResultsContext = { inputs: new Map(), statusNames: new Map(), exclude: new Set(fs.readdirSync(study).filter((n) => n.includes('.partial-'))) };
  for (const r of records) {
    const h = r.results_h5 ?? {};
    ctx.inputs.set(r.field, { stack: r.stack, energies: Float64Array.from(r.energies ?? []), pixelSizeUm: h.pixel_size_um ?? undefined, volume: h.volume ?? undefined, read: r.read });
    for (const [step, names] of Object.entries((h.status_names ?? {}) as Record<string, string[]>)) ctx.statusNames.set(`${r.field}/${step}`, names);
  }
  return ctx;
}
