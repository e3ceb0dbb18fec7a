/** `xanes info`: what a stack holds and what a run over it needs. */
import type { Command } from 'commander';
import { openStack } from '../stack/source.js';
import { readEnergies, checkEnergyCount } from '../io/energies.js';
import { parseEnergyUnit } from '../pipeline/inputs.js';
import { parseMemoryMiB, planTiles } from '../stack/tiles.js';
import { tileBudget } from '../pipeline/run-tiles.js';
import { EDGE_STEP_SHAPE } from '../pipeline/edge-step.js';

const MiB = 2 ** 20;

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('shape, dtype, energies, value range of a stack, and the memory a run needs')
    .argument('<stack>', 'stack [E,H,W]: .npy, multi-page .tif, or STXM .hdr')
    .option('--energies <file>', 'energies file, to show the energy range and steps')
    .option('--energy-unit <unit>', 'eV or keV', 'eV')
    .option('--memory <MiB>', 'memory budget to plan tiles for')
    .action(async (stackPath: string, o: { energies?: string; energyUnit?: string; memory?: string }) => {
      const src = await openStack(stackPath);
      try {
        const { nE, height: H, width: W } = src;
        // The memory plan first: a stack too large for the budget (a decompression bomb
        // declaring 20000x20000 pages, say) is refused before any pixel is decoded.
        const budget = parseMemoryMiB(o.memory);
        const b = tileBudget(src, EDGE_STEP_SHAPE, {}, budget);
        const plan = planTiles(H, W, b);
        console.log(`${stackPath}`);
        console.log(`  shape [E,H,W] = [${nE}, ${H}, ${W}] (${(H * W).toLocaleString('en-US')} spectra), stored as ${src.dtype}`);
        const e = o.energies ? readEnergies(o.energies, { unit: parseEnergyUnit(o.energyUnit) }) : src.energies;
        if (e) {
          if (o.energies) checkEnergyCount(e, nE, o.energies, stackPath);
          let minStep = Infinity, maxStep = 0;
          for (let i = 1; i < e.length; i++) {
            minStep = Math.min(minStep, e[i] - e[i - 1]);
            maxStep = Math.max(maxStep, e[i] - e[i - 1]);
          }
          console.log(`  energies ${e[0].toFixed(2)} .. ${e[e.length - 1].toFixed(2)} eV, steps ${minStep.toFixed(3)} .. ${maxStep.toFixed(3)} eV${o.energies ? '' : ' (from the stack)'}`);
        }
        // Value range: one streamed pass, a few rows at a time.
        const rows = Math.max(1, Math.floor((64 * MiB) / (4 * nE * W)));
        const buf = new Float32Array(nE * rows * W);
        let lo = Infinity, hi = -Infinity, nonFinite = 0;
        for (let y = 0; y < H; y += rows) {
          const r = Math.min(rows, H - y);
          await src.readRows(y, r, buf);
          for (let i = 0; i < nE * r * W; i++) {
            const v = buf[i];
            if (!Number.isFinite(v)) nonFinite++;
            else { if (v < lo) lo = v; if (v > hi) hi = v; }
          }
        }
        console.log(`  values ${lo} .. ${hi}${nonFinite ? `, ${nonFinite} non-finite` : ''}`);
        console.log(`  stack size ${((4 * nE * H * W) / MiB).toFixed(1)} MiB as float32; \`xanes edge\` on the CPU backend needs at least ${Math.ceil((b.fixedBytes + W * b.bytesPerPixel) / MiB)} MiB, and with --memory ${budget / MiB} runs ${plan.tiles} tile(s) of ${plan.rowsPerTile} rows (peak ~${Math.ceil(plan.peakBytes / MiB)} MiB)`);
      } finally {
        src.close();
      }
    });
}
