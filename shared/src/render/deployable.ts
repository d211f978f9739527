import type { FleetSpec, Unit } from '../spec/schema.ts';
import { InputValidationError, type InputProblem } from '../spec/validation.ts';
import { ACCELERATORS, FAMILIES, MODEL_TASKS } from './catalog.ts';

/** ALB: at most 5 target groups in one forward action, and target group names of 32 characters. */
export const MAX_UNITS_PER_RULE = 5;
export const MAX_TARGET_GROUP_NAME = 32;

const FRAMEWORKS_BY_ACCELERATOR = { nvidia: ['cuda', 'triton'], neuron: ['neuron'] } as const;

/** The name of a unit's target group (the controller finds it by this name). */
export function targetGroupName(unit: Unit): string {
  return unit.targetGroup?.name ?? unit.name;
}

/** Where a unit's ScaledObject, Deployment and Service live. */
export function unitNamespace(unit: Unit): string {
  return unit.scaledObject?.namespace ?? 'hwai';
}

/**
 * Refuses a valid fleet spec that the stack still cannot deploy, naming every field at fault:
 * a family or instance type the stack has no node pool for, a framework the accelerator cannot
 * run, a model without a model-server task, a service without a rule the stack can create, more
 * units than one forward action takes, a target group name ALB would refuse.
 */
export function assertDeployable(spec: FleetSpec, source: string): void {
  const problems: InputProblem[] = [];
  const tgNames = new Map<string, number>();
  spec.units.forEach((unit, i) => {
    const at = `units[${i}]`;
    const family = FAMILIES[unit.family];
    if (!family) {
      problems.push({ path: `${at}.family`, message: `the stack deploys ${Object.keys(FAMILIES).join(', ')}; received "${unit.family}"` });
    } else {
      if (!family.instanceTypes[unit.instanceType]) {
        problems.push({
          path: `${at}.instanceType`,
          message: `"${unit.instanceType}" is not an instance type of family ${unit.family}; expected one of ${Object.keys(family.instanceTypes).join(', ')}`,
        });
      }
      const frameworks: readonly string[] = FRAMEWORKS_BY_ACCELERATOR[family.accelerator];
      if (!frameworks.includes(unit.framework)) {
        problems.push({ path: `${at}.framework`, message: `${unit.family} (${ACCELERATORS[family.accelerator].resource}) runs ${frameworks.join(' or ')}; received "${unit.framework}"` });
      }
    }
    if (!MODEL_TASKS[unit.model]) {
      problems.push({ path: `${at}.model`, message: `no model-server task is known for "${unit.model}"; expected one of ${Object.keys(MODEL_TASKS).join(', ')}` });
    }
    if (!(unit.service in spec.services)) {
      problems.push({ path: `${at}.service`, message: `service "${unit.service}" is missing from services` });
    }
    if (unit.targetGroup?.arn) {
      problems.push({ path: `${at}.targetGroup.arn`, message: 'the stack creates the target group; give a name, not an ARN' });
    }
    const tg = targetGroupName(unit);
    if (tg.length > MAX_TARGET_GROUP_NAME) {
      problems.push({ path: unit.targetGroup?.name ? `${at}.targetGroup.name` : `${at}.name`, message: `target group name "${tg}" has ${tg.length} characters; ALB allows ${MAX_TARGET_GROUP_NAME} (set ${at}.targetGroup.name)` });
    }
    const clash = tgNames.get(tg);
    if (clash !== undefined) problems.push({ path: `${at}.targetGroup.name`, message: `target group name "${tg}" is also units[${clash}]'s` });
    tgNames.set(tg, i);
  });
  const lookups = new Map<string, string>();
  for (const [name, service] of Object.entries(spec.services)) {
    const at = `services.${name}`;
    const units = spec.units.filter((u) => u.service === name).length;
    if (units === 0) problems.push({ path: at, message: 'no unit serves this service; the stack needs at least one target group for its rule' });
    if (units > MAX_UNITS_PER_RULE) problems.push({ path: at, message: `${units} units on one rule; an ALB forward action takes at most ${MAX_UNITS_PER_RULE} target groups` });
    const lookup = service.listenerRule?.lookup;
    if (!lookup) {
      problems.push({ path: `${at}.listenerRule.lookup`, message: 'required: the stack creates the service\'s rule and tags it hwai:rule = this value' });
    } else if (lookups.has(lookup)) {
      problems.push({ path: `${at}.listenerRule.lookup`, message: `"${lookup}" is also services.${lookups.get(lookup)}'s` });
    } else {
      lookups.set(lookup, name);
    }
  }
  if (problems.length > 0) throw new InputValidationError(`${source} (deploy)`, problems);
}
