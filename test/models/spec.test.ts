/**
 * --model specs (sums, presets, JSON) and the fit options (--init, --fix, --bounds,
 * --max-iter): the parameter names users rely on, and an InputError naming the option and
 * the parameter for every bad input.
 */
import { describe, expect, test } from 'vitest';
import { evaluateModel, MAX_FIT_PARAMS, parseModelSpec, PRESETS } from '../../src/models/model.js';
import { DEFAULT_MAX_ITER, parseFitOptions } from '../../src/models/options.js';
import { defaultBounds, makeFitPlan } from '../../src/models/plan.js';
import { vkGrid40 } from '../../src/models/synthetic.js';
import { generateModelWgsl } from '../../src/models/wgsl.js';
import { erf64 } from '../../src/models/erf.js';
import { expectInputError } from '../io/helpers.js';

describe('parseModelSpec', () => {
  test('the preset has exactly the names of the issue and its derived maps', () => {
    const m = parseModelSpec('erf-2lorentz');
    expect(m.paramNames).toEqual(['a', 'b1', 'b2', 'b3', 'c11', 'c12', 'c13', 'c21', 'c22', 'c23']);
    expect(m.paramRoles).toEqual(['amplitude', 'amplitude', 'energy', 'width', 'amplitude', 'energy', 'width', 'amplitude', 'energy', 'width']);
    expect(m.derived.map((d) => d.name)).toEqual(['PE', 'PE_over_b1']);
    expect(parseModelSpec(' ERF-2Lorentz ').paramNames).toEqual(m.paramNames);
    expect(parseModelSpec('erf-lorentz').paramNames).toEqual(['a', 'b1', 'b2', 'b3', 'c11', 'c12', 'c13']);
  });

  test('the preset is the formula of the issue', () => {
    const m = PRESETS['erf-2lorentz'].make();
    const v = [0.1, 1.2, 5480, 3, 0.4, 5470.5, 1.1, 0.5, 5488, 4];
    for (const E of [5420, 5465.3, 5470.5, 5479, 5480, 5490, 5540]) {
      const expected = v[0] + (v[1] / 2) * (1 + erf64((E - v[2]) / v[3])) + v[4] / (1 + ((E - v[5]) / v[6]) ** 2) + v[7] / (1 + ((E - v[8]) / v[9]) ** 2);
      expect(evaluateModel(m, E, v, 5480)).toBeCloseTo(expected, 14);
    }
  });

  test('PE = pi c11 c13 and PE/b1, masked where b1 is not above the noise', () => {
    const m = PRESETS['erf-2lorentz'].make();
    const [pe, ratio] = m.derived;
    const v = Float64Array.from([0.1, 1.2, 5480, 3, 0.4, 5470.5, 1.1, 0.5, 5488, 4]);
    expect(pe.compute(v, 0.01)).toBeCloseTo(Math.PI * 0.4 * 1.1, 14);
    expect(ratio.compute(v, 0.01)).toBeCloseTo((Math.PI * 0.4 * 1.1) / 1.2, 14);
    expect(pe.compute(v, 1.5)).toBeNaN();
    expect(ratio.compute(v, 1.2)).toBeNaN();
    expect(ratio.compute(v, NaN)).toBeNaN();
  });

  test('sums name parameters <kind>[n]_<local>, numbering only repeated kinds', () => {
    const m = parseModelSpec('const + erf + lorentz + lorentz');
    expect(m.paramNames).toEqual([
      'const_offset', 'erf_height', 'erf_centre', 'erf_width',
      'lorentz1_height', 'lorentz1_centre', 'lorentz1_hwhm', 'lorentz2_height', 'lorentz2_centre', 'lorentz2_hwhm',
    ]);
    // Aliases normalise to the kind; case and spaces do not matter.
    expect(parseModelSpec('Constant+Gaussian +  arctan').paramNames).toEqual(['const_offset', 'gauss_height', 'gauss_centre', 'gauss_sigma', 'atan_height', 'atan_centre', 'atan_width']);
    expect(parseModelSpec('linear + pvoigt').paramNames).toEqual(['linear_slope', 'pvoigt_height', 'pvoigt_centre', 'pvoigt_hwhm', 'pvoigt_eta']);
  });

  test('JSON models: names, prefixes, bare arrays', () => {
    const m = parseModelSpec('{"components": ["const", {"type": "erf", "names": ["j", "e0", "w"]}, {"type": "lorentz", "prefix": "pre"}]}');
    expect(m.paramNames).toEqual(['const_offset', 'j', 'e0', 'w', 'pre_height', 'pre_centre', 'pre_hwhm']);
    expect(parseModelSpec('["gauss", "gauss"]').paramNames).toEqual(['gauss1_height', 'gauss1_centre', 'gauss1_sigma', 'gauss2_height', 'gauss2_centre', 'gauss2_sigma']);
  });

  test('bad specs are InputErrors on --model', async () => {
    await expectInputError(() => parseModelSpec(''), '--model', 'empty');
    await expectInputError(() => parseModelSpec('const + spline'), '--model', "unknown component 'spline'");
    await expectInputError(() => parseModelSpec('const + + erf'), '--model', 'empty term');
    await expectInputError(() => parseModelSpec('{"components": 3}'), '--model', 'array of components');
    await expectInputError(() => parseModelSpec('{"components": ['), '--model', 'not valid JSON');
    await expectInputError(() => parseModelSpec('[{"type": "erf", "names": ["a", "b"]}]'), '--model', '3 parameters');
    await expectInputError(() => parseModelSpec('[{"type": "erf", "names": ["a", "a", "b"]}]'), '--model', "'a' is used twice");
    await expectInputError(() => parseModelSpec('[{"type": "const", "names": ["redchi"]}]'), '--model', 'reserved');
    await expectInputError(() => parseModelSpec('[{"type": "const", "names": ["x_stderr"]}]'), '--model', 'reserved');
    await expectInputError(() => parseModelSpec('[{"type": "const", "names": ["1a"]}]'), '--model', 'must start with a letter');
    // The JSON's shape is checked by its schema (valibot), component by component.
    await expectInputError(() => parseModelSpec('[{"type": "erf", "x": 1}]'), '--model', "component 1: unknown key 'x' (allowed: type, prefix, names)");
    await expectInputError(() => parseModelSpec('["const", {"type": 3}]'), '--model', 'component 2: "type" must be a component name');
    await expectInputError(() => parseModelSpec('["const", 5]'), '--model', 'component 2: expected a name or an object with "type"');
    await expectInputError(() => parseModelSpec('[{"type": "erf", "names": "a"}]'), '--model', 'component 1: "names" must be an array of strings');
    await expectInputError(() => parseModelSpec('{"components": ["erf"], "extra": 1}'), '--model', 'JSON model must be an array of components');
    await expectInputError(() => parseModelSpec('{"parts": ["erf"]}'), '--model', 'JSON model must be an array of components');
    await expectInputError(() => parseModelSpec('[{"type": "const", "colour": "red"}]'), '--model', "unknown key 'colour'");
    await expectInputError(() => parseModelSpec('pvoigt + pvoigt + pvoigt + const'), '--model', `13 parameters; at most ${MAX_FIT_PARAMS}`);
  });
});

