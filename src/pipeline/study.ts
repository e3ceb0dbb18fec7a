/**
 * A study run as shards (`xanes run --shard i/n`, one per Slurm array task) into one folder
 * on a shared file system, merged by `xanes merge` (src/pipeline/merge.ts).
 *
 * Layout of a study folder:
 *   .xanes-output              marker ({"layout": "study"}), made by the first shard to start
 *   shards/shard-<i>-of-<n>.json  each shard's manifest: every field of the study (name, stack,
 *                              size), the fields this shard owns, the recipe, "finished"
 *   <field>/                   as in a single run, plus field.json ("finished": true, the
 *                              recipe it was computed with (steps, options, cluster: --resume
 *                              refuses a field of another recipe); written last) and the
 *                              folder's own marker; built in
 *                              <field>.partial-<host>-<pid> and renamed into place whole
 *   combined/, summary.json    written by `xanes merge` (combined.partial-<host>-<pid>, renamed)
 *
 * Safety (as src/io/outdir.ts for a single run): a shard writes only its own fields, its own
 * manifest and its own partial folders; a study folder is used only if it is new, empty, or
 * carries a study marker (the output of a single run or a folder xanes did not make is
 * refused); a field counts as finished only when its field.json says so, so a shard killed
 * at any moment leaves no field that looks finished. One array per study at a time: a shard
 * removes leftover partial folders of its own fields (earlier, killed attempts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../io/errors.js';
import { MARKER, OutputError, checkOutPath, markerText, realLocation } from '../io/outdir.js';
import { kebab } from '../options/schema.js';

export interface Shard {
  /** From 0. */
  index: number;
  count: number;
  /** What chose it: the --shard option or Slurm's array variables. */
  from: 'option' | 'slurm';
}

/**
 * The shard of this process: `--shard i/n`; `slurm` (the default when SLURM_ARRAY_TASK_ID is
 * set): i = (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP and
 * n = SLURM_ARRAY_TASK_COUNT, so `--array=1-8` and `--array=0-7` both give shards 0..7 of 8;
 * `off`: no shard (one whole run).
 */
export function shardOf(option: string | undefined, env: NodeJS.ProcessEnv = process.env): Shard | null {
  const o = option ?? (env.SLURM_ARRAY_TASK_ID !== undefined ? 'slurm' : 'off');
  if (o === 'off') return null;
  if (o !== 'slurm') {
    const [i, n] = o.split('/').map(Number);
    return { index: i, count: n, from: 'option' };
  }
  const int = (name: string, dflt?: number): number => {
    const raw = env[name];
    if (raw === undefined && dflt !== undefined) return dflt;
    if (raw === undefined || !/^\d+$/.test(raw.trim())) throw new InputError('--shard slurm', `${name} is ${raw === undefined ? 'not set' : `'${raw}'`}: not inside a Slurm job array (give --shard i/n)`);
    return Number(raw);
  };
  const id = int('SLURM_ARRAY_TASK_ID'), min = int('SLURM_ARRAY_TASK_MIN', 0), step = int('SLURM_ARRAY_TASK_STEP', 1), n = int('SLURM_ARRAY_TASK_COUNT');
  const i = (id - min) / Math.max(1, step);
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new InputError('--shard slurm', `task ${id} of an array of ${n} from ${min} in steps of ${step} is not a shard 0..${n - 1}`);
  return { index: i, count: n, from: 'slurm' };
}

export interface StudyField { name: string; stack: string; size: number }

/** A field's size for balancing: pixels of a synthetic stack, bytes of a file (or of a folder's files). */
export function fieldSize(stack: string): number {
  const m = /^synthetic:(\d+)x(\d+)/.exec(stack);
  if (m) return Number(m[1]) * Number(m[2]);
  let st: fs.Stats;
  try {
    st = fs.statSync(stack);
  } catch {
    throw new InputError(stack, 'the stack does not exist');
  }
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(stack).reduce((acc, n) => {
    try {
      return acc + fs.statSync(path.join(stack, n)).size;
    } catch {
      return acc;
    }
  }, 0);
}

