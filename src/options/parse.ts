/**
 * The schema (./schema.ts) applied: commander options registered from it, the command
 * line's text and a recipe's JSON checked by the same valibot schema, unknown recipe keys
 * named with the nearest valid one, and the recipe form summary.json records.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as v from 'valibot';
import type { Command } from 'commander';
import { InputError } from '../io/errors.js';
import {
  SECTIONS, RECIPE_SECTIONS, RUN_CLI_SKIP, REQUIRED, commandOptions, optionRef, kebab, show,
  type OptionRef, type Section, type SectionValues, type Values,
} from './schema.js';

/** The largest recipe file read (a recipe is a few hundred bytes; this only stops a wrong file). */
export const MAX_RECIPE_BYTES = 1 << 20;

export const emptyValues = (): Values => ({ common: {}, edge: {}, fit: {}, lcf: {}, cluster: {}, pca: {}, spectra: {}, align: {}, inspect: {}, demo: {} });

/** Checks one value with the option's schema; `where` names it in the error. */
export function check(ref: OptionRef, value: unknown, where: string): unknown {
  const r = v.safeParse(ref.def.schema, value);
  if (r.success) return r.output;
  const issue = r.issues[0];
  // Inside an object (--init, --bounds): name the key, e.g. 'b3': expected ...
  const keys = (issue.path ?? []).map((p) => (p as { key?: unknown }).key).filter((k): k is string => typeof k === 'string');
  throw new InputError(where, `${keys.length ? `'${keys.join('.')}': ` : ''}${issue.message}`);
}

/** The command line's text as the value the schema checks (see TextKind). */
export function fromText(ref: OptionRef, raw: unknown): unknown {
  const t = ref.def.text;
  if (t === 'switch' || t === 'flag' || t === 'repeat' || typeof raw !== 'string') return raw;
  const toNum = (s: string): number | string => {
    const n = Number(s);
    if (s.trim() === '' || !Number.isFinite(n)) throw new InputError(ref.flag, `expected a number, got '${s}'`);
    return n;
  };
  switch (t) {
    case 'string': return raw;
    case 'number': return toNum(raw);
    case 'numberOrWord': return raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
    case 'pair': {
      const parts = raw.split(',');
      if (parts.length !== 2) throw new InputError(ref.flag, `expected two numbers 'a,b', got '${raw}'`);
      return parts.map((p) => (p.trim() === 'end' ? 'end' : toNum(p)));
    }
    case 'list': {
      const items = raw.split(',').map((s) => s.trim());
      if (items.some((s) => s === '')) throw new InputError(ref.flag, `empty name in '${raw}' (give a comma-separated list)`);
      return items;
    }
    case 'json':
      try {
        return JSON.parse(raw);
      } catch (e) {
        throw new InputError(ref.flag, `not valid JSON: ${(e as Error).message}`);
      }
  }
}

/** Registers the command's options on a commander command, from the schema. */
export function addOptions(cmd: Command, command: string, opts: { skip?: Set<string> } = {}): Command {
  const required = REQUIRED[command] ?? [];
  for (const ref of commandOptions(command)) {
    const id = `${ref.section}.${ref.name}`;
    if (ref.def.positional || opts.skip?.has(id)) continue;
    if (ref.def.text === 'switch') {
      cmd.option(`--no-${kebab(ref.name)}`, ref.def.help);
    } else if (ref.def.text === 'flag') {
      cmd.option(ref.flag, ref.def.help);
    } else if (ref.def.text === 'repeat') {
      cmd.option(`${ref.flag} ${ref.def.arg}`, ref.def.help, (x: string, prev: string[] = []) => [...prev, x]);
    } else if (required.includes(id)) {
      cmd.option(`${ref.flag} ${ref.def.arg}`, `${ref.def.help} (required)`);
    } else {
      cmd.option(`${ref.flag} ${ref.def.arg}`, ref.def.help);
    }
  }
  return cmd;
}

/**
 * The options the user gave on the command line, converted and checked. Options left out
 * stay absent, so the library's defaults apply (and a recipe's values are not overridden).
 */
export function fromCli(command: string, cmd: Command, opts: { skip?: Set<string> } = {}): Values {
  const out = emptyValues();
  const given = cmd.opts();
  for (const ref of commandOptions(command)) {
    if (ref.def.positional || opts.skip?.has(`${ref.section}.${ref.name}`)) continue;
    // A flag --no-x (name noX) is commander's negation of --x: it sets x to false.
    const negated = ref.def.text === 'flag' && /^no[A-Z]/.test(ref.name);
    const attr = negated ? ref.name[2].toLowerCase() + ref.name.slice(3) : ref.name;
    if (cmd.getOptionValueSource(attr) !== 'cli') continue;
    let raw = given[attr];
    if (negated) {
      if (raw !== false) continue;
      raw = true;
    } else if (raw === false && ref.def.text !== 'switch') {
      continue; // --x given as --no-x: the negated flag's value, not this option's
    }
    if (raw === undefined) continue;
    (out[ref.section] as Record<string, unknown>)[ref.name] = check(ref, fromText(ref, raw), ref.flag);
  }
  for (const id of REQUIRED[command] ?? []) {
    const ref = optionRef(id);
    if ((out[ref.section] as Record<string, unknown>)[ref.name] === undefined) throw new InputError(ref.flag, `is required (${ref.flag} ${ref.def.arg})`);
  }
  return out;
}