describe('parseFitOptions', () => {
  const model = parseModelSpec('erf-2lorentz');

  test('defaults and a full set', () => {
    expect(parseFitOptions({}, model)).toEqual({ init: {}, fixed: [], bounds: {}, maxIter: DEFAULT_MAX_ITER });
    const o = parseFitOptions({ init: '{"b2": 5480, "b3": 3}', fix: 'b3, c13', bounds: '{"b2": [5470, 5490], "c11": [0, null]}', maxIter: 30 }, model);
    expect(o.init).toEqual({ b2: 5480, b3: 3 });
    expect(o.fixed).toEqual(['b3', 'c13']);
    expect(o.bounds).toEqual({ b2: [5470, 5490], c11: [0, Infinity] });
    expect(o.maxIter).toBe(30);
  });

  test('every problem names the option and the parameter', async () => {
    await expectInputError(() => parseFitOptions({ init: '{"b9": 1}' }, model), '--init', "unknown parameter 'b9'");
    await expectInputError(() => parseFitOptions({ init: '{"b2": "x"}' }, model), '--init', "parameter 'b2'");
    await expectInputError(() => parseFitOptions({ init: '[1, 2]' }, model), '--init', 'JSON object');
    await expectInputError(() => parseFitOptions({ init: '{b2: 1}' }, model), '--init', 'not valid JSON');
    await expectInputError(() => parseFitOptions({ fix: 'b2,,b3' }, model), '--fix', 'empty name');
    await expectInputError(() => parseFitOptions({ fix: 'b2,zz' }, model), '--fix', "unknown parameter 'zz'");
    await expectInputError(() => parseFitOptions({ fix: model.paramNames.join(',') }, model), '--fix', 'every parameter is fixed');
    await expectInputError(() => parseFitOptions({ bounds: '{"b3": [5, 2]}' }, model), '--bounds', "parameter 'b3': lower bound 5 is not below upper bound 2");
    await expectInputError(() => parseFitOptions({ bounds: '{"b3": [1]}' }, model), '--bounds', "parameter 'b3'");
    await expectInputError(() => parseFitOptions({ bounds: '{"b3": [1, "x"]}' }, model), '--bounds', "parameter 'b3': upper bound");
    await expectInputError(() => parseFitOptions({ bounds: '{"q": [1, 2]}' }, model), '--bounds', "unknown parameter 'q'");
    await expectInputError(() => parseFitOptions({ init: '{"b3": 9}', bounds: '{"b3": [1, 5]}' }, model), '--init', "parameter 'b3': start value 9 is outside");
    await expectInputError(() => parseFitOptions({ maxIter: 0 }, model), '--max-iter', 'whole number');
    await expectInputError(() => parseFitOptions({ maxIter: 2.5 }, model), '--max-iter', 'whole number');
  });
});