/**
 * The fields of each of n shards: largest field first to the shard with the least so far
 * (ties: the earlier field, the lower shard), each shard's fields then in the study's order.
 * Depends only on the sizes and n, so every shard computes the same split.
 */
export function partition(sizes: readonly number[], n: number): number[][] {
  const order = sizes.map((s, i) => i).sort((a, b) => sizes[b] - sizes[a] || a - b);
  const load = new Array<number>(n).fill(0);
  const parts: number[][] = Array.from({ length: n }, () => []);
  for (const f of order) {
    let best = 0;
    for (let s = 1; s < n; s++) if (load[s] < load[best]) best = s;
    parts[best].push(f);
    load[best] += sizes[f];
  }
  return parts.map((p) => p.sort((a, b) => a - b));
}

/** The layout a marker names (null: none, a single run's), or undefined where it cannot be read. */
const markerLayout = (file: string): unknown => {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')).layout ?? null;
  } catch {
    return undefined;
  }
};
const isStudyMarker = (file: string): boolean => markerLayout(file) === 'study';

/** True when `dir` is a study folder (its marker says so). */
export function isStudy(dir: string): boolean {
  return isStudyMarker(path.join(dir, MARKER));
}

/**
 * isStudy for a folder another shard may be creating this moment: a marker that is there but
 * not yet readable (created exclusively, its text not yet written) is read again for up to
 * MARKER_WAIT_MS before the folder counts as not a study.
 */
const MARKER_WAIT_MS = 2000;
function isStudySettled(dir: string): boolean {
  const file = path.join(dir, MARKER);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; ; waited += 10) {
    const layout = markerLayout(file);
    if (layout !== undefined) return layout === 'study';
    if (!fs.existsSync(file) || waited >= MARKER_WAIT_MS) return false;
    Atomics.wait(pause, 0, 0, 10);
  }
}

/**
 * Makes (or joins) the study folder that shards share: the same checks as a single run's
 * --out, and an existing folder must be empty or a study; the marker is created once
 * (exclusively), whichever shard comes first, and before anything else in the folder, so a
 * shard starting at the same moment never finds the folder with entries but no marker (which
 * checkOutPath refuses as a folder xanes did not make).
 */
