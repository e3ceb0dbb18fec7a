/**
 * Dawn writes a few warnings from C++ straight to file descriptor 2 while it creates an
 * adapter (on llvmpipe: "Warning: maxDynamicUniformBuffersPerPipelineLayout artificially
 * reduced ..."), which Node cannot filter. Around device creation only, fd 2 is pointed at
 * /dev/null and then back at the original target, re-opened through /proc/self/fd (Linux);
 * elsewhere, or if any step fails, nothing is changed and the warnings pass through.
 * XANES_DEBUG=1 keeps them.
 */
import fs from 'node:fs';

/** Runs `fn` with native writes to stderr discarded (see the module comment). */
export async function withNativeStderrSilenced<T>(fn: () => Promise<T>): Promise<T> {
  const restore = silence();
  try {
    return await fn();
  } finally {
    restore();
  }
}

function silence(): () => void {
  if (process.env.XANES_DEBUG || process.platform !== 'linux') return () => {};
  let saved = -1;
  try {
    // A second descriptor for whatever fd 2 is (terminal, file, pipe); 'a' never truncates a file.
    saved = fs.openSync('/proc/self/fd/2', 'a');
  } catch {
    return () => {};
  }
  try {
    fs.closeSync(2);
    const nul = fs.openSync('/dev/null', 'a'); // the lowest free descriptor: 2
    if (nul !== 2) {
      fs.closeSync(nul);
      reopen2(saved);
      return () => {};
    }
  } catch {
    reopen2(saved);
    return () => {};
  }
  return () => reopen2(saved);
}

/** Points fd 2 back at what `saved` refers to, then closes `saved`. */
function reopen2(saved: number): void {
  try {
    try {
      fs.closeSync(2);
    } catch {
      // already closed
    }
    const fd = fs.openSync(`/proc/self/fd/${saved}`, 'a');
    if (fd !== 2) fs.closeSync(fd);
  } catch {
    // leave it: stderr lost is better than a crash here
  } finally {
    try {
      fs.closeSync(saved);
    } catch {
      // gone
    }
  }
}
