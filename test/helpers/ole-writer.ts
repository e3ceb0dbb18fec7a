/**
 * A small OLE compound-file writer ([MS-CFB] version 3: 512-byte sectors, 64-byte mini
 * sectors for streams under 4096 bytes), written for the tests from the specification, so
 * that the engine's readers (SheetJS cfb and its own sector reader) are checked against
 * files they did not write; python3-olefile reading the same files checks this writer.
 * Also the Xradia streams (.xrm/.txrm) the engine reads.
 */
const SECTOR = 512;
const MINI = 64;
const CUTOFF = 4096;
const ENDOFCHAIN = 0xfffffffe;
const FREESECT = 0xffffffff;
const FATSECT = 0xfffffffd;
const DIFSECT = 0xfffffffc;
const NOSTREAM = 0xffffffff;

interface Node {
  name: string;
  type: 1 | 2 | 5;
  children: Node[];
  data?: Uint8Array;
  id?: number;
  start?: number;
  size?: number;
}

/** Directory order of siblings: shorter names first, then by upper-case name ([MS-CFB] 2.6.4). */
function cmp(a: Node, b: Node): number {
  return a.name.length - b.name.length || (a.name.toUpperCase() < b.name.toUpperCase() ? -1 : a.name.toUpperCase() > b.name.toUpperCase() ? 1 : 0);
}

export function writeOle(streams: { path: string; data: Uint8Array }[]): Uint8Array {
  const root: Node = { name: 'Root Entry', type: 5, children: [] };
  for (const s of streams) {
    const parts = s.path.split('/');
    let at = root;
    for (const p of parts.slice(0, -1)) {
      let next = at.children.find((c) => c.name === p && c.type === 1);
      if (!next) at.children.push((next = { name: p, type: 1, children: [] }));
      at = next;
    }
    at.children.push({ name: parts[parts.length - 1], type: 2, children: [], data: s.data });
  }
  // Ids in breadth-first order.
  const nodes: Node[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const n = queue.shift()!;
    n.id = nodes.length;
    nodes.push(n);
    n.children.sort(cmp);
    queue.push(...n.children);
  }
  // Mini stream: small streams, each from a mini-sector boundary.
  const small = nodes.filter((n) => n.type === 2 && n.data!.length < CUTOFF);
  const big = nodes.filter((n) => n.type === 2 && n.data!.length >= CUTOFF);
  const miniFat: number[] = [];
  let miniLen = 0;
  for (const n of small) {
    n.size = n.data!.length;
    const k = Math.ceil(n.size / MINI);
    if (k === 0) { n.start = ENDOFCHAIN; continue; }
    n.start = miniFat.length;
    for (let i = 0; i < k; i++) miniFat.push(i === k - 1 ? ENDOFCHAIN : n.start + i + 1);
    miniLen = miniFat.length * MINI;
  }
  // Sectors: big streams, the mini stream, the mini FAT, the directory, then the FAT.
  let s = 0;
  const chains: [number, number][] = []; // [start, count]
  for (const n of big) {
    n.size = n.data!.length;
    n.start = s;
    const k = Math.ceil(n.size / SECTOR);
    chains.push([s, k]);
    s += k;
  }
  const miniStart = miniLen > 0 ? s : ENDOFCHAIN;
  const miniSectors = Math.ceil(miniLen / SECTOR);
  if (miniSectors > 0) chains.push([s, miniSectors]);
  s += miniSectors;
  const miniFatSectors = Math.ceil((miniFat.length * 4) / SECTOR);
  const miniFatStart = miniFatSectors > 0 ? s : ENDOFCHAIN;
  if (miniFatSectors > 0) chains.push([s, miniFatSectors]);
  s += miniFatSectors;
  const dirSectors = Math.ceil(nodes.length / (SECTOR / 128));
  const dirStart = s;
  chains.push([s, dirSectors]);
  s += dirSectors;
  // FAT sectors (109 listed in the header, the rest in chained DIFAT sectors of 127 each).
  let nFat = 1, nDifat = 0;
  for (;;) {
    nDifat = Math.max(0, Math.ceil((nFat - 109) / (SECTOR / 4 - 1)));
    if (nFat * (SECTOR / 4) >= s + nFat + nDifat) break;
    nFat++;
  }
  const fatStart = s;
  const difatStart = s + nFat;
  const total = s + nFat + nDifat;
  const fat = new Uint32Array(nFat * (SECTOR / 4)).fill(FREESECT);
  for (const [st, k] of chains) for (let i = 0; i < k; i++) fat[st + i] = i === k - 1 ? ENDOFCHAIN : st + i + 1;
  for (let i = 0; i < nFat; i++) fat[fatStart + i] = FATSECT;
  for (let i = 0; i < nDifat; i++) fat[difatStart + i] = DIFSECT;

  const out = new Uint8Array(SECTOR * (1 + total));
  const dv = new DataView(out.buffer);
  const sec = (k: number) => SECTOR * (1 + k);
  // Header.
  out.set([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1], 0);
  dv.setUint16(0x18, 0x3e, true);
  dv.setUint16(0x1a, 3, true);
  dv.setUint16(0x1c, 0xfffe, true);
  dv.setUint16(0x1e, 9, true);
  dv.setUint16(0x20, 6, true);
  dv.setUint32(0x2c, nFat, true);
  dv.setUint32(0x30, dirStart, true);
  dv.setUint32(0x38, CUTOFF, true);
  dv.setUint32(0x3c, miniFatStart, true);
  dv.setUint32(0x40, miniFatSectors, true);
  dv.setUint32(0x44, nDifat > 0 ? difatStart : ENDOFCHAIN, true);
  dv.setUint32(0x48, nDifat, true);
  for (let i = 0; i < 109; i++) dv.setUint32(0x4c + 4 * i, i < nFat ? fatStart + i : FREESECT, true);
  const perDifat = SECTOR / 4 - 1;
  for (let k = 0; k < nDifat; k++) {
    const o = sec(difatStart + k);
    for (let i = 0; i < perDifat; i++) {
      const f = 109 + k * perDifat + i;
      dv.setUint32(o + 4 * i, f < nFat ? fatStart + f : FREESECT, true);
    }
    dv.setUint32(o + 4 * perDifat, k + 1 < nDifat ? difatStart + k + 1 : ENDOFCHAIN, true);
  }
  // Data.
  for (const n of big) out.set(n.data!, sec(n.start!));
  for (const n of small) if (n.size! > 0) out.set(n.data!, sec(miniStart) + n.start! * MINI);
  for (let i = 0; i < miniFat.length; i++) dv.setUint32(sec(miniFatStart) + 4 * i, miniFat[i], true);
  for (let i = miniFat.length; i < miniFatSectors * (SECTOR / 4); i++) dv.setUint32(sec(miniFatStart) + 4 * i, FREESECT, true);
  // Directory: children as a chain of right siblings (a valid, if unbalanced, tree; all black).
  const dirBytes = dirSectors * SECTOR;
  for (let i = 0; i < dirBytes / 128; i++) {
    const o = sec(dirStart) + i * 128;
    const n = nodes[i];
    dv.setUint32(o + 0x44, NOSTREAM, true);
    dv.setUint32(o + 0x48, NOSTREAM, true);
    dv.setUint32(o + 0x4c, NOSTREAM, true);
    if (!n) continue;
    for (let c = 0; c < n.name.length; c++) dv.setUint16(o + 2 * c, n.name.charCodeAt(c), true);
    dv.setUint16(o + 0x40, (n.name.length + 1) * 2, true);
    out[o + 0x42] = n.type;
    out[o + 0x43] = 1;
    if (n.children.length > 0) dv.setUint32(o + 0x4c, n.children[0].id!, true);
    const parentOf = nodes.find((p) => p.children.includes(n));
    if (parentOf) {
      const k = parentOf.children.indexOf(n);
      if (k + 1 < parentOf.children.length) dv.setUint32(o + 0x48, parentOf.children[k + 1].id!, true);
    }
    if (n.type === 5) {
      dv.setUint32(o + 0x74, miniStart, true);
      dv.setUint32(o + 0x78, miniLen, true);
    } else if (n.type === 2) {
      dv.setUint32(o + 0x74, n.start!, true);
      dv.setUint32(o + 0x78, n.size!, true);
    }
  }
  for (let i = 0; i < fat.length; i++) dv.setUint32(sec(fatStart) + 4 * i, fat[i], true);
  return out;
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}