export function claimStudy(out: string, inputs: readonly string[]): string {
  checkOutPath(out, inputs);
  const real = realLocation(out);
  if (fs.existsSync(real) && fs.readdirSync(real).length > 0 && !isStudySettled(real)) {
    throw new InputError(out, 'holds the output of a single xanes run (not a sharded study); choose another --out for the shards, or move it away yourself');
  }
  try {
    fs.mkdirSync(real, { recursive: true });
    try {
      fs.writeFileSync(path.join(real, MARKER), markerText({ layout: 'study' }), { flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    fs.mkdirSync(path.join(real, 'shards'), { recursive: true });
  } catch (e) {
    throw new OutputError(out, `cannot create the study folder: ${(e as Error).message}`);
  }
  if (!isStudySettled(real)) throw new InputError(out, 'is not a study folder (its marker does not say so)');
  return real;
}

export type FieldState = { state: 'finished'; record: Record<string, unknown> } | { state: 'unfinished' | 'missing'; why: string };

/** Whether a field of the study is finished: its field.json (written last, renamed into place with the folder) says so. */
export function fieldState(study: string, name: string): FieldState {
  const dir = path.join(study, name);
  if (fs.existsSync(dir)) {
    try {
      const rec = JSON.parse(fs.readFileSync(path.join(dir, 'field.json'), 'utf8'));
      if (rec.finished === true && rec.field === name) return { state: 'finished', record: rec };
    } catch {
      // no or unreadable field.json: not finished
    }
    return { state: 'unfinished', why: 'no finished field.json' };
  }
  const partial = fs.readdirSync(study).some((n) => n.startsWith(`${name}.partial-`));
  return partial ? { state: 'unfinished', why: 'only a partial folder (its shard stopped)' } : { state: 'missing', why: 'missing' };
}

/** Removes leftover `<name>.partial-*` / `<name>.old-*` folders (marked, or empty) of a part this process owns. */
export function removeLeftovers(study: string, name: string): void {
  for (const n of fs.readdirSync(study)) {
    if (!/^\.(partial|old)-/.test(n.slice(name.length)) || !n.startsWith(name)) continue;
    const p = path.join(study, n);
    if (fs.existsSync(path.join(p, MARKER))) fs.rmSync(p, { recursive: true, force: true });
    else {
      // Killed between creating the folder and its marker: empty, so safe to remove.
      try {
        fs.rmdirSync(p);
      } catch {
        // not empty and not marked: not ours to remove
      }
    }
  }
}

export const manifestName = (s: Shard) => path.join('shards', `shard-${s.index}-of-${s.count}.json`);

/** Writes a file of the study atomically (a temporary name, then rename): a reader never sees half of it. */
export function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

export interface ShardManifest {
  tool: 'xanes-engine';
  shard: { index: number; count: number; from: string };
  fields: StudyField[];
  mine: string[];
  skipped: string[];
  steps: string[];
  /** The recipe's options (schema names), less the shard's own (shard, resume, out). */
  options: Record<string, unknown>;
  /** The run's cluster settings, as merge needs them. */
  cluster: unknown;
  e0_eV?: number;
  /** The recipe's --threads (not part of the options every shard must share); merge's default. */
  threads?: number;
  host: string;
  pid: number;
  started: string;
  finished: boolean;
  ended?: string;
}

/** The manifests of the shards that have started (sorted by shard). */
export function readManifests(study: string): { file: string; m: ShardManifest }[] {
  const dir = path.join(study, 'shards');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((n) => /^shard-\d+-of-\d+\.json$/.test(n)).map((n) => {
    const file = path.join(dir, n);
    try {
      return { file, m: JSON.parse(fs.readFileSync(file, 'utf8')) as ShardManifest };
    } catch (e) {
      throw new InputError(file, `cannot read the shard manifest: ${(e as Error).message}`);
    }
  }).sort((a, b) => a.m.shard.count - b.m.shard.count || a.m.shard.index - b.m.shard.index);
}

/** JSON text with every object's keys sorted: two records compare equal whatever order their options were given in. */
function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x)
    ? Object.fromEntries(Object.keys(x as object).sort().map((k) => [k, (x as Record<string, unknown>)[k]]))
    : x));
}

/** Whether two recorded recipes or option sets are the same (key order ignored, array order kept). */
export function sameRecord(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** The leaves of a recorded options object (sections such as edge: {...} opened) that differ, as command-line flags. */
function differingOptions(a: unknown, b: unknown, name: string, out: string[]): void {
  const isObj = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !Array.isArray(x);
  if (sameRecord(a, b)) return;
  if ((isObj(a) || a === undefined) && (isObj(b) || b === undefined)) {
    // A section on one side only (no option of it given on the other) is an empty section.
    const oa = a ?? {}, ob = b ?? {};
    for (const k of [...new Set([...Object.keys(oa), ...Object.keys(ob)])].sort()) differingOptions(oa[k], ob[k], k, out);
  } else out.push(`--${kebab(name)}`);
}

/** Names what differs between two recorded recipes ({steps, options, cluster}): "steps", "cluster", or the options' flags. */
export function recipeDifference(was: Record<string, unknown>, now: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const k of [...new Set([...Object.keys(was), ...Object.keys(now)])].sort()) {
    if (sameRecord(was[k], now[k])) continue;
    if (k !== 'options') { parts.push(k); continue; }
    const flags: string[] = [];
    differingOptions(was[k], now[k], k, flags);
    parts.push(`options (${flags.join(', ')})`);
  }
  return parts.join(', ');
}
