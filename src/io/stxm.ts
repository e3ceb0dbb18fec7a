/**
 * STXM image stacks in the ALS / CLS / UVSOR format: a text scan definition (.hdr) and one
 * ASCII image (.xim) per energy.
 *
 * .hdr: nested `Name = { ... };` blocks. The energy axis is `StackAxis = { ... Points =
 * (n, e1, ..., en); }`; the spatial axes are the first region's `PAxis` (x, columns) and
 * `QAxis` (y, rows), each with a `Points` list of positions in um, from which the pixel size
 * comes. .xim: whitespace-separated values, one image row per line, line i = QAxis point i.
 * Images are `<hdr name without .hdr>_<channel><index>.xim`, index zero-padded to 3 digits
 * (a000, a001, ...), channel 'a' being the first detector channel.
 *
 * Opening reads every .xim once to check it (present, as many lines as QAxis points, as
 * many numbers per line as PAxis points) and to index where each line starts; readRows then
 * reads and parses only the requested lines of each file, so stacks larger than memory
 * stream like any other StackSource.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from './errors.js';
import { readBounded } from './files.js';
import { checkRowRequest, type StackSource } from '../stack/source.js';

export interface StxmHeader {
  path: string;
  /** eV, strictly increasing. */
  energies: Float64Array;
  /** Positions of the columns (PAxis) and rows (QAxis), um. */
  x: Float64Array;
  y: Float64Array;
  /** Mean spacing of the positions, um per pixel. */
  pixelSizeUm: { x: number; y: number };
  /** Detector channel names listed in the scan definition (first = channel 'a'). */
  channels: string[];
  scanType: string;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** The `Points = (n, v1, ..., vn)` list of the block `name = { ... }`, or null if absent. */
function pointsOf(text: string, name: string, file: string): Float64Array | null {
  const re = new RegExp(`\\b${name}\\s*=\\s*\\{`, 'g');
  const m = re.exec(text);
  if (!m) return null;
  // The block ends at its matching brace.
  let depth = 0;
  let end = -1;
  for (let i = m.index + m[0].length - 1; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new InputError(file, `the ${name} block is not closed (missing '}')`);
  const block = text.slice(m.index, end);
  const pm = /Points\s*=\s*\(([^)]*)\)/.exec(block);
  if (!pm) throw new InputError(file, `the ${name} block has no 'Points = (n, ...)' list`);
  const tokens = pm[1].split(',').map((t) => t.trim()).filter((t) => t !== '');
  if (tokens.length === 0 || !/^\d+$/.test(tokens[0])) throw new InputError(file, `${name} Points: expected a count first, got '${tokens[0] ?? ''}'`);
  const n = Number(tokens[0]);
  if (tokens.length - 1 !== n) throw new InputError(file, `${name} Points: the count says ${n} but ${tokens.length - 1} values follow`);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = tokens[i + 1];
    if (!NUMBER.test(t)) throw new InputError(file, `${name} Points: '${t}' is not a number`);
    out[i] = Number(t);
  }
  return out;
}

function meanSpacing(v: Float64Array): number {
  return v.length > 1 ? Math.abs(v[v.length - 1] - v[0]) / (v.length - 1) : NaN;
}

/** Parses a .hdr scan definition (energies, axes, channels). */
export function readStxmHeader(hdrPath: string): StxmHeader {
  const text = readBounded(hdrPath, 'an STXM scan definition').toString('latin1');
  if (!/ScanDefinition\s*=/.test(text)) throw new InputError(hdrPath, 'not an STXM scan definition (no ScanDefinition block)');
  const energies = pointsOf(text, 'StackAxis', hdrPath);
  if (!energies) throw new InputError(hdrPath, 'no energy axis (no StackAxis block with Points): not an image stack scan');
  if (energies.length === 0) throw new InputError(hdrPath, 'the energy axis (StackAxis) has no points');
  for (let i = 1; i < energies.length; i++) {
    if (!(energies[i] > energies[i - 1])) {
      throw new InputError(hdrPath, `StackAxis energies not strictly increasing at point ${i + 1}: ${energies[i]} after ${energies[i - 1]}`);
    }
  }
  const regions = /Regions\s*=\s*\(\s*(\d+)/.exec(text);
  if (regions && Number(regions[1]) > 1) throw new InputError(hdrPath, `${regions[1]} spatial regions: only single-region image stacks are supported`);
  const x = pointsOf(text, 'PAxis', hdrPath);
  const y = pointsOf(text, 'QAxis', hdrPath);
  if (!x || !y) throw new InputError(hdrPath, `no ${!x ? 'PAxis (x)' : 'QAxis (y)'} block: not an image scan`);
  if (x.length === 0 || y.length === 0) throw new InputError(hdrPath, `empty spatial axis (${x.length} x ${y.length} points)`);
  const channels: string[] = [];
  const ch = /ScanDefinition[\s\S]*?Channels\s*=\s*\(\s*\d+\s*,([\s\S]*?)\)\s*;/.exec(text);
  if (ch) for (const m of ch[1].matchAll(/Name\s*=\s*"([^"]*)"/g)) channels.push(m[1]);
  const type = /Type\s*=\s*"([^"]*)"/.exec(text);
  return {
    path: hdrPath,
    energies,
    x,
    y,
    pixelSizeUm: { x: meanSpacing(x), y: meanSpacing(y) },
    channels,
    scanType: type ? type[1] : '',
  };
}

