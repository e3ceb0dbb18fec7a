/** Option parsing shared by the subcommands: numbers, ranges, the common stack options. */
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { InputError } from '../io/errors.js';
import { DEFAULT_MEMORY_MIB } from '../stack/tiles.js';

export function num(option: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InputError(option, `expected a number, got '${v}'`);
  return n;
}

/** "a,b" -> [a, b] with a < b; "end" allowed for b when allowEnd. */
export function pair(option: string, v: string | undefined, allowEnd = false): [number, number] | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(',');
  if (parts.length !== 2) throw new InputError(option, `expected two numbers 'a,b', got '${v}'`);
  const a = num(option, parts[0])!;
  const b = allowEnd && parts[1].trim() === 'end' ? Infinity : num(option, parts[1])!;
  if (!(b > a)) throw new InputError(option, `expected a < b, got '${v}'`);
  return [a, b];
}

/** Options every stack-reading command takes. */
export function addStackOptions(cmd: Command): Command {
  return cmd
    .option('--energies <file>', 'energies, one per image: text/CSV (first column) or .npy')
    .option('--energy-unit <unit>', 'unit of the energies file: eV or keV', 'eV')
    .option('--flat <stack>', 'flat-field stack (same shape, or fewer frames: averaged): absorbance = -ln((I-D)/(F-D))')
    .option('--dark <stack>', 'dark stack (same shape, or fewer frames: averaged), with --flat')
    .option('--no-flat', 'ignore the flat and dark fields stored in the stack file (HDF5, Xradia)')
    .option('--pixel-size <um>', 'pixel size in µm (default: from the file when it records one)')
    .option('--memory <MiB>', `memory budget for the whole process, MiB (default ${DEFAULT_MEMORY_MIB})`)
    .option('--backend <name>', 'auto | webgpu | cpu', 'auto')
    .option('--threads <n>', 'CPU backend worker threads (default: every core)');
}

/** The stack-reading options as the library takes them (StackInputs, less the stack). */
export function stackInputOptions(o: { energies?: string; energyUnit?: string; flat?: string | boolean; dark?: string; pixelSize?: string }): {
  energies?: string; energyUnit?: string; flat?: string; dark?: string; noFlat: boolean; pixelSize?: number;
} {
  const pixelSize = num('--pixel-size', o.pixelSize);
  if (pixelSize !== undefined && !(pixelSize > 0)) throw new InputError('--pixel-size', `expected a positive number of µm, got '${o.pixelSize}'`);
  return {
    energies: o.energies,
    energyUnit: o.energyUnit,
    flat: typeof o.flat === 'string' ? o.flat : undefined,
    dark: o.dark,
    noFlat: o.flat === false,
    pixelSize,
  };
}

/**
 * A progress bar (cli-progress) with pixels/s and time left, on a terminal only: nothing
 * in logs and pipes.
 */
export function progress(label: string, width: number): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {rate} spectra/s | {eta_formatted} left`, stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  const t0 = performance.now();
  let started = false;
  return (done, total) => {
    if (!started) {
      bar.start(total, 0, { rate: '-' });
      started = true;
    }
    const s = (performance.now() - t0) / 1000;
    bar.update(done, { rate: s > 0 ? Math.round((done * width) / s).toLocaleString('en-US') : '-' });
    if (done >= total) bar.stop();
  };
}

export function threads(v: string | undefined): number | undefined {
  const n = num('--threads', v);
  if (n !== undefined && !(Number.isInteger(n) && n >= 1)) throw new InputError('--threads', `expected a whole number >= 1, got '${v}'`);
  return n;
}
