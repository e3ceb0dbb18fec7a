/**
 * A CPU worker thread: receives { kind, args } once, then tiles (transferred or shared, not copied),
 * runs the rebuilt step on the CPU backend, and sends the maps back (transferred).
 */
import { parentPort } from 'node:worker_threads';
import { rebuildStep } from './cpu-steps.js';
import './combine.js'; // registers the 'combined' kind
import './fit-step.js'; // registers the 'fit' kind
import './lcf-step.js'; // registers the 'lcf' kind
import type { PixelStep } from './step.js';
import { collectGarbage } from './memory.js';

interface TileMsg { id: number; cube: Float32Array; P: number }
interface InitMsg { init: { kind: string; args: unknown } }

let step: PixelStep | null = null;
parentPort!.on('message', async (m: TileMsg | InitMsg) => {
  try {
    if ('init' in m) {
      step = rebuildStep(m.init.kind, m.init.args);
      return;
    }
    const r = await step!.runTile({ name: 'cpu', adapter: 'worker' }, m.cube, m.P);
    const transfer = [...Object.values(r.maps).map((a) => a.buffer), r.status.buffer, m.cube.buffer].filter((b) => !(b instanceof SharedArrayBuffer)) as ArrayBuffer[];
    parentPort!.postMessage({ id: m.id, maps: r.maps, status: r.status, cube: m.cube }, transfer);
    // The tile's temporaries are garbage now: collect them before the next tile allocates its
    // own, so a worker holds one tile's scratch, as the memory plan counts, not several.
    collectGarbage();
  } catch (e) {
    parentPort!.postMessage({ id: (m as TileMsg).id, error: (e as Error).message });
  }
});