function f32(values: ArrayLike<number>): Uint8Array {
  const b = new Uint8Array(4 * values.length);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < values.length; i++) dv.setFloat32(4 * i, values[i], true);
  return b;
}

function pixels(img: Uint16Array | Float32Array): Uint8Array {
  const bs = img instanceof Uint16Array ? 2 : 4;
  const b = new Uint8Array(bs * img.length);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < img.length; i++) {
    if (bs === 2) dv.setUint16(2 * i, img[i], true);
    else dv.setFloat32(4 * i, img[i], true);
  }
  return b;
}

/** The streams of an Xradia file: images (one per energy) with their ImageInfo. */
export function xradiaStreams(o: {
  width: number; height: number; images: (Uint16Array | Float32Array)[]; energies?: number[]; pixelSizeUm?: number;
  reference?: Float32Array; omitImages?: boolean;
}): { path: string; data: Uint8Array }[] {
  const type = o.images[0] instanceof Uint16Array ? 5 : 10;
  const s: { path: string; data: Uint8Array }[] = [
    { path: 'ImageInfo/ImageWidth', data: u32(o.width) },
    { path: 'ImageInfo/ImageHeight', data: u32(o.height) },
    { path: 'ImageInfo/DataType', data: u32(type) },
    { path: 'ImageInfo/ImagesTaken', data: u32(o.images.length) },
    { path: 'ImageInfo/NoOfImages', data: u32(o.images.length) },
  ];
  if (o.energies) s.push({ path: 'ImageInfo/Energy', data: f32(o.energies) });
  if (o.pixelSizeUm) s.push({ path: 'ImageInfo/PixelSize', data: f32([o.pixelSizeUm]) });
  if (!o.omitImages) o.images.forEach((img, k) => s.push({ path: `ImageData${Math.ceil((k + 1) / 100)}/Image${k + 1}`, data: pixels(img) }));
  if (o.reference) {
    s.push({ path: 'ReferenceData/Image', data: pixels(o.reference) });
    s.push({ path: 'ReferenceData/DataType', data: u32(10) });
  }
  return s;
}
