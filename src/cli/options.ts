/**
 * Helpers of the subcommands. Options themselves are declared once in
 * src/options/schema.ts (flags, recipe keys, checks).
 */
import cliProgress from 'cli-progress';

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
