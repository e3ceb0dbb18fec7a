/** `xanes align` (src/pipeline/align-run.ts) and the alignment options every stack command takes. */
import type { Command } from 'commander';
import { runAlign } from '../pipeline/align-run.js';
import { parseBackend } from '../pipeline/backend.js';
import { parseMemoryMiB } from '../stack/tiles.js';
import { parseAlignChoice, ALIGN_DEFAULTS, type AlignOptions, type AlignStep } from '../align/align.js';
import { addStackOptions, num, threads } from './options.js';

/** The options that say how to align (shared by `xanes align` and `--align` on other commands). */
export function addAlignOptions(cmd: Command, prefix = ''): Command {
  return cmd
    .option('--shifts <file>', `${prefix}apply the shifts in this shifts.csv instead of measuring them`)
    .option('--ref-energy <eV>', `${prefix}register every image to the one nearest this energy (default: each to its neighbour, chained from the middle of the scan)`)
    .option('--roi <rect:x0,y0,x1,y1>', `${prefix}register on this region only`)
    .option('--on <what>', `${prefix}register on intensity or gradient (its magnitude, for low-contrast stacks) (default ${ALIGN_DEFAULTS.on})`)
    .option('--max-jump <px>', `${prefix}report neighbour-to-neighbour shifts larger than this (default ${ALIGN_DEFAULTS.maxJump})`)
    .option('--crop <how>', `${prefix}common: cut to the area valid at every energy; none: keep the frame, NaN where the field left it (default ${ALIGN_DEFAULTS.crop})`)
    .option('--interp <how>', `${prefix}auto | fourier | bicubic | bilinear (default auto: Fourier when the stack fits --memory, else bicubic)`)
    .option('--normalization <n>', `${prefix}none (cross-correlation) or phase (phase correlation) (default ${ALIGN_DEFAULTS.normalization})`)
    .option('--taper <w>', `${prefix}none or hann: taper the images with a window before the FFT (default ${ALIGN_DEFAULTS.window})`)
    .option('--highpass <s>', `${prefix}Gaussian high-pass on the cross-power spectrum, cycles per pixel (default off)`);
}

export function parseAlignOptions(o: Record<string, string | undefined>): AlignOptions {
  return {
    shifts: o.shifts,
    refEnergy: num('--ref-energy', o.refEnergy),
    roi: o.roi,
    on: parseAlignChoice('--on', o.on, ['intensity', 'gradient'] as const),
    maxJump: num('--max-jump', o.maxJump),
    crop: parseAlignChoice('--crop', o.crop, ['common', 'none'] as const),
    interp: parseAlignChoice('--interp', o.interp, ['auto', 'fourier', 'bicubic', 'bilinear'] as const),
    normalization: parseAlignChoice('--normalization', o.normalization, ['none', 'phase'] as const),
    window: parseAlignChoice('--taper', o.taper, ['none', 'hann'] as const),
    highpass: num('--highpass', o.highpass),
  };
}

export function registerAlign(program: Command): void {
  addAlignOptions(addStackOptions(
    program
      .command('align')
      .description('measure the drift between the images of a stack (subpixel) and write the aligned stack')
      .argument('<stack>', 'stack [E,H,W]: .npy, multi-page .tif, or STXM .hdr'),
  ))
    .requiredOption('--out <dir>', 'output folder (written whole or not at all)')
    .option('--i0 <file>', 'I0 spectrum: align the optical density -ln(I/I0)')
    .option('--i0-region <rect|auto>', 'I0 from a region of the stack')
    .option('--tiff', 'also write aligned.tif (float32, one page per energy)')
    .action(async (stack: string, o: Record<string, any>) => {
      const align = parseAlignOptions(o);
      const report = await runAlign({
        stack, energies: o.energies, energyUnit: o.energyUnit, flat: o.flat, dark: o.dark, i0: o.i0, i0Region: o.i0Region,
        out: o.out, backend: parseBackend(o.backend), threads: threads(o.threads), budgetBytes: parseMemoryMiB(o.memory),
        tiff: o.tiff === true, ...align,
      });
      const s = report.summary;
      const al = s.alignment;
      console.log(`aligned stack: ${report.outDir}`);
      console.log(`  ${s.inputs.shape.energies} images of ${s.inputs.shape.height} x ${s.inputs.shape.width}; ${al.strategy ?? 'shifts from ' + al.source}, largest |dy| ${al.max_abs_dy_px.toFixed(2)} px, |dx| ${al.max_abs_dx_px.toFixed(2)} px; applied by ${al.applied_with}`);
      console.log(`  backend ${s.backend.name}: ${s.backend.adapter}; ${s.timings_s.total.toFixed(2)} s`);
    });
}

/** `--align` and the alignment options on a stack command (edge, fit, lcf, pca, cluster, run). */
export function addAlignStepOptions(cmd: Command): Command {
  return addAlignOptions(cmd.option('--align', 'align the stack across energies first (subpixel registration; see xanes align)'), 'with --align: ');
}

/** The alignment step the options ask for (--align, or --shifts alone), or undefined. */
export function alignStep(o: Record<string, any>): AlignStep | undefined {
  if (!o.align && !o.shifts) return undefined;
  return { ...parseAlignOptions(o), backend: parseBackend(o.backend), threads: threads(o.threads), budgetBytes: parseMemoryMiB(o.memory) };
}
