/**
 * Runs the CLI through peak-rss.mjs and returns its exit code and the OS's peak resident size
 * of the whole command (the memory tests' one way of measuring).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const helper = fileURLToPath(new URL('./peak-rss.mjs', import.meta.url));

/** The acceptance: peak RSS at most 1.1 x --memory. */
export const RSS_TOLERANCE = 1.1;

export interface PeakRssRun {
  code: number;
  maxRssMiB: number;
  stderr: string;
}

export function peakRss(args: string[]): Promise<PeakRssRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [helper, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', () => {
      try {
        const { code, maxRssKiB } = JSON.parse(stdout.trim().split('\n').pop() ?? '') as { code: number; maxRssKiB: number };
        resolve({ code, maxRssMiB: maxRssKiB / 1024, stderr });
      } catch {
        reject(new Error(`no result from ${args.join(' ')}: ${stderr}`));
      }
    });
  });
}
