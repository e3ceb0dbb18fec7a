/**
 * withYoungGenerationHeld (src/pipeline/memory.ts): while it runs, a loop that keeps
 * allocating short-lived objects with a few survivors (as the GPU tile loop does) does not
 * grow V8's new space; outside it, the same loop does (so the measurement can see growth).
 */
import v8 from 'node:v8';
import { expect, test } from 'vitest';
import { withYoungGenerationHeld } from '../../src/pipeline/memory.js';

const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;

/** Short-lived objects, the last few kept alive: V8 grows its new space under this when it may. */
function churn(rounds: number): number {
  let keep: { x: number; y: number[] }[][] = [];
  let n = 0;
  for (let i = 0; i < rounds; i++) {
    const a: { x: number; y: number[] }[] = [];
    for (let j = 0; j < 200; j++) a.push({ x: j, y: [j] });
    keep.push(a);
    if (keep.length > 8) keep = keep.slice(1);
    n += a.length;
  }
  return n;
}

test('the young generation does not grow while held, and grows again after', async () => {
  const before = newSpace();
  await withYoungGenerationHeld(async () => {
    churn(6000);
    expect(newSpace()).toBeLessThanOrEqual(before);
  });
  churn(6000);
  expect(newSpace()).toBeGreaterThan(before);
});
