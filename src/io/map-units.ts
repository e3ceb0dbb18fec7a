/**
 * Units and descriptions of every map and table column the commands write: the one place
 * results.h5 (and anything else that labels outputs) takes them from. A command's own
 * summary.json wins where it records a unit (edge maps, fit parameters by role).
 */

export interface MapMeta {
  unit: string;
  longName: string;
}

/** Dimensionless quantities (NeXus writes dimensionless as "1"). */
const ONE = '1';

const FIXED: Record<string, [string, string]> = {
  e0_half: ['eV', 'edge energy at half the edge step'],
  e0_deriv: ['eV', 'edge energy at the maximum of the derivative'],
  edge_step: ['absorbance', 'edge step (post-edge minus pre-edge at e0)'],
  noise: ['absorbance', 'pre-edge noise (standard deviation of the residuals)'],
  whiteline_energy: ['eV', 'white-line energy'],
  whiteline_height: ['normalised absorbance', 'white-line height'],
  mask: [ONE, 'mask (1 = used, 0 = masked)'],
  status: [ONE, 'status code (names in @status_names)'],
  total: ['stack units', 'sum of reference weights'],
  bg_const: ['stack units', 'background constant'],
  bg_slope: ['stack units per eV', 'background slope'],
  residual_rms: ['stack units', 'RMS residual'],
  rfactor: [ONE, 'R-factor: sum r^2 / sum y^2'],
  redchi: [ONE, 'reduced chi-square'],
  iterations: [ONE, 'Levenberg-Marquardt iterations'],
  PE: ['eV x data units', 'pre-edge peak area pi c11 c13'],
  PE_over_b1: ['eV', 'pre-edge peak area over the edge jump'],
  labels: [ONE, 'cluster label (-1 = excluded)'],
  distance: ['standardised feature units', 'distance to the cluster centre'],
  reconstruction_error: ['stack units', 'RMS error of the PCA reconstruction'],
};

/** Units of fit parameters by role, as summary.json's model.units gives them. */
export function mapMeta(name: string, summaryUnits: Record<string, string> = {}): MapMeta {
  let fromSummary: string | undefined = summaryUnits[name] ?? (name.endsWith('_stderr') ? summaryUnits[name.slice(0, -7)] : undefined);
  // A summary "unit" such as "1 = used, 0 = masked" describes codes: the unit is 1.
  if (fromSummary !== undefined && fromSummary.includes('=')) fromSummary = ONE;
  const fixed = FIXED[name];
  let unit = fromSummary ?? fixed?.[0];
  let longName = fixed?.[1];
  let m: RegExpExecArray | null;
  if ((m = /^weight_(.+)$/.exec(name))) {
    unit ??= 'stack units per unit of the reference';
    longName = `weight of reference ${m[1]}`;
  } else if ((m = /^fraction_(.+)$/.exec(name))) {
    unit ??= ONE;
    longName = `fraction of reference ${m[1]}`;
  } else if ((m = /^score_(\d+)$/.exec(name))) {
    unit ??= 'stack units';
    longName = `PCA score of component ${m[1]}`;
  } else if (name.endsWith('_stderr')) {
    longName = `standard error of ${name.slice(0, -7)}`;
  }
  unit ??= 'arbitrary';
  longName ??= name;
  return { unit: unit === '' ? 'arbitrary' : unit, longName };
}

/** Units of the table columns (CSV headers) written by the cluster and PCA commands. */
export function columnUnit(column: string, featureUnits: Record<string, string> = {}): string {
  if (column === 'energy_eV' || column === 'bin_start' || column === 'bin_end') return 'eV';
  if (/^(cluster|count|k|component|n_\d+)$/.test(column)) return ONE;
  if (/^(fraction|weighted_fraction|ratio|cumulative)$/.test(column)) return ONE;
  return featureUnits[column] ?? 'arbitrary';
}
