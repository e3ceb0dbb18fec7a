/** Shared helpers for the io tests: temp dirs and a seeded generator. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect } from 'vitest';
import { InputError } from '../../src/io/errors.js';

/** A temp dir removed after the test file finishes. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `xanes-${prefix}-`));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** mulberry32: small, seeded, reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs fn and returns the InputError it threw (fails the test if it threw anything else). */
export async function inputError(fn: () => unknown): Promise<InputError> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('expected an InputError, but nothing was thrown');
}

/** Asserts an InputError naming the file (its message starts with the path) and the problem. */
export async function expectInputError(fn: () => unknown, file: string, problem: string | RegExp): Promise<InputError> {
  const e = await inputError(fn);
  expect(e.message.startsWith(`${file}: `)).toBe(true);
  if (typeof problem === 'string') expect(e.message).toContain(problem);
  else expect(e.message).toMatch(problem);
  return e;
}

/**
 * Element-wise equality (NaN equals NaN) with a short report of the first mismatches;
 * vitest's deep equality is too slow for arrays of 10^5+ values.
 */
export function expectSameValues(actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  expect(actual.length).toBe(expected.length);
  const bad: string[] = [];
  let count = 0;
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i]) && !(actual[i] === 0 && expected[i] === 0)) {
      if (bad.length < 5) bad.push(`[${i}] ${actual[i]} != ${expected[i]}`);
      count++;
    }
  }
  expect(count, bad.join(', ')).toBe(0);
}