/** Levenshtein distance (small strings only). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  }
  return d[a.length][b.length];
}

/** The nearest valid name to a misspelt one (case, '_' and '-' ignored), or null. */
export function nearest(name: string, candidates: readonly string[]): string | null {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  let best: string | null = null, bestD = Infinity;
  for (const c of candidates) {
    const dd = distance(norm(name), norm(c));
    if (dd < bestD) { bestD = dd; best = c; }
  }
  return best !== null && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : null;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Recipe paths are relative to the recipe's folder; NAME=FILE and mask:FILE too. */
function relativeTo(dir: string, ref: OptionRef, value: unknown): unknown {
  const one = (p: string): string => {
    if (p.startsWith('synthetic:') || path.isAbsolute(p)) return p;
    if (ref.name === 'ref') {
      const m = /^([^=]+)=(.*)$/.exec(p);
      if (!m) return p;
      const src = m[2];
      if (/^(rect|circle):/i.test(src)) return p;
      if (/^mask:/i.test(src)) return `${m[1]}=mask:${path.join(dir, src.slice(5))}`;
      return `${m[1]}=${path.isAbsolute(src) ? src : path.join(dir, src)}`;
    }
    return path.join(dir, p);
  };
  if (typeof value === 'string') return one(value);
  if (Array.isArray(value)) return value.map((x) => (typeof x === 'string' ? one(x) : x));
  return value;
}

/**
 * Reads and checks a recipe (JSON): top-level keys are the `common` options and one object
 * per step section; every key must be an option of the schema (a misspelt one is an error
 * that names the nearest valid key), every value passes the option's schema, and paths
 * are made relative to the recipe's folder.
 */
export function readRecipe(file: string): Values {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new InputError(file, 'the recipe file does not exist');
  }
  if (!st.isFile()) throw new InputError(file, 'the recipe is not a file');
  if (st.size > MAX_RECIPE_BYTES) throw new InputError(file, `${st.size} bytes is too large for a recipe (at most ${MAX_RECIPE_BYTES}); is this the right file?`);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(file, `cannot read the recipe: ${(e as Error).message}`);
  }
  return recipeValues(json, file, path.dirname(file));
}

/** A recipe's JSON value checked against the schema (see readRecipe). */
export function recipeValues(json: unknown, file: string, dir: string): Values {
  if (!isObject(json)) throw new InputError(file, 'a recipe is a JSON object (see the README)');
  const out = emptyValues();
  // A recipe holds the options of `xanes run`.
  const accepted = commandOptions('run');
  const namesOf = (s: Section) => accepted.filter((r) => r.section === s).map((r) => r.name);
  const topNames = [...namesOf('common'), ...RECIPE_SECTIONS];
  const unknownKey = (key: string, where: string, names: readonly string[], hint = '') => {
    const near = nearest(key, names);
    return new InputError(file, `unknown key ${where}${JSON.stringify(key)}${near ? `; did you mean ${JSON.stringify(near)}?` : ''}${hint}`);
  };
  for (const [key, value] of Object.entries(json)) {
    if ((RECIPE_SECTIONS as readonly string[]).includes(key)) {
      const section = key as Section;
      if (!isObject(value)) throw new InputError(file, `"${key}": expected an object of ${key} options, got ${show(value)}`);
      const names = namesOf(section);
      for (const [k, x] of Object.entries(value)) {
        if (!names.includes(k)) {
          const elsewhere = topNames.includes(k) && !(RECIPE_SECTIONS as readonly string[]).includes(k) ? ` ("${k}" belongs at the top level of the recipe)` : '';
          throw unknownKey(k, `in "${key}": `, names, elsewhere);
        }
        const ref = optionRef(`${section}.${k}`);
        const ok = check(ref, x, `${file}: "${key}.${k}"`);
        (out[section] as Record<string, unknown>)[k] = ref.def.path ? relativeTo(dir, ref, ok) : ok;
      }
    } else if (namesOf('common').includes(key)) {
      const ref = optionRef(`common.${key}`);
      const ok = check(ref, value, `${file}: "${key}"`);
      (out.common as Record<string, unknown>)[key] = ref.def.path ? relativeTo(dir, ref, ok) : ok;
    } else {
      const owner = RECIPE_SECTIONS.find((s) => namesOf(s).includes(key));
      throw unknownKey(key, '', topNames, owner ? ` ("${key}" belongs in the "${owner}" object)` : '');
    }
  }
  return out;
}

/** Values with the command line's over the recipe's, option by option. */
export function mergeValues(base: Values, over: Values): Values {
  const out = emptyValues();
  for (const s of Object.keys(out) as Section[]) Object.assign(out[s], base[s], over[s]);
  return out;
}

/**
 * The recipe form of the values (what summary.json records under "options"): the common
 * options at the top level, each step section as an object; only sections with values.
 */
export function recipeForm(values: Values, sections: readonly RecipeSection[]): RecipeForm {
  const out: RecipeForm = { ...values.common };
  for (const s of sections) if (Object.keys(values[s]).length > 0) (out as Record<string, unknown>)[s] = { ...values[s] };
  return out;
}

export type RecipeSection = (typeof RECIPE_SECTIONS)[number];
/** A recipe as summary.json records it: the common options at the top level, one object per step section. */
export type RecipeForm = SectionValues<'common'> & { [S in RecipeSection]?: SectionValues<S> };

export { RUN_CLI_SKIP };
