/**
 * A small synthetic study for the shard tests: `n` Ni K-edge fields of view (absorbance .npy
 * stacks, a few sizes, different seeds), their energies, and the file-by-file comparison of
 * two output folders' products.
 */
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { makeNiTxmStack } from '../../src/synth/ni-txm.js';
import { writeNpy } from '../../src/io/npy.js';

export function writeStudyFields(dir: string, n: number, sizes: [number, number][] = [[16, 16], [12, 20], [20, 14], [16, 12]]): { stacks: string[]; energies: string } {
  const stacks: string[] = [];
  let energies = '';
  for (let i = 0; i < n; i++) {
    const [h, w] = sizes[i % sizes.length];
    const s = makeNiTxmStack({ width: w, height: h, seed: 11 + i, noise: true });
    const a = new Float32Array(s.sample.length);
    for (let j = 0; j < a.length; j++) a[j] = -Math.log((s.sample[j] - s.dark[j]) / (s.flat[j] - s.dark[j]));
    const file = path.join(dir, `fov_${String(i).padStart(2, '0')}.npy`);
    writeNpy(file, a, [s.energies.length, h, w]);
    stacks.push(file);
    if (i === 0) {
      energies = path.join(dir, 'energies.txt');
      fs.writeFileSync(energies, Array.from(s.energies).join('\n'));
    }
  }
  return { stacks, energies };
}

/** Files that record a run rather than its products (times, hosts, pids), left out of comparisons. */
export const RECORDS = new Set(['summary.json', 'results.h5', 'field.json', '.xanes-output']);

/**
 * The overview pages of the run, a field and combined/ (report.html at the top two levels):
 * they show the records (times, the shards), so they are left out too; every step's
 * report.html is compared.
 */
const OVERVIEW_PAGE = /^([^/]+\/)?report\.html$/;

/** Every product file under `dir` (relative paths, sorted), records, overview pages and shard manifests left out. */
export function productFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) {
        if (rel === '' && e.name === 'shards') continue;
        walk(r);
      } else if (!RECORDS.has(e.name) && !OVERVIEW_PAGE.test(r)) out.push(r);
    }
  };
  walk('');
  return out.sort();
}

/** The files whose bytes differ between two output folders (and files only one has). */
export function differences(a: string, b: string): string[] {
  const fa = productFiles(a), fb = productFiles(b);
  const diff: string[] = [];
  for (const f of new Set([...fa, ...fb])) {
    if (!fa.includes(f)) diff.push(`${f} (only in ${b})`);
    else if (!fb.includes(f)) diff.push(`${f} (only in ${a})`);
    else if (!fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f)))) diff.push(f);
  }
  return diff.sort();
}

/**
 * The objects of two results.h5 files that differ, read by h5py (an independent reader): every
 * group and dataset under /entry but the process record (command line, dates, summary.json),
 * compared by shape, dtype, a hash of the data and every attribute. Returns the objects read
 * in `a` and the paths that differ.
 */
export function h5Differences(a: string, b: string): { objects: number; diff: string[] } {
  const py = `
import sys, json, hashlib, h5py, numpy as np
def describe(path):
    out = {}
    with h5py.File(path, 'r') as f:
        def visit(name, obj):
            if name == 'entry/process' or name.startswith('entry/process/'): return
            attrs = {k: repr(obj.attrs[k]) for k in sorted(obj.attrs.keys())}
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                raw = np.ascontiguousarray(data).tobytes() if isinstance(data, np.ndarray) else repr(data).encode()
                out[name] = [list(obj.shape), str(obj.dtype), hashlib.sha256(raw).hexdigest(), attrs]
            else:
                out[name] = attrs
        f.visititems(visit)
    return out
x, y = describe(sys.argv[1]), describe(sys.argv[2])
print(json.dumps({'objects': len(x), 'diff': sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))}))
`;
  return JSON.parse(execFileSync('/usr/bin/python3', ['-c', py, a, b], { encoding: 'utf8' }));
}
