/**
 * base64Into (report.html's map chunks without strings) gives the text Node's own encoder
 * gives (Buffer.toString('base64'), RFC 4648 with '=' padding), for every remainder of the
 * length modulo 3 and for all byte values, written at an offset without touching the rest.
 */
import { describe, expect, test } from 'vitest';
import { base64Into, base64Length } from '../../src/report/base64.js';

describe('base64Into', () => {
  test('the same text as Buffer.toString("base64") for lengths 0..64 and a 1 MiB block', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 255;
    const lengths = [...Array.from({ length: 65 }, (_, i) => i), 2 ** 20, 2 ** 20 + 1, 2 ** 20 + 2];
    for (const n of lengths) {
      const src = Uint8Array.from({ length: n }, rand);
      const dst = new Uint8Array(base64Length(n) + 7).fill(33);
      const end = base64Into(src, dst, 3);
      expect(end).toBe(3 + base64Length(n));
      expect(Buffer.from(dst.subarray(3, end)).toString('latin1')).toBe(Buffer.from(src).toString('base64'));
      expect([...dst.subarray(0, 3), ...dst.subarray(end)].every((b) => b === 33)).toBe(true);
    }
    const all = Uint8Array.from({ length: 256 * 3 }, (_, i) => (i * 7) & 255);
    const d = new Uint8Array(base64Length(all.length));
    base64Into(all, d, 0);
    expect(Buffer.from(d).toString('latin1')).toBe(Buffer.from(all).toString('base64'));
  });

  test('too little room is an error, not a short write', () => {
    expect(() => base64Into(new Uint8Array(4), new Uint8Array(7), 0)).toThrow(RangeError);
  });
});
