// Remakes the README's figures in examples/images/ with the current renderer (Vega + resvg),
// by running the CLI exactly as a user would (see examples/images/README.md):
//   node scripts/readme-figures.mjs STXM.hdr
// STXM.hdr: the full 150 x 150 x 123 STXM Fe L-edge stack 71214098 (ALS 11.0.2.2; where to
// get it and its licence: examples/images/README.md). The demo figures come from `xanes demo`.
// report.png and inspector.png are made by the browser test (test/report/browser.test.ts
// writes readme-report.png and readme-inspector.png into its folder); copy them by hand.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const images = path.join(repo, 'examples', 'images');
const [hdr] = process.argv.slice(2);
if (!hdr) {
  console.log('usage: node scripts/readme-figures.mjs STXM.hdr   (the 150 x 150 Fe L-edge stack 71214098)');
  process.exit(2);
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-figures-'));
const xanes = (...args) => execFileSync(process.execPath, [path.join(repo, 'bin', 'xanes.js'), ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
try {
  // The demo: edge energies of the Ni K-edge TXM field, domains of the V ptychography field.
  xanes('demo', '--dir', path.join(tmp, 'demo'), '--backend', 'cpu');
  fs.copyFileSync(path.join(tmp, 'demo', 'edge', 'e0_half_peak.png'), path.join(images, 'demo-e0-half-peak.png'));
  fs.copyFileSync(path.join(tmp, 'demo', 'cluster', 'labels.png'), path.join(images, 'demo-cluster-labels.png'));
  // STXM: references from a region dominated by the 709.9 eV peak and one by the 708 eV peak.
  const refs = ['peak710=rect:18,78,26,84', 'peak708=rect:32,50,42,56'];
  xanes('lcf', hdr, '--i0-region', 'auto', '--ref', refs[0], '--ref', refs[1], '--mode', 'nnls', '--background', 'const', '--backend', 'cpu', '--out', path.join(tmp, 'lcf'));
  fs.copyFileSync(path.join(tmp, 'lcf', 'rgb.png'), path.join(images, 'stxm-fe-l3-rgb.png'));
  xanes('spectra', hdr, '--i0-region', 'auto', '--roi', 'p710=rect:18,78,26,84', '--roi', 'p708=rect:32,50,42,56', '--out', path.join(tmp, 'spectra'));
  fs.copyFileSync(path.join(tmp, 'spectra', 'spectra.png'), path.join(images, 'stxm-fe-l3-spectra.png'));
  console.log(`figures written to ${images}`);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