/** File name of the image at energy index i of `channel` ('a' = first channel). */
export function ximPath(hdrPath: string, i: number, channel = 'a'): string {
  const dir = path.dirname(hdrPath);
  const base = path.basename(hdrPath).replace(/\.hdr$/i, '');
  return path.join(dir, `${base}_${channel}${String(i).padStart(3, '0')}.xim`);
}

/** Largest single read while streaming rows out of one .xim file. */
const READ_CHUNK = 16 * 1024 * 1024;

export class StxmStack implements StackSource {
  readonly dtype = 'ascii (.xim)';
  readonly nE: number;
  readonly height: number;
  readonly width: number;
  readonly energies: Float64Array;

  private constructor(
    readonly header: StxmHeader,
    readonly files: string[],
    /** Per file: byte offset where each of the height lines starts, plus the end. */
    private lineStarts: Float64Array[],
  ) {
    this.nE = header.energies.length;
    this.height = header.y.length;
    this.width = header.x.length;
    this.energies = header.energies;
  }

  get path(): string {
    return this.header.path;
  }

  get pixelSizeUm(): { x: number; y: number } {
    return this.header.pixelSizeUm;
  }

  /** Opens and checks a stack: every image present, complete, numeric, and the same size. */
  static open(hdrPath: string, channel = 'a'): StxmStack {
    const header = readStxmHeader(hdrPath);
    const W = header.x.length;
    const H = header.y.length;
    const files: string[] = [];
    const starts: Float64Array[] = [];
    for (let i = 0; i < header.energies.length; i++) {
      const f = ximPath(hdrPath, i, channel);
      if (!fs.existsSync(f)) {
        throw new InputError(f, `missing: ${hdrPath} lists ${header.energies.length} energies, so one image per energy is expected (${path.basename(ximPath(hdrPath, 0, channel))} .. ${path.basename(ximPath(hdrPath, header.energies.length - 1, channel))})`);
      }
      files.push(f);
      starts.push(indexXim(f, W, H, hdrPath));
    }
    return new StxmStack(header, files, starts);
  }

  async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
    checkRowRequest(this, y0, rows, out);
    const n = rows * this.width;
    for (let e = 0; e < this.nE; e++) {
      const starts = this.lineStarts[e];
      const fd = fs.openSync(this.files[e], 'r');
      try {
        let row = y0;
        while (row < y0 + rows) {
          // As many whole lines as fit one chunk (at least one).
          let last = row + 1;
          while (last < y0 + rows && starts[last + 1] - starts[row] <= READ_CHUNK) last++;
          const from = starts[row];
          const len = starts[last] - from;
          const buf = Buffer.allocUnsafe(len);
          let got = 0;
          while (got < len) {
            const k = fs.readSync(fd, buf, got, len - got, from + got);
            if (k === 0) throw new InputError(this.files[e], 'the file changed while it was being read (shorter than when opened)');
            got += k;
          }
          parseValues(buf, out, e * n + (row - y0) * this.width, (last - row) * this.width, this.files[e]);
          row = last;
        }
      } finally {
        fs.closeSync(fd);
      }
    }
  }

  close(): void {}
}

/** Parses `count` whitespace-separated numbers from buf into out[at...]. */
function parseValues(buf: Buffer, out: Float32Array, at: number, count: number, file: string): void {
  const tokens = buf.toString('latin1').split(/\s+/);
  let k = 0;
  for (const t of tokens) {
    if (t === '') continue;
    if (k === count) throw new InputError(file, 'more values than expected (the file changed since it was opened)');
    out[at + k++] = Number(t);
  }
  if (k !== count) throw new InputError(file, `${k} values where ${count} were expected (the file changed since it was opened)`);
}

/**
 * Checks one .xim (H non-blank lines of W numbers each) and returns where each line starts
 * (H + 1 offsets, the last = end of the last line). Trailing blank lines are allowed.
 */
function indexXim(file: string, W: number, H: number, hdrPath: string): Float64Array {
  // At most ~40 characters per number (sign, 17 digits, exponent, separators): a larger file
  // is not this image, and is refused before it is read whole.
  const buf = readBounded(file, `an image of ${W}x${H} numbers`, Math.max(2 ** 20, H * (W * 40 + 16)));
  const starts = new Float64Array(H + 1);
  let line = 0; // non-blank lines seen
  let pos = 0;
  let physical = 0;
  while (pos < buf.length) {
    let end = buf.indexOf(0x0a, pos);
    if (end < 0) end = buf.length;
    physical++;
    const text = buf.toString('latin1', pos, end);
    const tokens = text.split(/\s+/).filter((t) => t !== '');
    if (tokens.length > 0) {
      if (line >= H) throw new InputError(file, `more than ${H} image rows (line ${physical}); ${hdrPath} gives ${H} rows (QAxis points)`);
      if (tokens.length !== W) {
        throw new InputError(file, `ragged image: line ${physical} has ${tokens.length} values, expected ${W} (PAxis points in ${hdrPath})`);
      }
      for (const t of tokens) {
        if (!NUMBER.test(t) && !/^[+-]?(nan|inf|infinity)$/i.test(t)) throw new InputError(file, `line ${physical}: '${t}' is not a number`);
      }
      starts[line] = pos;
      line++;
      starts[line] = end;
    } else if (line > 0 && line < H) {
      throw new InputError(file, `blank line ${physical} inside the image (after ${line} of ${H} rows)`);
    }
    pos = end + 1;
  }
  if (line < H) throw new InputError(file, `ragged image: ${line} rows, expected ${H} (QAxis points in ${hdrPath})`);
  return starts;
}
