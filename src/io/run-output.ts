/**
 * The life of a command's output folder: created as a temporary sibling, removed if the
 * run fails or is interrupted (SIGINT/SIGTERM), moved into place when it has finished.
 * The callback writes everything, summary.json last (with "finished": true).
 */
import { OutputDir } from './outdir.js';

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
