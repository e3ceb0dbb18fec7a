/**
 * Dawn writes a few warnings from C++ straight to file descriptor 2 while it creates an
 * adapter (on llvmpipe: "Warning: maxDynamicUniformBuffersPerPipelineLayout artificially
 * reduced ..."), which Node cannot filter, and Node cannot duplicate a descriptor (no dup2).
 * Around device creation only, fd 2 is pointed at /dev/null, then back at a descriptor that
 * writes where fd 2 wrote before:
 *  - a terminal or a pipe: fd 2's own target, re-opened through /proc/self/fd (Linux);
 *  - anything else (a socket, which cannot be re-opened; a regular file, whose re-opened
 *    descriptor would have its own offset and overwrite, or be overwritten by, what stdout
 *    and the parent write to the same file): a named pipe read by a `cat` child process that
 *    inherited the original fd 2 and copies everything to it (its own process group, so
 *    Ctrl-C does not end it before us; it ends when this process closes its stderr, which
 *    at exit waits for it).
 * Elsewhere, or if any step fails before fd 2 is touched, nothing is changed and the
 * warnings pass through. XANES_DEBUG=1 keeps them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

/** Runs `fn` with native writes to stderr discarded (see the module comment). */
export async function withNativeStderrSilenced<T>(fn: () => Promise<T>): Promise<T> {
  const restore = await silence();
  try {
    return await fn();
  } finally {
    restore();
  }
}

const noop = () => {};

async function silence(): Promise<() => void> {
  if (process.env.XANES_DEBUG || process.platform !== 'linux') return noop;
  let kind: fs.Stats;
  try {
    kind = fs.fstatSync(2);
  } catch {
    return noop;
  }
  // A second descriptor that writes where fd 2 writes now.
  const saved = kind.isCharacterDevice() || kind.isFIFO() ? reopen('/proc/self/fd/2') : await relay();
  if (saved < 0) return noop;
  try {
    fs.closeSync(2);
    const nul = fs.openSync('/dev/null', 'a'); // the lowest free descriptor: 2
    if (nul !== 2) {
      fs.closeSync(nul);
      reopen2(saved);
      return noop;
    }
  } catch {
    reopen2(saved);
    return noop;
  }
  return () => reopen2(saved);
}

function reopen(file: string): number {
  try {
    return fs.openSync(file, 'a'); // 'a' never truncates a file
  } catch {
    return -1;
  }
}

/**
 * The write end of a named pipe whose reader, a `cat` child, copies to the original fd 2;
 * -1 if that cannot be set up (no mkfifo or cat, no temporary folder).
 */
async function relay(): Promise<number> {
  let dir: string;
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-stderr-'));
  } catch {
    return -1;
  }
  const fifo = path.join(dir, 'relay');
  try {
    if (spawnSync('mkfifo', ['-m', '600', fifo], { stdio: 'ignore' }).status !== 0) return -1;
    const child = spawn('cat', [fifo], { stdio: ['ignore', 2, 'ignore'], detached: true });
    child.on('error', noop);
    if (child.pid === undefined) return -1; // no cat here
    child.unref();
    if (child.pid !== undefined) drainAtExit(child.pid);
    // Opening the write end without blocking fails (ENXIO) until cat has opened the read end.
    for (let waited = 0; waited < 5000; waited += 10) {
      try {
        const nb = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
        // A blocking descriptor for the pipe, through /proc (a pipe can be re-opened), then
        // the non-blocking one closed.
        const fd = reopen(`/proc/self/fd/${nb}`);
        fs.closeSync(nb);
        return fd;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENXIO' || child.exitCode !== null) break;
        await new Promise((res) => setTimeout(res, 10));
      }
    }
    child.kill();
    return -1;
  } catch {
    return -1;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * At exit: closes this process's stderr so the relay reads to the end, and waits (at most
 * 3 s) until it has exited, so that every line is out before whatever runs next writes to
 * the same place (`xanes ... > log 2>&1; echo done` keeps its order).
 */
function drainAtExit(pid: number): void {
  process.once('exit', () => {
    try {
      fs.closeSync(2);
    } catch {
      return;
    }
    const wait = new Int32Array(new SharedArrayBuffer(4));
    for (let waited = 0; waited < 3000; waited += 5) {
      let state: string;
      try {
        state = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
      } catch {
        return; // gone
      }
      if (state === 'Z' || state === 'X') return;
      Atomics.wait(wait, 0, 0, 5);
    }
  });
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
