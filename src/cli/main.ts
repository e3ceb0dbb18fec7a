/**
 * The `xanes` command. Each subcommand parses its options into a library call; errors in
 * the user's input print one line and exit 2, a lost GPU exits 3, anything else is a bug
 * and exits 1 (with the stack trace when XANES_DEBUG is set).
 */
import { Command, CommanderError } from 'commander';
import { InputError } from '../io/errors.js';
import { DeviceLostError } from '../gpu/device.js';
import { VERSION } from '../version.js';
import { setCommandLine } from '../io/results-h5.js';
import { registerEdge } from './edge.js';
import { registerInfo } from './info.js';
import { registerDemo } from './demo.js';
import { registerCluster } from './cluster.js';
import { registerFit } from './fit.js';
import { registerLcf } from './lcf.js';
import { registerRun } from './run.js';
import { registerMerge } from './merge.js';
import { registerAlign } from './align.js';
import { registerReport } from './report.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('xanes')
    .description('Per-pixel chemistry from X-ray spectro-microscopy stacks, on any GPU (WebGPU) or the CPU')
    .version(VERSION)
    // One line per error: commander's message (with its "did you mean") and nothing else.
    // Set before the subcommands are added, which inherit it.
    .configureOutput({ outputError: (str, write) => write(`xanes: ${str.replace(/\s*\n\s*/g, ' ').trim()}\n`) })
    .exitOverride();
  registerEdge(program);
  registerInfo(program);
  registerFit(program);
  registerLcf(program);
  registerCluster(program);
  registerRun(program);
  registerMerge(program);
  registerAlign(program);
  registerReport(program);
  registerDemo(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  setCommandLine(argv);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof InputError) {
      process.stderr.write(`xanes: error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof DeviceLostError) {
      process.stderr.write(`xanes: error: ${e.message}\n`);
      return 3;
    }
    // An allocation the machine or JavaScript cannot make (a budget far above the RAM, an
    // array past the engine's limit): a named error, not a stack trace.
    if (e instanceof RangeError && /allocation failed|Invalid typed array length|Invalid array buffer length|Invalid array length/i.test(e.message)) {
      process.stderr.write(`xanes: error: out of memory: ${e.message}; lower --memory or split the stack into smaller fields of view\n`);
      return 2;
    }
    const err = e as Error;
    process.stderr.write(`xanes: internal error: ${err?.message ?? String(e)}\n`);
    if (process.env.XANES_DEBUG) process.stderr.write(`${err?.stack}\n`);
    return 1;
  }
}
