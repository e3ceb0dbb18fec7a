/**
 * Options of the in-memory library API (./maps.ts, ./cluster.ts), checked by the same
 * schema as the command line and recipes (src/options/schema.ts): an option has the name a
 * recipe gives it ("maskSigma", "edgeWindow", ...), its type is the schema's output type
 * (valibot's InferOutput, through SectionValues) and a bad value fails with the message
 * the CLI prints, naming the option. An unknown key is an error naming the nearest valid one.
 */
import { InputError } from '../io/errors.js';
import { check, nearest } from '../options/parse.js';
import { optionRef, show, type SectionValues } from '../options/schema.js';

type Common = SectionValues<'common'>;

/** Where a run computes, and within what memory (the CLI's --backend, --threads, --memory). */
export interface BackendOptions {
  /** 'cpu' (float64 twins on worker threads), 'webgpu' (WGSL kernels), or 'auto' (the CLI's fixed rule; default). */
  backend?: Common['backend'];
  /** CPU worker threads (default: every core). */
  threads?: Common['threads'];
  /** Memory budget of the whole process, MiB (default 2048), as --memory. */
  memory?: Common['memory'];
}

/** The image size of a cube [E][H][W] (energy-major float32, as the instruments write it). */
export interface CubeShape {
  height: number;
  width: number;
}

/** The schema options each API function takes ('section.name'), as COMMANDS lists a command's. */
export const BACKEND_OPTION_IDS = ['common.backend', 'common.threads', 'common.memory'] as const;
export const EDGE_OPTION_IDS = ['edge.pre', 'edge.post', 'edge.nnorm', 'edge.maskSigma', 'edge.edgeWindow', 'edge.derivSmooth', 'edge.whitelineWidth'] as const;

/**
 * Checks `given` against the schema options `ids` (plus the non-schema keys `extra`, which
 * the caller checks): every key must be one of them, every defined value passes the
 * option's schema. Returns the schema's output values (e.g. a fit model given as an object
 * becomes its JSON text), keyed as given. `where` names the function in errors.
 */
export function checkOptions<T extends object>(where: string, ids: readonly string[], given: T, extra: readonly string[] = []): T {
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw new InputError(where, `options: expected an object, got ${show(given)}`);
  const refs = ids.map(optionRef);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(given)) {
    if (extra.includes(key)) {
      out[key] = value;
      continue;
    }
    const ref = refs.find((r) => r.name === key);
    if (!ref) {
      const near = nearest(key, [...refs.map((r) => r.name), ...extra]);
      throw new InputError(where, `unknown option ${JSON.stringify(key)}${near ? `; did you mean ${JSON.stringify(near)}?` : ''}`);
    }
    if (value === undefined) continue;
    out[key] = check(ref, value, `${where}: ${key}`);
  }
  return out as T;
}

/** A whole number >= 1 (image sizes). */
export function checkSize(where: string, name: string, x: unknown): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) throw new InputError(where, `${name}: expected a whole number >= 1, got ${show(x)}`);
  return x;
}
