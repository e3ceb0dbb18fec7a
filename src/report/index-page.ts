/**
 * report.html of the folders of a `xanes run` that hold no maps of their own: the run's
 * folder (every field and step, with links to their reports, and the products across
 * fields), each field's folder (its steps) and combined/ (the e0 histogram over all fields,
 * the k-means centres, fractions and elbow). Plain HTML with the run's PNG pictures beside
 * it: no script, no server, no network. The step folders' report.html are the single
 * commands' pages (src/report/html.ts), with maps and the pixel inspector.
 */
import fs from 'node:fs';
import path from 'node:path';

/** summary.json "command" of the folders these pages describe. */
export const RUN_FIELD_COMMAND = 'run-field';
export const RUN_COMBINED_COMMAND = 'run-combined';

const STYLE = `
body { font-family: Inter, Helvetica, Arial, sans-serif; margin: 16px 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 17px; margin: 18px 0 6px; }
table { border-collapse: collapse; font-size: 13px; } td, th { padding: 2px 12px 2px 0; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 640px; border: 1px solid #ddd; margin: 4px 12px 4px 0; } .figs { display: flex; flex-wrap: wrap; }
pre { font-size: 11px; max-height: 400px; overflow: auto; } .note { color: #666; font-size: 12px; }
`;

function esc(s: unknown): string {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

function link(href: string, text: string): string {
  return `<a href="${esc(href)}">${esc(text)}</a>`;
}

function counts(c: Record<string, number> | undefined): string {
  if (!c) return '';
  return Object.entries(c).map(([k, v]) => `${esc(k)} ${v}`).join(', ');
}

function table(head: string[], rows: string[][]): string {
  return `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</table>`;
}

function figures(dir: string, files: string[]): string {
  const there = files.filter((f) => fs.existsSync(path.join(dir, f)));
  return there.length ? `<div class="figs">${there.map((f) => `<a href="${esc(f)}"><img src="${esc(f)}" alt="${esc(f)}"></a>`).join('')}</div>` : '';
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title><style>${STYLE}</style></head><body>
<h1>${esc(title)}</h1>
${body}
</body></html>
`;
}

function clusterTables(c: Record<string, any> | undefined): string {
  if (!c) return '';
  const k = Number(c.k);
  const rows = Array.from({ length: k }, (_, j) => [
    `cluster ${j}`, `<span class="num">${c.counts?.[j] ?? ''}</span>`,
    c.fractions?.[j] !== undefined ? `${(100 * c.fractions[j]).toFixed(1)} %` : '',
    c.weighted_fractions?.[j] !== undefined ? `${(100 * c.weighted_fractions[j]).toFixed(1)} %` : '',
  ]);
  return `<h2>Clusters (k = ${k}${c.elbow ? ', chosen at the elbow' : ''})</h2>
<p>features: ${esc((c.features ?? []).join(', '))}${c.weight ? `; fractions weighted by ${esc(c.weight)}` : ''}; ${c.pixels_included ?? ''} pixels clustered, ${c.pixels_excluded ?? ''} excluded</p>
${table(['cluster', 'pixels', 'fraction', c.weighted_fractions ? `weighted by ${c.weight}` : ''], rows)}`;
}

/** The run's folder: fields and steps with links, and the products across fields. */
function runPage(dir: string, s: Record<string, any>, name: string): string {
  const fields = (s.fields ?? []) as Record<string, any>[];
  const steps = (s.steps ?? []) as string[];
  const rows = fields.map((f) => [
    link(`${f.field}/report.html`, f.field), esc(f.stack), `${f.shape?.width} x ${f.shape?.height} x ${f.shape?.energies}`,
    ...steps.map((st) => (fs.existsSync(path.join(dir, f.field, st, 'report.html')) ? `${link(`${f.field}/${st}/report.html`, st)}<br><span class="note">${counts(f.steps?.[st]?.status)}</span>` : '')),
  ]);
  const facts = table(['', ''], [
    ['steps', esc(steps.join(', '))],
    ['fields', String(fields.length)],
    ['spectra', String(s.spectra ?? '')],
    ['backend', esc(`${s.backend?.name ?? ''} ${s.backend?.adapter ?? ''}`)],
    ['time', s.timings_s ? `${Number(s.timings_s.total).toFixed(1)} s, ${Math.round(Number(s.timings_s.spectra_per_s)).toLocaleString('en-US')} spectra/s` : ''],
    ['e0', s.parameters?.e0_eV !== undefined ? `${Number(s.parameters.e0_eV).toFixed(2)} eV (the windows of every field are anchored on it)` : ''],
  ]);
  const combined = s.combined ?? {};
  return page(`xanes run: ${name}`, `${facts}
<h2>Fields</h2>
<p class="note">Each step's report has its maps with colour bars, its figures and the pixel inspector.</p>
${table(['field', 'stack', 'size (x, y, energies)', ...steps], rows)}
<h2>Across all fields (${link('combined/report.html', 'combined/')})</h2>
${combined.e0_histogram_peak_eV !== undefined ? `<p>e0_half histogram peak over all fields: ${Number(combined.e0_histogram_peak_eV).toFixed(2)} eV</p>` : ''}
${figures(dir, ['combined/e0_hist.png', 'combined/cluster/elbow.png'])}
${clusterTables(combined.cluster)}
<h2>Parameters</h2>
<details><summary>options (a valid recipe), parameters, memory, timings</summary><pre>${esc(JSON.stringify({ options: s.options, parameters: s.parameters, memory: s.memory, timings_s: s.timings_s }, null, 1))}</pre></details>
`);
}

/** A field's folder: its steps with links, its quick-look pictures. */
function fieldPage(dir: string, s: Record<string, any>): string {
  const steps = Object.keys(s.steps ?? {}).filter((st) => fs.existsSync(path.join(dir, st, 'summary.json')));
  const rows = steps.map((st) => [link(`${st}/report.html`, st), esc(counts(s.steps[st]?.status)), esc((s.steps[st]?.maps ?? []).join(', '))]);
  return page(`xanes run field: ${s.field}`, `<p>${link('../report.html', 'the run')} · stack ${esc(s.stack)}, ${s.shape?.width} x ${s.shape?.height} pixels, ${s.shape?.energies} energies</p>
<h2>Steps</h2>
${table(['step (report with maps and pixel inspector)', 'status counts', 'maps'], rows)}
${figures(dir, ['edge/e0_half.png', 'lcf/rgb.png', 'cluster/labels.png'])}
<details><summary>summary.json</summary><pre>${esc(JSON.stringify(s, null, 1))}</pre></details>
`);
}

/** combined/: the products across fields. */
function combinedPage(dir: string, s: Record<string, any>): string {
  return page('xanes run: across all fields', `<p>${link('../report.html', 'the run')} · ${s.fields ?? ''} field(s)</p>
${s.e0_histogram_peak_eV !== undefined ? `<h2>e0_half over all fields</h2><p>histogram peak ${Number(s.e0_histogram_peak_eV).toFixed(2)} eV (${link('e0_hist.csv', 'e0_hist.csv')})</p>` : ''}
${figures(dir, ['e0_hist.png'])}
${clusterTables(s.cluster)}
${figures(dir, ['cluster/elbow.png'])}
${s.cluster ? `<p>${link('cluster/centres.csv', 'centres.csv')} · ${link('cluster/clusters.csv', 'clusters.csv')}</p>` : ''}
`);
}

/** Whether a summary.json is one of a run's overview folders (not a folder with maps). */
export function isOverview(summary: Record<string, unknown>): boolean {
  return summary.command === 'run' || summary.command === RUN_FIELD_COMMAND || summary.command === RUN_COMBINED_COMMAND;
}

/** Writes report.html of a run's overview folder from its summary.json; returns its path. */
export function writeIndexPage(dir: string, name = path.basename(path.resolve(dir))): string {
  const s = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as Record<string, any>;
  const html = s.command === 'run' ? runPage(dir, s, name) : s.command === RUN_FIELD_COMMAND ? fieldPage(dir, s) : combinedPage(dir, s);
  const file = path.join(dir, 'report.html');
  fs.writeFileSync(file, html);
  return file;
}
