import type { PolicyKind } from '../spec/schema.ts';
import { optimizer } from './optimizer.ts';
import { staticCapacity, staticCost } from './static.ts';
import { step } from './step.ts';
import type { Policy } from './types.ts';

export const POLICIES: Record<PolicyKind, Policy> = {
  'static-cost': staticCost,
  'static-capacity': staticCapacity,
  step,
  optimizer,
};
