/**
 * OLE compound files ([MS-CFB], the container of Zeiss/Xradia .xrm and .txrm) as named
 * streams with positioned reads.
 *
 * Two readers behind one interface:
 * - small files (up to WHOLE_FILE_BYTES) are parsed whole by SheetJS `cfb`, the maintained
 *   library, and streams are served from its parsed entries;
 * - larger files (a .txrm of a few GB) are never loaded: the header, the sector allocation
 *   table (FAT, 4 bytes per 512-byte sector: 32 MiB for a 4 GiB file), the directory and
 *   the mini stream's tables are read, and a stream's bytes are read by following its
 *   sector chain with positioned reads of contiguous runs, only the bytes asked for.
 * Both give the same bytes (test/io/xradia.test.ts reads one file through each).
 */
import fs from 'node:fs';
import CFB from 'cfb';
import { InputError } from './errors.js';

/** Files up to this size are parsed whole by `cfb` (well inside any --memory budget). */
export const WHOLE_FILE_BYTES = 64 * 2 ** 20;

const SIGNATURE = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
const ENDOFCHAIN = 0xfffffffe;
const FREESECT = 0xffffffff;
const NOSTREAM = 0xffffffff;
const MAXREGSECT = 0xfffffffa;

export interface OleReader {
  readonly path: string;
  /** Stream paths below the root, '/'-separated (e.g. 'ImageInfo/Energy'). */
  streams(): string[];
  /** Byte size of a stream, or undefined when there is none of that name (case-insensitive). */
  size(stream: string): number | undefined;
  /** Bytes [offset, offset+length) of a stream. */
  read(stream: string, offset: number, length: number): Uint8Array;
  close(): void;
}

