/** `xanes report OUT` and `xanes inspect OUT --pixel x,y`: the report page and one pixel's view. */
import path from 'node:path';
import type { Command } from 'commander';
import { writeReports } from '../report/html.js';
import { runInspect } from '../report/inspect-run.js';
import { requireXanesOutput } from '../io/outdir.js';
import { addOptions, fromCli } from '../options/parse.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('(re)write report.html in an output folder: maps with colour bars, figures and the pixel inspector, offline')
    .argument('<out>', 'output folder of a finished xanes command')
    .action(async (out: string) => {
      // It writes into that folder: only into one that xanes made.
      requireXanesOutput(out);
      // A `xanes run` folder: every report in it (each step's, each field's, combined/'s, the run's).
      const files = writeReports(out);
      const main = files[files.length - 1];
      console.log(`report: ${path.resolve(main)}${files.length > 1 ? ` (and ${files.length - 1} more in its folders)` : ''} (open it in a browser; it needs no server and no network)`);
    });
  const inspect = program
    .command('inspect')
    .description("one pixel's spectrum with the fitted curves (as the report's inspector shows it) as PNG and CSV")
    .argument('<out>', 'output folder of a finished xanes command');
  addOptions(inspect, 'inspect').action(async (dir: string, _o: unknown, c: Command) => {
    const o = fromCli('inspect', c);
    const pixel = o.inspect.pixel as [number, number] | undefined;
    const roi = o.inspect.roi as [number, number, number, number] | undefined;
    const out = o.common.out ?? (pixel ? `inspect_x${pixel[0]}_y${pixel[1]}` : roi ? `inspect_roi_${roi.join('_')}` : 'inspect');
    const r = await runInspect({ dir, pixel, roi, out });
    console.log(`pixel ${r.view.x},${r.view.y}${r.view.status ? ` (${r.view.status})` : ''}: ${path.resolve(out)} (pixel.png, curves.csv, values.csv)`);
    for (const n of r.view.notes) console.log(`  ${n}`);
  });
}
