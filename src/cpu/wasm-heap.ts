/**
 * One WebAssembly linear memory per thread that kernels and their callers share, so a tile
 * allocated here is read by a WebAssembly kernel where it lies (no copy into the kernel's
 * memory: for the memory-bound kernels that copy cost as much as the kernel, bench/README.md).
 *
 * The memory is `shared` (backed by a SharedArrayBuffer): growing it never detaches the views
 * handed out before, so a Float32Array from heapF32 stays valid however the heap grows. Its
 * maximum is 4 GiB (the wasm32 address space); only what is allocated is committed.
 * Allocation is first fit over a free list with neighbours merged (a run allocates the same
 * few sizes again and again: tiles, per-plan scratch), every block 64-byte aligned and padded
 * by HEAP_PAD bytes, so a SIMD load of a last partial vector never leaves the block.
 */
import type { WasmMemory } from './wasm.js';

/** Bytes every block is padded by (a 16-byte vector load past the last value stays inside). */
export const HEAP_PAD = 64;
const PAGE = 65536;
const MAX_PAGES = 65536;
const ALIGN = 64;

interface SharedMemoryApi {
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => WasmMemory & { grow(pages: number): number };
}

class Heap {
  readonly mem: WasmMemory & { grow(pages: number): number };
  /** Every buffer object the memory has had (views made from any of them are in the heap). */
  private readonly buffers = new WeakSet<object>();
  private top = ALIGN; // address 0 is never handed out
  /** Free blocks [address, bytes], sorted by address. */
  private free: [number, number][] = [];
  private readonly sizes = new Map<number, number>();

  constructor() {
    const WA = (globalThis as unknown as { WebAssembly: SharedMemoryApi }).WebAssembly;
    this.mem = new WA.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
    this.buffers.add(this.mem.buffer);
  }

  get buffer(): ArrayBuffer {
    const b = this.mem.buffer;
    this.buffers.add(b);
    return b;
  }

  alloc(bytes: number): number {
    const need = Math.ceil((bytes + HEAP_PAD) / ALIGN) * ALIGN;
    for (let i = 0; i < this.free.length; i++) {
      const [a, n] = this.free[i];
      if (n < need) continue;
      if (n === need) this.free.splice(i, 1);
      else this.free[i] = [a + need, n - need];
      this.sizes.set(a, need);
      return a;
    }
    const a = this.top;
    const end = a + need;
    if (end > MAX_PAGES * PAGE) throw new RangeError(`WebAssembly heap: ${bytes} bytes do not fit in 4 GiB`);
    const have = this.mem.buffer.byteLength;
    if (end > have) this.mem.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    this.sizes.set(a, need);
    return a;
  }

  release(a: number): void {
    const n = this.sizes.get(a);
    if (n === undefined) return;
    this.sizes.delete(a);
    let i = 0;
    while (i < this.free.length && this.free[i][0] < a) i++;
    this.free.splice(i, 0, [a, n]);
    // Merge with the following and the preceding free block.
    if (i + 1 < this.free.length && this.free[i][0] + this.free[i][1] === this.free[i + 1][0]) {
      this.free[i][1] += this.free[i + 1][1];
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1][0] + this.free[i - 1][1] === this.free[i][0]) {
      this.free[i - 1][1] += this.free[i][1];
      this.free.splice(i, 1);
      i--;
    }
    // A free block at the top goes back to the bump pointer.
    const last = this.free[this.free.length - 1];
    if (last && last[0] + last[1] === this.top) {
      this.top = last[0];
      this.free.pop();
    }
  }

  contains(a: ArrayBufferView): boolean {
    return this.buffers.has(a.buffer);
  }
}

let heap: Heap | null = null;

/** This thread's heap (created on first use). */
export function wasmHeap(): { mem: WasmMemory; buffer: ArrayBuffer } {
  heap ??= new Heap();
  return { mem: heap.mem, buffer: heap.buffer };
}

/** Bytes of the heap a block of `bytes` takes (padded and aligned as alloc does). */
function heapBlockBytes(bytes: number): number {
  return Math.ceil((bytes + HEAP_PAD) / ALIGN) * ALIGN;
}

/**
 * What keeping a block of `bytes` can add to a thread's committed heap: the block
 * (heapBlockBytes) and, as the heap grows in whole pages of 64 KiB, up to one page more.
 * For memory plans of kernels that keep a block per plan (cpuKernelBytes): the heap never
 * shrinks, so what a thread has allocated stays committed until the thread ends.
 */
export function heapGrowthBytes(bytes: number): number {
  return heapBlockBytes(bytes) + PAGE;
}

/** Allocates `bytes` in the heap; returns the byte address. */
export function heapAlloc(bytes: number): number {
  heap ??= new Heap();
  return heap.alloc(bytes);
}

/** A Float32Array of n values in the heap (zeroed on first allocation only: contents are whatever the block last held). */
export function heapF32(n: number): Float32Array {
  const a = heapAlloc(4 * n);
  return new Float32Array(heap!.buffer, a, n);
}

/** A Float64Array of n values in the heap. */
export function heapF64(n: number): Float64Array {
  const a = heapAlloc(8 * n);
  return new Float64Array(heap!.buffer, a, n);
}

/** Returns a block from heapF32 / heapF64 / heapAlloc to the heap (the view must not be used after). */
export function heapFree(a: ArrayBufferView | number): void {
  if (!heap) return;
  if (typeof a === 'number') heap.release(a);
  else if (heap.contains(a)) heap.release(a.byteOffset);
}

/** True if the array's values lie in this thread's heap (a kernel can read them in place at a.byteOffset). */
export function inHeap(a: ArrayBufferView): boolean {
  return heap !== null && heap.contains(a);
}
