/**
 * Several per-pixel steps over one pass of tiles: each tile is read once and handed to
 * every step in turn. The combined step's maps are named `<step>:<map>`, with each step's
 * status carried as the float32 map `<step>:status`; `splitRun` turns a run back into one
 * result per step.
 */
import type { PixelStep, TileResult, Backend, GpuTilePart, TileDest } from './step.js';
import type { GpuContext } from '../gpu/device.js';
import type { RunResult } from './run-tiles.js';
import { registerCpuStep, rebuildStep } from './cpu-steps.js';

export const COMBINED_STATUS_NAMES = ['all_ok', 'not_all_ok'] as const;

export function combineSteps(steps: PixelStep[]): PixelStep {
  if (steps.length === 1) return steps[0];
  const names = steps.map((s) => s.name);
  if (new Set(names).size !== names.length) throw new Error(`steps must have distinct names: ${names.join(', ')}`);
  const workers = steps.map((s) => s.worker);
  const combined: PixelStep = {
    name: names.join('+'),
    mapNames: steps.flatMap((s) => [...s.mapNames.map((m) => `${s.name}:${m}`), `${s.name}:status`]),
    statusNames: COMBINED_STATUS_NAMES,
    // Steps run one after another on a tile, so their scratch does not overlap in time,
    // but every step's tile outputs exist until the tile is placed.
    bytesPerPixel: (nE) => steps.reduce((acc, s) => acc + s.bytesPerPixel(nE) + 4, 0),
    gpuBindingBytesPerPixel: (nE) => Math.max(...steps.map((s) => s.gpuBindingBytesPerPixel(nE))),
    // Each step's plans (kernel scratch, a GPU part's own ring) are kept for the whole run.
    gpuHeldBytesPerPixel: (nE) => steps.reduce((acc, s) => acc + (s.gpuHeldBytesPerPixel?.(nE) ?? 0), 0),
    cpuKernelBytes: (nE) => steps.reduce((acc, s) => acc + (s.cpuKernelBytes?.(nE) ?? 0), 0),
    worker: workers.every((w) => w !== undefined) ? { kind: 'combined', args: workers } : undefined,
    async runTile(backend: Backend, cube: Float32Array, P: number): Promise<TileResult> {
      const results: TileResult[] = [];
      for (const s of steps) results.push(await s.runTile(backend, cube, P));
      return combineResults(results, P);
    },
    // On a GPU: one upload of the tile for every step, each step's dispatches against it,
    // all their rows in one readback buffer mapped once (src/pipeline/gpu-tiles.ts).
    gpuPart: steps.every((s) => s.gpuPart) ? (ctx: GpuContext) => combineParts(steps.map((s) => s.gpuPart!(ctx))) : undefined,
  };

  return combined;

  function combineResults(results: TileResult[], P: number, dest?: TileDest): TileResult {
    const maps: Record<string, Float32Array> = {};
    const status = dest?.status ?? new Uint8Array(P);
    steps.forEach((s, i) => {
      const r = results[i];
      for (const m of s.mapNames) maps[`${s.name}:${m}`] = r.maps[m];
      const st = dest?.maps[`${s.name}:status`] ?? new Float32Array(P);
      for (let p = 0; p < P; p++) {
        st[p] = r.status[p];
        if (r.status[p] !== 0) status[p] = 1;
      }
      maps[`${s.name}:status`] = st;
    });
    return { maps, status };
  }

  function combineParts(parts: GpuTilePart[]): GpuTilePart {
    const row0s: number[] = [];
    let readRows = 0;
    for (const p of parts) {
      row0s.push(readRows);
      readRows += p.readRows;
    }
    return {
      readRows,
      // Steps run one after another on a slot, but each keeps its own scratch buffers.
      scratchBytesPerPixel: parts.reduce((a, p) => a + p.scratchBytesPerPixel, 0),
      async encode(t, P, row0) {
        for (let i = 0; i < parts.length; i++) await parts[i].encode(t, P, row0 + row0s[i]);
      },
      async finish(rows, cube, P, dest) {
        const results: TileResult[] = [];
        for (let i = 0; i < parts.length; i++) {
          // Each step writes its maps into the combined destination's `<step>:<map>` views.
          const sub: TileDest | undefined = dest && { maps: Object.fromEntries(steps[i].mapNames.filter((m) => dest.maps[`${steps[i].name}:${m}`]).map((m) => [m, dest.maps[`${steps[i].name}:${m}`]])) };
          results.push(await parts[i].finish(rows.subarray(row0s[i] * P, (row0s[i] + parts[i].readRows) * P), cube, P, sub));
        }
        return combineResults(results, P, dest);
      },
      async dispose() {
        for (const p of parts) await p.dispose?.();
      },
    };
  }
}

registerCpuStep('combined', (specs: { kind: string; args: unknown }[]) => combineSteps(specs.map((w) => rebuildStep(w.kind, w.args))));

export interface StepRun {
  maps: Record<string, Float32Array>;
  status: Uint8Array;
  statusCounts: Record<string, number>;
}

/** One result per step from a run of combineSteps(steps). */
export function splitRun(run: RunResult, steps: PixelStep[]): Record<string, StepRun> {
  if (steps.length === 1) return { [steps[0].name]: { maps: run.maps, status: run.status, statusCounts: run.statusCounts } };
  const out: Record<string, StepRun> = {};
  for (const s of steps) {
    const maps: Record<string, Float32Array> = {};
    for (const m of s.mapNames) maps[m] = run.maps[`${s.name}:${m}`];
    const st = run.maps[`${s.name}:status`];
    const status = Uint8Array.from(st);
    const statusCounts: Record<string, number> = {};
    s.statusNames.forEach((n) => (statusCounts[n] = 0));
    for (let i = 0; i < status.length; i++) {
      const n = s.statusNames[status[i]] ?? `code_${status[i]}`;
      statusCounts[n] = (statusCounts[n] ?? 0) + 1;
    }
    out[s.name] = { maps, status, statusCounts };
  }
  return out;
}
