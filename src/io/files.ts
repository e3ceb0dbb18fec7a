/**
 * Reading small whole files (energies, spectra, references, scan definitions) with a size
 * cap: these files are kilobytes, so one of hundreds of megabytes is not what the user
 * meant, and reading it whole would break the memory budget before anything is checked.
 */
import fs from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { InputError } from './errors.js';

const MiB = 2 ** 20;

/** Largest text input read whole (spectra, energies, Athena projects once inflated). */
export const TEXT_FILE_CAP = 64 * MiB;

function mib(bytes: number): string {
  return bytes >= MiB ? `${(bytes / MiB).toFixed(0)} MiB` : `${bytes} bytes`;
}

/** The whole file, or an InputError naming it: missing, a directory, unreadable, or over `cap` bytes. */
export function readBounded(path: string, what: string, cap = TEXT_FILE_CAP): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new InputError(path, 'no such file');
    if (err.code === 'EISDIR') throw new InputError(path, 'is a directory, not a file');
    if (err.code === 'EACCES') throw new InputError(path, 'permission denied');
    throw new InputError(path, `cannot read: ${err.message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new InputError(path, 'is a directory, not a file');
    if (st.size > cap) throw new InputError(path, `${mib(st.size)} is too large for ${what} (at most ${mib(cap)})`);
    const buf = Buffer.alloc(st.size);
    for (let done = 0; done < buf.length; ) {
      const n = fs.readSync(fd, buf, done, buf.length - done, done);
      if (n === 0) throw new InputError(path, 'the file got shorter while it was read');
      done += n;
    }
    return buf;
  } catch (e) {
    if (e instanceof InputError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new InputError(path, err.code === 'EISDIR' ? 'is a directory, not a file' : `cannot read: ${err.message}`);
  } finally {
    fs.closeSync(fd);
  }
}

/** gzip data inflated to at most `cap` bytes (a gzip bomb is an error, not 2 GiB of memory). */
export function gunzipBounded(path: string, buf: Buffer, what: string, cap = TEXT_FILE_CAP): Buffer {
  try {
    return gunzipSync(buf, { maxOutputLength: cap });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
      throw new InputError(path, `gzip data inflates to more than ${mib(cap)}: too large for ${what} (a damaged file or a decompression bomb)`);
    }
    throw new InputError(path, `damaged gzip data: ${err.message}`);
  }
}
