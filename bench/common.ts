/**
 * Shared benchmark plumbing: medians over repeats after warm-up, the machine description,
 * and JSON results under bench/results (or --out). Benchmarks never assert.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Backend } from '../src/pipeline/step.js';

export interface BenchBase {
  kernel: string;
  mode: string;
  backend: string;
  adapter: string;
  spectra: number;
  energies: number;
  repeats: number;
  median_s: number;
  min_s: number;
  notes?: string;
}

export type BenchRecord = BenchBase & { machine: string; spectra_per_s: number; gb_per_s: number } & Record<string, unknown>;

export function machine(): string {
  const c = os.cpus();
  return `${c[0]?.model?.trim() ?? 'CPU'} x${c.length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`;
}

export async function timeRepeats(fn: () => Promise<void>, repeats: number, warmup = 1): Promise<{ median: number; min: number }> {
  for (let i = 0; i < warmup; i++) await fn();
  const t: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    t.push((performance.now() - t0) / 1000);
  }
  t.sort((a, b) => a - b);
  return { median: t[t.length >> 1], min: t[0] };
}

export function record(base: BenchBase, bytesRead: number): BenchRecord {
  return { ...base, machine: machine(), spectra_per_s: base.spectra / base.median_s, gb_per_s: bytesRead / base.median_s / 1e9 };
}

export function writeResults(outDir: string, name: string, backend: Backend, records: BenchRecord[]): string {
  fs.mkdirSync(outDir, { recursive: true });
  const slug = `${backend.name}-${backend.adapter.replace(/\(.*?\)/g, '').replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40)}`;
  const file = path.join(outDir, `${name}-${slug}.json`);
  fs.writeFileSync(file, JSON.stringify({ benchmark: name, date: new Date().toISOString(), backend: backend.name, adapter: backend.adapter, machine: machine(), results: records }, null, 2) + '\n');
  return file;
}