describe('the fit plan and the generated WGSL', () => {
  const energies = vkGrid40();

  test('internal units: energies on [-1, 1], bounds and start values scaled by role', () => {
    const model = parseModelSpec('erf-2lorentz');
    const plan = makeFitPlan(model, energies, parseFitOptions({ init: '{"b2": 5490, "b1": 2}', fix: 'b3', bounds: '{"b2": [5470, 5500]}' }, model));
    expect(plan.eRef).toBe(5480);
    expect(plan.eScale).toBe(60);
    expect(plan.t[0]).toBe(-1);
    expect(plan.t[energies.length - 1]).toBe(1);
    const k = (n: string) => model.paramNames.indexOf(n);
    expect(plan.lower[k('b2')]).toBeCloseTo(-10 / 60, 15);
    expect(plan.upper[k('b2')]).toBeCloseTo(20 / 60, 15);
    expect(plan.init[k('b2')]).toBeCloseTo(10 / 60, 15);
    expect(plan.init[k('b1')]).toBe(2); // divided by each pixel's data scale in the kernel
    expect(plan.yScaled[k('b1')]).toBe(1);
    expect(plan.yScaled[k('b2')]).toBe(0);
    expect(plan.free).not.toContain(k('b3'));
    expect(plan.free.length).toBe(9);
    // Role defaults: positions within the scan, widths from half the finest step (the
    // floor; each width follows half the local step at its own centre: widthCentre).
    expect(plan.lower[k('c12')]).toBe(-1);
    expect(plan.upper[k('c12')]).toBe(1);
    expect(defaultBounds('width', energies)[0]).toBeCloseTo(0.25, 12);
    expect(plan.widthCentre[k('c13')]).toBe(k('c12'));
    expect(plan.widthCentre[k('c23')]).toBe(k('c22'));
    expect(plan.widthCentre[k('b3')]).toBe(k('b2'));
    expect(plan.widthCentre[k('c12')]).toBe(-1);
    // A width with --bounds keeps the user's bounds only.
    const own = makeFitPlan(model, energies, parseFitOptions({ bounds: '{"c13": [0.1, 5]}' }, model));
    expect(own.widthCentre[k('c13')]).toBe(-1);
    expect(defaultBounds('amplitude', energies)).toEqual([-Infinity, Infinity]);
    expect(defaultBounds('fraction', energies)).toEqual([0, 1]);
  });

  test('the linear algebra is generated straight-line for the free parameters', () => {
    const model = parseModelSpec('erf-2lorentz');
    const plan = makeFitPlan(model, energies, parseFitOptions({ fix: 'b3' }, model));
    const w = generateModelWgsl(plan);
    expect(w).toContain('const NF: u32 = 9u;');
    expect(w).toContain('const NT: u32 = 45u;');
    // b3 (parameter 3) is fixed: its derivative is never read into J^T J.
    expect(w).not.toMatch(/JAC\[3\];/);
    expect(w).toMatch(/let j3 = JAC\[4\];/);
    // No loop-indexed access to the normal matrix.
    expect(w).not.toMatch(/A[MT]\[[a-z]/);
  });
});
