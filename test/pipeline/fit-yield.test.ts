/**
 * The CPU fit on the main thread runs in pieces between turns of the event loop, so Ctrl-C
 * is handled while a tile is fitted (test/cli/signals.test.ts checks the latency). Every
 * pixel is fitted on its own, so the pieces must give the same bytes as one call on the whole
 * tile, whatever the piece size, including a last piece shorter than the others.
 */
import { expect, test } from 'vitest';
import { syntheticPresetSpectra, vkGrid40 } from '../../src/models/synthetic.js';
import { fitStep, fitTileCpu, fitTileCpuYielding } from '../../src/pipeline/fit-step.js';

const P = 301;
const SEED = 7;

test.each([1, 16, 100, 300, 301, 1000])('fit in pieces of %i pixels = one call on the tile (bytes)', async (chunk) => {
  const data = syntheticPresetSpectra(vkGrid40(), P, SEED, [0, 0.01]);
  const step = fitStep(data.model, data.energies);
  const whole = fitTileCpu(step.plan, data.cube, P);
  const pieces = await fitTileCpuYielding(step.plan, data.cube, P, chunk);
  expect(pieces.P).toBe(P);
  expect(pieces.rows.length).toBe(whole.rows.length);
  expect(Buffer.from(pieces.rows.buffer, pieces.rows.byteOffset, pieces.rows.byteLength).equals(Buffer.from(whole.rows.buffer, whole.rows.byteOffset, whole.rows.byteLength))).toBe(true);
  expect(Array.from(pieces.noise)).toEqual(Array.from(whole.noise.subarray(0, P)));
});

test('the event loop turns while a tile is fitted in pieces', async () => {
  const data = syntheticPresetSpectra(vkGrid40(), 64, SEED, [0.01]);
  const step = fitStep(data.model, data.energies);
  let turns = 0;
  const timer = setInterval(() => turns++, 0);
  await fitTileCpuYielding(step.plan, data.cube, 64, 4, 0); // yield after every piece
  clearInterval(timer);
  expect(turns).toBeGreaterThan(0);
});
