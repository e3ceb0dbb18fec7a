/**
 * report.html: one page that opens from the disk with no server and no network. The page's
 * script (src/report/page/main.ts, bundled with Vega by scripts/build.mjs into
 * dist/report-page.js) and its styles are inlined; the run's facts (ReportMeta) are inlined
 * as JSON; the maps are written beside it as report_files/maps/<name>/c0000.js, ... (base64
 * float32 in blocks of rows, loaded when shown or clicked), the pixel spectra are already in report_files/spectra/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Base64ScriptWriter } from './base64.js';
import { collectGarbage } from '../pipeline/memory.js';
import { collect, type MapBlocks } from './collect.js';
import { mapChunkName, type ReportMap, type ReportMeta } from './meta.js';
import { isOverview, writeIndexPage, RUN_FIELD_COMMAND } from './index-page.js';

const STYLE = `
body { font-family: Inter, Helvetica, Arial, sans-serif; margin: 16px 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 17px; margin: 12px 0 6px; } h3 { font-size: 14px; }
table { border-collapse: collapse; font-size: 13px; } td, th { padding: 2px 10px 2px 0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.main { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.main { flex-wrap: nowrap; } .left { flex: 0 0 auto; max-width: 680px; } .right { flex: 1 1 auto; min-width: 560px; }
#run { display: flex; flex-wrap: wrap; gap: 8px 40px; align-items: flex-start; } #run details { flex-basis: 100%; } #run h3 { margin: 0 0 4px; }
.controls { font-size: 13px; margin-bottom: 6px; } .controls input, .controls select, .controls button { font-size: 13px; margin: 2px; }
.note { color: #666; font-size: 12px; } #map { cursor: crosshair; display: inline-block; }
#figures { display: flex; flex-wrap: wrap; gap: 16px; } pre { font-size: 11px; max-height: 400px; overflow: auto; }
.error { color: #b00; }
`;

/** The page script: dist/report-page.js beside the running bundle, or in the project's dist/. */
export function pageScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const p of [path.join(here, 'report-page.js'), path.join(here, '..', '..', 'dist', 'report-page.js')]) {
    if (fs.existsSync(p)) return fs.readFileSync(p, 'utf8');
  }
  throw new Error('dist/report-page.js is missing; run `npm run build` in the project folder');
}

/** JSON or JS safe inside <script>: no "</script" or "<!--" can end the element early. */
function inlineSafe(text: string): string {
  return text.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

export function reportHtml(meta: ReportMeta, script: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${meta.title.replace(/[<>&]/g, '')}</title>
<style>${STYLE}</style>
<script>window.XANES_META = ${inlineSafe(JSON.stringify(meta))};</script>
</head><body>
<script>${inlineSafe(script)}</script>
</body></html>
`;
}

/**
 * A map as script files of `chunkRows` rows each: XANES_MAP(name, chunk, "<base64 float32>"),
 * read one block at a time. Each file's bytes are built in one buffer reused for every chunk
 * (src/report/base64.ts): no string per chunk, so the map leaves no garbage behind.
 */
function writeMapScripts(dir: string, m: ReportMap, blocks: MapBlocks): void {
  fs.mkdirSync(dir, { recursive: true });
  const name = JSON.stringify(m.name);
  const writer = new Base64ScriptWriter();
  let c = 0;
  blocks.forEach(m.chunkRows, (part) => {
    writer.write(path.join(dir, mapChunkName(c)), `XANES_MAP(${name},${c},"`, new Uint8Array(part.buffer, part.byteOffset, part.byteLength));
    c++;
  });
  // What measuring the map left (percentile counts, blocks of a map not stored as float32)
  // is garbage: collected per map, not when V8 next decides to (measured on a 2000 x 2000 x
  // 101 edge run on webgpu: the process grew ~5 MiB a map until V8 collected).
  collectGarbage();
}

/** Writes report.html and report_files/maps/ into an output folder; returns the page's path. */
export function writeReport(dir: string, name = path.basename(path.resolve(dir)), opts: { mapChunkBytes?: number } = {}): string {
  if (!fs.existsSync(path.join(dir, 'summary.json'))) collect(dir, name); // its one-line error
  const mdir = path.join(dir, 'report_files', 'maps');
  fs.rmSync(mdir, { recursive: true, force: true });
  fs.mkdirSync(mdir, { recursive: true });
  // One map at a time, one block of rows at a time: no map is held whole (collect's keepMaps false).
  const { meta } = collect(dir, name, opts.mapChunkBytes, (m, blocks) => writeMapScripts(path.join(dir, m.dir), m, blocks), false);
  const file = path.join(dir, 'report.html');
  fs.writeFileSync(file, reportHtml(meta, pageScript()));
  return file;
}

/**
 * report.html of an output folder; for a `xanes run` folder (or one of its field folders)
 * every report in it: each step's page, each field's and combined/'s overview, the run's.
 * Returns the pages written.
 */
export function writeReports(dir: string, name?: string): string[] {
  const s = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as Record<string, any>;
  // A run's step folder is titled <field>/<step>, as the run titles it.
  name ??= s.part_of_run ? `${s.part_of_run.field}/${s.part_of_run.step}` : s.command === RUN_FIELD_COMMAND ? String(s.field) : path.basename(path.resolve(dir));
  if (!isOverview(s)) return [writeReport(dir, name)];
  const out: string[] = [];
  const has = (sub: string) => fs.existsSync(path.join(dir, sub, 'summary.json'));
  if (s.command === 'run') {
    for (const f of (s.fields ?? []) as { field: string }[]) if (has(f.field)) out.push(...writeReports(path.join(dir, f.field), f.field));
    if (has('combined')) out.push(...writeReports(path.join(dir, 'combined'), 'combined'));
  } else if (s.command === RUN_FIELD_COMMAND) {
    for (const st of Object.keys(s.steps ?? {})) if (has(st)) out.push(writeReport(path.join(dir, st), `${name}/${st}`));
  }
  out.push(writeIndexPage(dir, name));
  return out;
}
