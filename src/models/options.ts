/**
 * The user's fit options (--init JSON, --fix names, --bounds JSON, --max-iter N), checked
 * against the model's parameter names. Values are in user units (eV, data units).
 */
import { InputError } from '../io/errors.js';
import type { FitModel } from './model.js';

export interface FitOptions {
  /** Global start values replacing the per-pixel ones. */
  init: Record<string, number>;
  /** Parameters held at their start value (from --init, else the per-pixel start value). */
  fixed: string[];
  /** [lower, upper]; -Infinity / Infinity for an open side. Replace the role defaults. */
  bounds: Record<string, [number, number]>;
  maxIter: number;
}

/** As the command line gives them (JSON text, comma-separated names) or as a recipe does (objects, lists). */
export interface RawFitOptions {
  init?: string | Record<string, unknown>;
  fix?: string | string[];
  bounds?: string | Record<string, unknown>;
  maxIter?: number;
}

/**
 * Iterations per pixel when --max-iter is not given. Synthetic spectra converge in ~5; the
 * measured V oxides, which the preset describes less well, took up to ~50.
 */
export const DEFAULT_MAX_ITER = 100;
const MAX_MAX_ITER = 10_000;

function jsonObject(option: string, text: string | Record<string, unknown>): Record<string, unknown> {
  if (typeof text !== 'string') {
    if (typeof text !== 'object' || text === null || Array.isArray(text)) throw new InputError(option, `expected a JSON object {"parameter": ...}, got ${JSON.stringify(text)}`);
    return text;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InputError(option, `not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new InputError(option, `expected a JSON object {"parameter": ...}, got ${text.trim().slice(0, 40)}`);
  }
  return v as Record<string, unknown>;
}

function checkName(option: string, model: FitModel, name: string): void {
  if (!model.paramNames.includes(name)) {
    throw new InputError(option, `unknown parameter '${name}'; the model's parameters are ${model.paramNames.join(', ')}`);
  }
}

export function parseFitOptions(raw: RawFitOptions, model: FitModel): FitOptions {
  const init: Record<string, number> = {};
  if (raw.init !== undefined && (typeof raw.init !== 'string' || raw.init.trim() !== '')) {
    for (const [name, v] of Object.entries(jsonObject('--init', raw.init))) {
      checkName('--init', model, name);
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError('--init', `parameter '${name}': expected a finite number, got ${JSON.stringify(v)}`);
      init[name] = v;
    }
  }

  const fixed: string[] = [];
  const fixList = typeof raw.fix === 'string' ? (raw.fix.trim() === '' ? [] : raw.fix.split(',')) : (raw.fix ?? []);
  if (fixList.length > 0) {
    for (const part of fixList) {
      const name = part.trim();
      if (name === '') throw new InputError('--fix', `empty name in '${raw.fix}' (give a comma-separated list)`);
      checkName('--fix', model, name);
      if (!fixed.includes(name)) fixed.push(name);
    }
    if (fixed.length === model.paramNames.length) throw new InputError('--fix', 'every parameter is fixed; nothing is left to fit');
  }

  const bounds: Record<string, [number, number]> = {};
  if (raw.bounds !== undefined && (typeof raw.bounds !== 'string' || raw.bounds.trim() !== '')) {
    for (const [name, v] of Object.entries(jsonObject('--bounds', raw.bounds))) {
      checkName('--bounds', model, name);
      if (!Array.isArray(v) || v.length !== 2) throw new InputError('--bounds', `parameter '${name}': expected [lower, upper] (null for an open side), got ${JSON.stringify(v)}`);
      const side = (x: unknown, open: number, which: string): number => {
        if (x === null) return open;
        if (typeof x !== 'number' || !Number.isFinite(x)) throw new InputError('--bounds', `parameter '${name}': ${which} bound must be a finite number or null, got ${JSON.stringify(x)}`);
        return x;
      };
      const lo = side(v[0], -Infinity, 'lower');
      const hi = side(v[1], Infinity, 'upper');
      if (!(lo < hi)) throw new InputError('--bounds', `parameter '${name}': lower bound ${lo} is not below upper bound ${hi}`);
      bounds[name] = [lo, hi];
    }
  }
  for (const [name, v] of Object.entries(init)) {
    const b = bounds[name];
    if (b && !(v >= b[0] && v <= b[1])) throw new InputError('--init', `parameter '${name}': start value ${v} is outside its --bounds [${b[0]}, ${b[1]}]`);
  }

  let maxIter = DEFAULT_MAX_ITER;
  if (raw.maxIter !== undefined) {
    const m = raw.maxIter;
    if (!Number.isInteger(m) || m < 1 || m > MAX_MAX_ITER) throw new InputError('--max-iter', `expected a whole number from 1 to ${MAX_MAX_ITER}, got ${m}`);
    maxIter = m;
  }
  return { init, fixed, bounds, maxIter };
}

/** Options with nothing set: per-pixel start values, role default bounds, default --max-iter. */
export function defaultFitOptions(): FitOptions {
  return { init: {}, fixed: [], bounds: {}, maxIter: DEFAULT_MAX_ITER };
}
