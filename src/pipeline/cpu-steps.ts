/**
 * Steps that CPU worker threads can rebuild from plain data. A step is a closure over its
 * plan; a worker cannot receive a closure, so a step that wants to run in the pool carries
 * a `worker` spec { kind, args } (structured-cloneable) and registers its factory here.
 */
import type { PixelStep } from './step.js';
import type { EdgePlan } from './edge-plan.js';
import { edgeStep } from './edge-step.js';

export type StepFactory = (args: any) => PixelStep;

const factories = new Map<string, StepFactory>([['edge', (plan: EdgePlan) => edgeStep(plan)]]);

export function registerCpuStep(kind: string, factory: StepFactory): void {
  factories.set(kind, factory);
}

export function rebuildStep(kind: string, args: unknown): PixelStep {
  const f = factories.get(kind);
  if (!f) throw new Error(`no CPU worker factory for step kind '${kind}'`);
  return f(args);
}
