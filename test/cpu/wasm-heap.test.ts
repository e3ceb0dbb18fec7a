/**
 * The WebAssembly heap (src/cpu/wasm-heap.ts): views stay valid while the heap grows (shared
 * memory never detaches), blocks do not overlap, freed blocks are reused and merged, and only
 * arrays allocated there count as in the heap.
 */
import { describe, expect, test } from 'vitest';
import { heapAlloc, heapF32, heapF64, heapFree, HEAP_PAD, inHeap } from '../../src/cpu/wasm-heap.js';

describe('wasm-heap', () => {
  test('views survive growth; blocks are disjoint, 64-byte aligned and padded', () => {
    const a = heapF32(1000);
    a.fill(1.5);
    const big = heapF64(3 << 20); // 24 MiB: the heap grows
    big.fill(2);
    expect(a.length).toBe(1000);
    expect(a.every((v) => v === 1.5)).toBe(true);
    expect(inHeap(a) && inHeap(big)).toBe(true);
    expect(inHeap(new Float32Array(4))).toBe(false);
    for (const v of [a, big]) expect(v.byteOffset % 64).toBe(0);
    const [lo, hi] = a.byteOffset < big.byteOffset ? [a, big] : [big, a];
    expect(lo.byteOffset + lo.byteLength + HEAP_PAD).toBeLessThanOrEqual(hi.byteOffset);
    heapFree(big);
    heapFree(a);
  });

  test('freed blocks are reused, neighbours merged', () => {
    const x = heapAlloc(1 << 20), y = heapAlloc(1 << 20), z = heapAlloc(1 << 20);
    heapFree(x);
    heapFree(y);
    const w = heapAlloc(2 << 20); // fits only in x and y merged
    expect(w).toBe(x);
    heapFree(w);
    heapFree(z);
    expect(heapAlloc(3 << 20)).toBe(x); // all three merged back (or returned to the top)
    heapFree(x);
  });
});
