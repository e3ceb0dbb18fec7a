/**
 * The life of a command's output folder: created as a temporary sibling, removed if the
 * run fails or is interrupted (SIGINT/SIGTERM), moved into place when it has finished.
 * The callback writes everything, summary.json last (with "finished": true); then results.h5
 * (src/io/results-h5.ts) is written from the finished files.
 */
import { OutputDir } from './outdir.js';
import { writeResultsH5 } from './results-h5.js';

export async function withOutputDir<T>(out: string, body: (dir: OutputDir) => Promise<T>): Promise<T> {
  const dir = OutputDir.create(out);
  const onSignal = () => {
    dir.abandon();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const r = await body(dir);
    await writeResultsH5(dir.tmp, dir.results);
    dir.commit();
    return r;
  } catch (e) {
    dir.abandon();
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
