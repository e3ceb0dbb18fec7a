/**
 * PNG files from Vega specifications in Node, without a browser: Vega's headless view writes
 * SVG, resvg (a Rust SVG renderer shipped as an npm binary) rasterises it with the bundled
 * Inter font, so the same picture comes out on every machine, with or without system fonts.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { encode } from 'fast-png';
import { Resvg } from '@resvg/resvg-js';
import { View, parse, type Spec } from 'vega';

const require = createRequire(import.meta.url);
let fontFiles: string[] | null = null;

/** Inter Regular and SemiBold from @expo-google-fonts/inter (SIL Open Font License). */
function fonts(): string[] {
  if (!fontFiles) {
    const dir = path.dirname(require.resolve('@expo-google-fonts/inter/package.json'));
    fontFiles = [path.join(dir, '400Regular', 'Inter_400Regular.ttf'), path.join(dir, '600SemiBold', 'Inter_600SemiBold.ttf')];
  }
  return fontFiles;
}

export interface Rendered {
  png: Uint8Array;
  /** Size of the picture, pixels. */
  width: number;
  height: number;
  /** Where the plotting area (the data rectangle) lies in the picture, pixels. */
  plot: { x: number; y: number; w: number; h: number };
}

/** SVG text of a spec (Vega's headless SVG renderer). */
async function specToSvg(spec: Spec): Promise<{ svg: string; origin: [number, number]; width: number; height: number }> {
  const view = new View(parse(spec), { renderer: 'none' });
  try {
    await view.runAsync();
    const svg = await view.toSVG();
    // view.origin() is measured inside the padding.
    const o = view.origin() as [number, number];
    const pad = view.padding() as { left?: number; top?: number };
    const origin: [number, number] = [o[0] + (pad.left ?? 0), o[1] + (pad.top ?? 0)];
    return { svg, origin, width: view.width(), height: view.height() };
  } finally {
    view.finalize();
  }
}

/** A PNG of a spec, at `zoom` times its size (default 1). */
export async function renderSpec(spec: Spec, zoom = 1): Promise<Rendered> {
  const { svg, origin, width, height } = await specToSvg(spec);
  const r = new Resvg(svg, {
    font: { loadSystemFonts: false, fontFiles: fonts(), defaultFontFamily: 'Inter', sansSerifFamily: 'Inter' },
    fitTo: zoom === 1 ? { mode: 'original' } : { mode: 'zoom', value: zoom },
    background: 'white',
  });
  const img = r.render();
  const png = img.asPng();
  return {
    png: new Uint8Array(png.buffer, png.byteOffset, png.byteLength),
    width: img.width,
    height: img.height,
    plot: { x: Math.round(origin[0] * zoom), y: Math.round(origin[1] * zoom), w: Math.round(width * zoom), h: Math.round(height * zoom) },
  };
}

/**
 * RGBA pixels as a PNG data URL, magnified `scale` times by pixel repetition (so no renderer
 * ever smooths map pixels into each other).
 */
export function pngDataUrl(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number, scale = 1): string {
  let data = rgba, w = width, h = height;
  if (scale > 1) {
    w = width * scale;
    h = height * scale;
    const out = new Uint8Array(w * h * 4);
    const src = new Uint32Array(rgba.buffer, rgba.byteOffset, width * height);
    const dst = new Uint32Array(out.buffer);
    for (let y = 0; y < height; y++) {
      const row = new Uint32Array(w);
      for (let x = 0; x < width; x++) row.fill(src[y * width + x], x * scale, (x + 1) * scale);
      for (let r = 0; r < scale; r++) dst.set(row, (y * scale + r) * w);
    }
    data = out;
  }
  const png = encode({ width: w, height: h, data: new Uint8Array(data.buffer, data.byteOffset, w * h * 4), channels: 4 });
  return `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
}
