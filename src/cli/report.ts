/** `xanes report OUT` and `xanes inspect OUT --pixel x,y`: the report page and one pixel's view. */
import path from 'node:path';
import type { Command } from 'commander';
import { writeReport } from '../report/html.js';
import { parsePixel, parseRoi, runInspect } from '../report/inspect-run.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('(re)write report.html in an output folder: maps with colour bars, figures and the pixel inspector, offline')
    .argument('<out>', 'output folder of a finished xanes command')
    .action(async (out: string) => {
      const file = writeReport(out);
      console.log(`report: ${path.resolve(file)} (open it in a browser; it needs no server and no network)`);
    });
  program
    .command('inspect')
    .description("one pixel's spectrum with the fitted curves (as the report's inspector shows it) as PNG and CSV")
    .argument('<out>', 'output folder of a finished xanes command')
    .option('--pixel <x,y>', 'the pixel (column x, row y, from 0)')
    .option('--roi <x0,y0,x1,y1>', 'mean over a rectangle instead (x1, y1 excluded)')
    .option('--out <dir>', 'new folder for pixel.png, curves.csv, values.csv (default inspect_x<x>_y<y>)')
    .action(async (dir: string, o: { pixel?: string; roi?: string; out?: string }) => {
      const pixel = o.pixel !== undefined ? parsePixel(o.pixel) : undefined;
      const roi = o.roi !== undefined ? parseRoi(o.roi) : undefined;
      const out = o.out ?? (pixel ? `inspect_x${pixel[0]}_y${pixel[1]}` : roi ? `inspect_roi_${roi.join('_')}` : 'inspect');
      const r = await runInspect({ dir, pixel, roi, out });
      console.log(`pixel ${r.view.x},${r.view.y}${r.view.status ? ` (${r.view.status})` : ''}: ${path.resolve(out)} (pixel.png, curves.csv, values.csv)`);
      for (const n of r.view.notes) console.log(`  ${n}`);
    });
}
