/** `xanes info`: what a stack holds and what a run over it needs. */
import type { Command } from 'commander';
import { openStack } from '../stack/source.js';
import { Hdf5Stack } from '../io/hdf5.js';
import { readEnergies, checkEnergyCount, checkEnergyScale } from '../io/energies.js';
import { checkBudgetFloor, checkImageSize, planTiles } from '../stack/tiles.js';
import { addOptions, fromCli } from '../options/parse.js';
import { memoryBytes } from '../options/convert.js';
import { baselineBytes, tileBudget } from '../pipeline/run-tiles.js';
import { EDGE_STEP_SHAPE } from '../pipeline/edge-step.js';
import { EDGE_KEPT_MAPS } from '../pipeline/edge-run.js';
import { checkBudgetFitsMachine, edgeOutputPhaseBytes, outputPhaseBytes } from '../pipeline/memory.js';

const MiB = 2 ** 20;

function fmtUm(v: number): string {
  return Number(v.toPrecision(4)).toString();
}

export function registerInfo(program: Command): void {
  const cmd = program
    .command('info')
    .description('shape, dtype, energies, value range of a stack, and the memory a run needs')
    .argument('<stack>', 'stack [E,H,W]: .npy, multi-page .tif, STXM .hdr, HDF5 (file.h5 or file.h5#/dataset)');
  addOptions(cmd, 'info')
    .action(async (stackPath: string, _o: unknown, c: Command) => {
      const o = fromCli('info', c).common;
      const src = await openStack(stackPath);
      try {
        const { nE, height: H, width: W } = src;
        // The memory plan first: a stack too large for the budget (a decompression bomb
        // declaring 20000x20000 pages, say) is refused before any pixel is decoded.
        const budget = memoryBytes(o.memory);
        checkImageSize(src);
        checkBudgetFitsMachine(budget);
        checkBudgetFloor(src, budget, baselineBytes(), outputPhaseBytes(H, W));
        const b = tileBudget(src, EDGE_STEP_SHAPE, {}, budget, 0, undefined, { keepMaps: EDGE_KEPT_MAPS, afterBytes: edgeOutputPhaseBytes(H, W), readerBytes: src.readerBytes?.() ?? 0 });
        const plan = planTiles(H, W, b);
        console.log(`${stackPath}`);
        if (src.volume) {
          const [Z, Y, X] = src.volume;
          console.log(`  shape [E,Z,Y,X] = [${nE}, ${Z}, ${Y}, ${X}] (${(H * W).toLocaleString('en-US')} voxels, read as ${H} rows of ${W}), stored as ${src.dtype}`);
        } else {
          console.log(`  shape [E,H,W] = [${nE}, ${H}, ${W}] (${(H * W).toLocaleString('en-US')} spectra), stored as ${src.dtype}`);
        }
        if (src.layout) {
          const l = src.layout;
          console.log(`  layout: ${l.title} (${l.format} '${l.name}')`);
          for (const [role, where] of Object.entries(l.datasets)) console.log(`    ${role.padEnd(10)} ${where}`);
          if (src.flatField) console.log(`  flat field: ${src.flatField.nE} frame(s)${src.flatField.nE === nE ? ', one per energy' : ', averaged and used at every energy'}; dark: ${src.darkField ? `${src.darkField.nE} frame(s)${src.darkField.nE === nE ? ', one per energy' : ', averaged'}` : 'none'}; applied automatically (--no-flat to skip)`);
          for (const n of l.notes) console.log(`  note: ${n}`);
        }
        if (src.pixelSizeUm) console.log(`  pixel size ${fmtUm(src.pixelSizeUm.x)}${src.pixelSizeUm.y !== src.pixelSizeUm.x ? ` x ${fmtUm(src.pixelSizeUm.y)}` : ''} µm`);
        else console.log('  pixel size not recorded (give --pixel-size for axes in µm)');
        const e = o.energies ? readEnergies(o.energies, { unit: o.energyUnit ?? 'eV' }) : src.energies;
        if (o.energies && e) checkEnergyScale(e, o.energies, o.energyUnit !== undefined);
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
        console.log(`  stack size ${((4 * nE * H * W) / MiB).toFixed(1)} MiB as float32; \`xanes edge\` on the CPU backend needs at least ${Math.ceil((b.fixedBytes + W * b.bytesPerPixel + (b.afterBytes ?? 0)) / MiB)} MiB, and with --memory ${budget / MiB} runs ${plan.tiles} tile(s) of ${plan.rowsPerTile} rows (peak ~${Math.ceil(plan.peakBytes / MiB)} MiB)`);
        if (src instanceof Hdf5Stack && src.chunks) {
          const k = src.chunkRereads(plan.rowsPerTile);
          if (k > 1) console.log(`  note: HDF5 chunks [${src.chunks.join(',')}] span more rows than a tile, so each chunk is read and decompressed about ${k} times; a larger --memory (or chunks of fewer rows) reads it once`);
        }
      } finally {
        src.close();
      }
    });
}
