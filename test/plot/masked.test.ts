/**
 * Masked (NaN) pixels are black in every value map, and the legend says so: a black swatch
 * under the colour bar when the map has masked pixels (PNG and report.html share imageSpec),
 * none when it has not. The pixels themselves: colorize paints NaN black.
 */
import { describe, expect, test } from 'vitest';
import { imageSpec, MASKED_LABEL } from '../../src/plot/specs.js';
import { colorize } from '../../src/plot/colormap.js';

const legendsOf = (masked: boolean) => (imageSpec({ url: 'data:,', width: 4, height: 4, displayWidth: 400, displayHeight: 400 }, { bar: { vmin: 0, vmax: 1, cmap: 'viridis', label: 'v', masked } }) as any);

describe('masked pixels', () => {
  test('the legend names black only when the map has masked pixels', () => {
    const withMask = legendsOf(true);
    expect(withMask.legends.map((l: any) => l.fill)).toEqual(['colour', 'masked']);
    const scale = withMask.scales.find((s: any) => s.name === 'masked');
    expect([scale.domain, scale.range]).toEqual([[MASKED_LABEL], ['#000']]);
    expect(legendsOf(false).legends.map((l: any) => l.fill)).toEqual(['colour']);
  });

  test('NaN is black, a value at the bottom of the range is not', () => {
    const px = colorize([NaN, 0, 1], 0, 1, 'viridis');
    expect(Array.from(px.subarray(0, 4))).toEqual([0, 0, 0, 255]);
    expect(Array.from(px.subarray(4, 7))).not.toEqual([0, 0, 0]);
  });
});
