/**
 * The life of a command's output folder (src/io/outdir.ts): created as a marked temporary
 * sibling, removed if the run fails or is interrupted (SIGINT, SIGTERM, SIGHUP), moved into
 * place when it has finished. The callback writes everything, summary.json last (with
 * "finished": true). A file-system failure while writing (disk full, read-only) becomes one
 * error line naming the path. After summary.json, results.h5 (src/io/results-h5.ts) is
 * written from the finished files.
 */
import { OutputDir, outputFsError } from './outdir.js';
import { InputError } from './errors.js';
import { onInterrupt } from './interrupt.js';
import { writeResultsH5 } from './results-h5.js';
import { memoryPhase } from '../pipeline/memory.js';

export async function withOutputDir<T>(out: string, inputs: readonly string[], body: (dir: OutputDir) => Promise<T>): Promise<T> {
  // The handler is in place before the temporary folder exists, so that no signal can
  // arrive between the two and leave the folder behind.
  let dir: OutputDir | null = null;
  const release = onInterrupt(() => dir?.abandon());
  try {
    dir = OutputDir.create(out, inputs);
  } catch (e) {
    release();
    throw e;
  }
  try {
    const r = await body(dir);
    await writeResultsH5(dir.tmp, dir.results);
    dir.commit();
    memoryPhase('results.h5 written, folder in place');
    return r;
  } catch (e) {
    dir.abandon();
    if (e instanceof InputError) throw e;
    throw outputFsError(e, out, dir) ?? e;
  } finally {
    release();
  }
}