export function isOleFile(path: string): boolean {
  let fd = -1;
  try {
    fd = fs.openSync(path, 'r');
    const b = Buffer.alloc(8);
    return fs.readSync(fd, b, 0, 8, 0) === 8 && b.equals(SIGNATURE);
  } catch {
    return false;
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

/** Opens an OLE file: whole through `cfb` when small (or when `whole` says so), else by sectors. */
export function openOle(path: string, opts: { whole?: boolean } = {}): OleReader {
  let size: number;
  try {
    const st = fs.statSync(path);
    if (st.isDirectory()) throw new InputError(path, 'is a directory, not a file');
    size = st.size;
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(path, 'no such file');
  }
  if (!isOleFile(path)) throw new InputError(path, 'not an OLE compound file (Xradia .xrm/.txrm): wrong signature');
  const whole = opts.whole ?? size <= WHOLE_FILE_BYTES;
  return whole ? CfbOle.open(path) : SectorOle.open(path, size);
}

function key(p: string): string {
  return p.toLowerCase();
}

/** A file parsed whole by SheetJS cfb. */
class CfbOle implements OleReader {
  private byPath = new Map<string, { name: string; content: Uint8Array }>();

  private constructor(readonly path: string) {}

  static open(path: string): CfbOle {
    const o = new CfbOle(path);
    let c: CFB.CFB$Container;
    try {
      c = CFB.read(fs.readFileSync(path), { type: 'buffer' });
    } catch (e) {
      throw new InputError(path, `damaged or truncated OLE compound file (${e instanceof Error ? e.message : String(e)})`);
    }
    c.FullPaths.forEach((full, i) => {
      const entry = c.FileIndex[i];
      if (entry.type !== 2) return; // streams only
      // FullPaths start with the root's name ("Root Entry/"); keep the part below it.
      const rel = full.split('/').slice(1).filter((s) => s !== '').join('/');
      const content = entry.content instanceof Uint8Array ? entry.content : Uint8Array.from(entry.content ?? []);
      if (content.length < entry.size) throw new InputError(path, `stream ${rel} is cut short (${content.length} of ${entry.size} bytes): truncated file`);
      o.byPath.set(key(rel), { name: rel, content: content.subarray(0, entry.size) });
    });
    return o;
  }

  streams(): string[] {
    return [...this.byPath.values()].map((v) => v.name);
  }

  size(stream: string): number | undefined {
    return this.byPath.get(key(stream))?.content.length;
  }

  read(stream: string, offset: number, length: number): Uint8Array {
    const s = this.byPath.get(key(stream));
    if (!s) throw new InputError(this.path, `no stream ${stream}`);
    if (offset < 0 || offset + length > s.content.length) throw new RangeError(`${this.path}: ${stream} [${offset}, ${offset + length}) outside ${s.content.length} bytes`);
    return s.content.subarray(offset, offset + length);
  }

  close(): void {
    this.byPath.clear();
  }
}

interface DirEntry {
  name: string;
  type: number;
  left: number;
  right: number;
  child: number;
  start: number;
  size: number;
}

/** A file read sector by sector: only its tables stay in memory. */
class SectorOle implements OleReader {
  private fd: number;
  private sectorSize = 512;
  private miniSectorSize = 64;
  private miniCutoff = 4096;
  private fat: Uint32Array = new Uint32Array(0);
  private miniFat: Uint32Array = new Uint32Array(0);
  private entries: DirEntry[] = [];
  private byPath = new Map<string, { name: string; entry: DirEntry }>();
  private chains = new Map<number, Uint32Array>();
  private miniChains = new Map<number, Uint32Array>();
  private rootChain: Uint32Array = new Uint32Array(0);

  private constructor(readonly path: string, private fileSize: number) {
    this.fd = fs.openSync(path, 'r');
  }

  static open(path: string, fileSize: number): SectorOle {
    const o = new SectorOle(path, fileSize);
    try {
      o.load();
    } catch (e) {
      o.close();
      throw e;
    }
    return o;
  }

  private fail(problem: string): never {
    throw new InputError(this.path, problem);
  }

  private pread(buf: Uint8Array, pos: number): void {
    let done = 0;
    while (done < buf.length) {
      const n = fs.readSync(this.fd, buf, done, buf.length - done, pos + done);
      if (n === 0) this.fail(`truncated file: needs bytes up to ${pos + buf.length}, the file has ${this.fileSize}`);
      done += n;
    }
  }

  private sectorOffset(s: number): number {
    return (s + 1) * this.sectorSize;
  }

  private readSector(s: number): Uint8Array {
    if (s > MAXREGSECT) this.fail(`damaged sector chain (sector id 0x${s.toString(16)})`);
    const b = new Uint8Array(this.sectorSize);
    this.pread(b, this.sectorOffset(s));
    return b;
  }

  private load(): void {
    const h = Buffer.alloc(512);
    this.pread(h, 0);
    const major = h.readUInt16LE(0x1a);
    const shift = h.readUInt16LE(0x1e);
    if (!((major === 3 && shift === 9) || (major === 4 && shift === 12))) this.fail(`unsupported compound file version ${major} with sector shift ${shift}`);
    this.sectorSize = 1 << shift;
    this.miniSectorSize = 1 << h.readUInt16LE(0x20);
    this.miniCutoff = h.readUInt32LE(0x38);
    const nFat = h.readUInt32LE(0x2c);
    const firstDir = h.readUInt32LE(0x30);
    const firstMiniFat = h.readUInt32LE(0x3c);
    const firstDifat = h.readUInt32LE(0x44);
    const nDifat = h.readUInt32LE(0x48);
    const maxSectors = Math.ceil(this.fileSize / this.sectorSize);
    if (nFat > maxSectors) this.fail(`damaged header: ${nFat} FAT sectors in a file of ${this.fileSize} bytes`);
    // The FAT's own sectors: 109 in the header, then chained DIFAT sectors.
    const fatSectors: number[] = [];
    for (let i = 0; i < 109 && fatSectors.length < nFat; i++) fatSectors.push(h.readUInt32LE(0x4c + 4 * i));
    let d = firstDifat;
    const perDifat = this.sectorSize / 4 - 1;
    for (let k = 0; k < nDifat && fatSectors.length < nFat; k++) {
      const b = Buffer.from(this.readSector(d));
      for (let i = 0; i < perDifat && fatSectors.length < nFat; i++) fatSectors.push(b.readUInt32LE(4 * i));
      d = b.readUInt32LE(4 * perDifat);
    }
    if (fatSectors.length < nFat) this.fail('damaged header: the sector table list (DIFAT) ends early');
    const per = this.sectorSize / 4;
    this.fat = new Uint32Array(nFat * per);
    fatSectors.forEach((s, i) => {
      const b = this.readSector(s);
      this.fat.set(new Uint32Array(b.buffer, b.byteOffset, per), i * per);
    });
    // Directory.
    const dirChain = this.chain(firstDir, Infinity);
    const entriesPerSector = this.sectorSize / 128;
    for (const s of dirChain) {
      const b = Buffer.from(this.readSector(s));
      for (let i = 0; i < entriesPerSector; i++) {
        const o = i * 128;
        const nameLen = b.readUInt16LE(o + 0x40);
        const name = b.toString('utf16le', o, o + Math.max(0, Math.min(64, nameLen) - 2));
        const size = Number(b.readBigUInt64LE(o + 0x78));
        this.entries.push({ name, type: b[o + 0x42], left: b.readUInt32LE(o + 0x44), right: b.readUInt32LE(o + 0x48), child: b.readUInt32LE(o + 0x4c), start: b.readUInt32LE(o + 0x74), size: major === 3 ? size % 2 ** 32 : size });
      }
    }
    const root = this.entries[0];
    if (!root || root.type !== 5) this.fail('damaged directory: no root entry');
    // Mini stream tables.
    if (firstMiniFat !== ENDOFCHAIN && firstMiniFat !== FREESECT) {
      const mf = this.chain(firstMiniFat, Infinity);
      this.miniFat = new Uint32Array(mf.length * per);
      mf.forEach((s, i) => {
        const b = this.readSector(s);
        this.miniFat.set(new Uint32Array(b.buffer, b.byteOffset, per), i * per);
      });
    }
    this.rootChain = root.size > 0 ? this.chain(root.start, Math.ceil(root.size / this.sectorSize)) : new Uint32Array(0);
    // Walk the tree of storages (each storage's children are a binary tree of siblings).
    const seen = new Set<number>();
    const walk = (id: number, prefix: string) => {
      const stack = [id];
      while (stack.length > 0) {
        const i = stack.pop()!;
        if (i === NOSTREAM || i >= this.entries.length) continue;
        if (seen.has(i)) this.fail('damaged directory: an entry is reached twice (loop)');
        seen.add(i);
        const e = this.entries[i];
        stack.push(e.left, e.right);
        const p = prefix ? `${prefix}/${e.name}` : e.name;
        if (e.type === 2) this.byPath.set(key(p), { name: p, entry: e });
        else if (e.type === 1) walk(e.child, p);
      }
    };
    walk(root.child, '');
  }

  /** A FAT chain from `start`: at most `max` sectors, checked for loops and early ends. */
  private chain(start: number, max: number, table = this.fat, what = 'FAT'): Uint32Array {
    const out: number[] = [];
    let s = start;
    while (s !== ENDOFCHAIN && out.length < max) {
      if (s > MAXREGSECT || s >= table.length) this.fail(`damaged ${what} chain (sector ${s} outside the table of ${table.length}): truncated or corrupt file`);
      out.push(s);
      if (out.length > table.length) this.fail(`damaged ${what} chain (loop)`);
      s = table[s];
    }
    if (Number.isFinite(max) && out.length < max) this.fail(`damaged ${what} chain: a stream ends after ${out.length} of ${max} sectors`);
    return Uint32Array.from(out);
  }

  streams(): string[] {
    return [...this.byPath.values()].map((v) => v.name);
  }

  size(stream: string): number | undefined {
    return this.byPath.get(key(stream))?.entry.size;
  }

  read(stream: string, offset: number, length: number): Uint8Array {
    const s = this.byPath.get(key(stream));
    if (!s) throw new InputError(this.path, `no stream ${stream}`);
    const e = s.entry;
    if (offset < 0 || offset + length > e.size) throw new RangeError(`${this.path}: ${stream} [${offset}, ${offset + length}) outside ${e.size} bytes`);
    const out = new Uint8Array(length);
    if (length === 0) return out;
    if (e.size < this.miniCutoff) {
      // Mini stream: 64-byte sectors inside the root entry's stream.
      let c = this.miniChains.get(e.start);
      if (!c) {
        c = this.chain(e.start, Math.ceil(e.size / this.miniSectorSize), this.miniFat, 'mini FAT');
        this.miniChains.set(e.start, c);
      }
      for (let done = 0; done < length; ) {
        const pos = offset + done;
        const ms = c[Math.floor(pos / this.miniSectorSize)];
        const inMini = pos % this.miniSectorSize;
        const n = Math.min(length - done, this.miniSectorSize - inMini);
        const rootPos = ms * this.miniSectorSize + inMini; // offset in the mini stream
        const sec = this.rootChain[Math.floor(rootPos / this.sectorSize)];
        if (sec === undefined) this.fail(`damaged mini stream (stream ${stream})`);
        this.pread(out.subarray(done, done + n), this.sectorOffset(sec) + (rootPos % this.sectorSize));
        done += n;
      }
      return out;
    }
    let c = this.chains.get(e.start);
    if (!c) {
      c = this.chain(e.start, Math.ceil(e.size / this.sectorSize));
      this.chains.set(e.start, c);
    }
    // Runs of consecutive sectors are read with one positioned read each.
    const S = this.sectorSize;
    let done = 0;
    while (done < length) {
      const pos = offset + done;
      let k = Math.floor(pos / S);
      const first = c[k];
      let run = 1;
      while (k + run < c.length && c[k + run] === first + run && run * S - (pos % S) < length - done) run++;
      const n = Math.min(length - done, run * S - (pos % S));
      this.pread(out.subarray(done, done + n), this.sectorOffset(first) + (pos % S));
      done += n;
      k += run;
    }
    return out;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    this.chains.clear();
    this.miniChains.clear();
  }
}
