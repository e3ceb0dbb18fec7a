/**
 * What every map-producing command does for its report: keep some pixels' spectra while the
 * tiles stream past (SpectraRecorder), then write them and report.html into the output
 * folder after summary.json.
 */
import path from 'node:path';
import { SpectraRecorder } from './spectra-file.js';
import { writeReport } from './html.js';
import type { OpenedStack } from '../pipeline/inputs.js';
import type { OutputDir } from '../io/outdir.js';

/** What the stack's values are, as the kernels saw them. */
export function stackQuantity(inputs: Pick<OpenedStack, 'od' | 'absorbance'>): string {
  return inputs.od ? 'optical density' : inputs.absorbance ? 'absorbance' : 'stack units';
}

export function spectraRecorder(inputs: OpenedStack): SpectraRecorder {
  return new SpectraRecorder(inputs.source.width, inputs.source.height, inputs.energies, stackQuantity(inputs));
}

/** Writes the kept spectra (if any) and report.html; call after summary.json is written. */
export function finishReport(dir: OutputDir, recorder?: SpectraRecorder): void {
  recorder?.write(dir.tmp);
  writeReport(dir.tmp, path.basename(dir.finalPath));
}
