/**
 * `npm run bench`: every benchmark on every available backend; JSON per benchmark and
 * backend in bench/results (or --out DIR). Options: --sizes 1e6,4e6  --backends webgpu,cpu
 * --repeats 5  --tile 262144  --memory 4096 (MiB).
 */
import path from 'node:path';
import { getGpu } from '../src/gpu/device.js';
import { cpuBackend } from '../src/pipeline/backend.js';
import type { Backend } from '../src/pipeline/step.js';
import { benchEdge } from './edge.bench.js';
import { writeResults } from './common.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

async function main(): Promise<void> {
  const outDir = arg('out', path.join('bench', 'results'));
  const sizes = arg('sizes', '1e6,4e6').split(',').map(Number);
  const wanted = arg('backends', 'webgpu,cpu').split(',');
  const repeats = Number(arg('repeats', '5'));
  const tilePixels = Number(arg('tile', String(256 * 1024)));
  const budgetBytes = Number(arg('memory', '4096')) * 2 ** 20;
  const backends: Backend[] = [];
  if (wanted.includes('webgpu')) {
    const gpu = await getGpu();
    if (gpu) backends.push({ name: 'webgpu', adapter: gpu.adapterName, gpu });
    else console.log('no WebGPU adapter: skipping the webgpu backend');
  }
  if (wanted.includes('cpu')) backends.push(cpuBackend());
  for (const b of backends) {
    console.log(`normalize+edge on ${b.name}: ${b.adapter}`);
    const recs = await benchEdge(b, { sizes, tilePixels, repeats, budgetBytes, log: console.log });
    console.log(`  -> ${writeResults(outDir, 'edge', b, recs)}`);
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
