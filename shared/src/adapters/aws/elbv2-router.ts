import {
  DescribeListenersCommand,
  DescribeRulesCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ModifyListenerCommand,
  ModifyRuleCommand,
  type Action,
  type ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import type { FleetSpec, Unit } from '../../spec/schema.ts';
import type { CallOptions, LiveRoute, TargetHealth, TrafficRouter } from '../../reconcile/ports.ts';

/**
 * The ALB side of a service: the forward action of its listener rule (or of its listener's
 * default action) and the health of its units' target groups. hwai owns the forward action's
 * target groups and weights; everything else on the rule (conditions, priority, authenticate
 * actions, stickiness) is left as it is.
 */

export const MAX_FORWARD_WEIGHT = 999;

export class ListenerRuleNotFoundError extends Error {
  override name = 'ListenerRuleNotFoundError';
}

export class TargetGroupNotFoundError extends Error {
  override name = 'TargetGroupNotFoundError';
}

/** The spec names a rule this adapter cannot reach (a deploy-time `lookup`, or nothing). */
export class UnresolvedListenerRuleError extends Error {
  override name = 'UnresolvedListenerRuleError';
}

export class InvalidWeightError extends Error {
  override name = 'InvalidWeightError';
}

type RuleRef = { kind: 'rule'; arn: string } | { kind: 'listener'; arn: string };

interface ForwardTarget {
  /** The live actions, in order, with the index of the forward action among them. */
  actions: Action[];
  forwardIndex: number;
}

const NOT_FOUND = new Set(['RuleNotFoundException', 'RuleNotFound', 'ListenerNotFoundException', 'ListenerNotFound']);
const TG_NOT_FOUND = new Set(['TargetGroupNotFoundException', 'TargetGroupNotFound']);

export class Elbv2TrafficRouter implements TrafficRouter {
  /** Target group name → ARN, resolved once: the CDK stack creates the groups, they do not move. */
  private readonly arnByName = new Map<string, string>();

  constructor(
    private readonly client: ElasticLoadBalancingV2Client,
    private readonly services: FleetSpec['services'],
  ) {}

  async readRoute(service: string, units: ReadonlyArray<Unit>, options: CallOptions = {}): Promise<LiveRoute> {
    const ref = this.ruleRef(service);
    const [live, arns] = await Promise.all([this.readForward(service, ref, options), this.targetGroupArns(units, options)]);
    const weightByArn = forwardWeights(live.actions[live.forwardIndex]!);
    const healths = await Promise.all(units.map((u) => this.targetHealth(arns.get(u.name)!, options)));
    const weights: Record<string, number> = {};
    const health: Record<string, TargetHealth> = {};
    units.forEach((u, i) => {
      weights[u.name] = weightByArn.get(arns.get(u.name)!) ?? 0;
      health[u.name] = healths[i]!;
    });
    return { weights, health };
  }

  async setWeights(service: string, units: ReadonlyArray<Unit>, weights: Record<string, number>, options: CallOptions = {}): Promise<void> {
    for (const [unit, w] of Object.entries(weights)) {
      if (!Number.isInteger(w) || w < 0 || w > MAX_FORWARD_WEIGHT) {
        throw new InvalidWeightError(`${service}: weight of ${unit} is ${w}; expected an integer 0–${MAX_FORWARD_WEIGHT}`);
      }
    }
    const ref = this.ruleRef(service);
    const [live, arns] = await Promise.all([this.readForward(service, ref, options), this.targetGroupArns(units, options)]);
    const forward = live.actions[live.forwardIndex]!;
    const actions = live.actions.map((a, i) =>
      i !== live.forwardIndex
        ? a
        : {
            Type: 'forward' as const,
            ...(forward.Order !== undefined ? { Order: forward.Order } : {}),
            ForwardConfig: {
              // Every unit of the service, so a unit at weight 0 stays in the rule and can come back.
              TargetGroups: units.map((u) => ({ TargetGroupArn: arns.get(u.name)!, Weight: weights[u.name] ?? 0 })),
              ...(forward.ForwardConfig?.TargetGroupStickinessConfig ? { TargetGroupStickinessConfig: forward.ForwardConfig.TargetGroupStickinessConfig } : {}),
            },
          },
    );
    // Conditions are not sent, so ModifyRule keeps them; a default action has none.
    await this.call(service, ref, () =>
      ref.kind === 'rule'
        ? this.client.send(new ModifyRuleCommand({ RuleArn: ref.arn, Actions: actions }), { abortSignal: options.signal })
        : this.client.send(new ModifyListenerCommand({ ListenerArn: ref.arn, DefaultActions: actions }), { abortSignal: options.signal }),
    );
  }

  private ruleRef(service: string): RuleRef {
    const ref = this.services[service]?.listenerRule;
    if (ref?.ruleArn) return { kind: 'rule', arn: ref.ruleArn };
    if (ref?.listenerArn) return { kind: 'listener', arn: ref.listenerArn };
    if (ref?.lookup) {
      throw new UnresolvedListenerRuleError(`${service}: listenerRule.lookup "${ref.lookup}" is resolved at deploy time; expected a ruleArn or listenerArn in the deployed spec`);
    }
    throw new UnresolvedListenerRuleError(`${service}: the fleet spec names no listenerRule for this service; expected ruleArn or listenerArn`);
  }

  private async readForward(service: string, ref: RuleRef, options: CallOptions): Promise<ForwardTarget> {
    const actions = await this.call(service, ref, async () => {
      if (ref.kind === 'rule') {
        const out = await this.client.send(new DescribeRulesCommand({ RuleArns: [ref.arn] }), { abortSignal: options.signal });
        return out.Rules?.[0]?.Actions;
      }
      const out = await this.client.send(new DescribeListenersCommand({ ListenerArns: [ref.arn] }), { abortSignal: options.signal });
      return out.Listeners?.[0]?.DefaultActions;
    });
    if (!actions) throw new ListenerRuleNotFoundError(`${service}: ${ref.kind} ${ref.arn} was not returned`);
    const forwardIndex = actions.findIndex((a) => a.Type === 'forward');
    if (forwardIndex < 0) {
      throw new ListenerRuleNotFoundError(`${service}: ${ref.kind} ${ref.arn} has no forward action (it has ${actions.map((a) => a.Type).join(', ')})`);
    }
    return { actions, forwardIndex };
  }

  private async call<T>(service: string, ref: RuleRef, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (cause) {
      if (NOT_FOUND.has((cause as Error).name)) {
        throw new ListenerRuleNotFoundError(`${service}: ${ref.kind} ${ref.arn} does not exist`, { cause });
      }
      throw cause;
    }
  }

  /** Unit name → target group ARN: the unit's `targetGroup.arn`, else its name (default: the unit's name). */
  private async targetGroupArns(units: ReadonlyArray<Unit>, options: CallOptions): Promise<Map<string, string>> {
    const nameOf = (u: Unit) => u.targetGroup?.name ?? u.name;
    const unresolved = [...new Set(units.filter((u) => !u.targetGroup?.arn && !this.arnByName.has(nameOf(u))).map(nameOf))];
    if (unresolved.length > 0) {
      try {
        const out = await this.client.send(new DescribeTargetGroupsCommand({ Names: unresolved }), { abortSignal: options.signal });
        for (const tg of out.TargetGroups ?? []) this.arnByName.set(tg.TargetGroupName!, tg.TargetGroupArn!);
      } catch (cause) {
        if (TG_NOT_FOUND.has((cause as Error).name)) {
          throw new TargetGroupNotFoundError(`target groups ${unresolved.join(', ')}: at least one does not exist`, { cause });
        }
        throw cause;
      }
    }
    const arns = new Map<string, string>();
    for (const u of units) {
      const arn = u.targetGroup?.arn ?? this.arnByName.get(nameOf(u));
      if (!arn) throw new TargetGroupNotFoundError(`${u.name}: target group "${nameOf(u)}" was not returned by DescribeTargetGroups`);
      arns.set(u.name, arn);
    }
    return arns;
  }

  private async targetHealth(arn: string, options: CallOptions): Promise<TargetHealth> {
    try {
      const out = await this.client.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn }), { abortSignal: options.signal });
      const states = (out.TargetHealthDescriptions ?? []).map((d) => d.TargetHealth?.State);
      // A draining target is on its way out and takes no new requests: not registered for routing.
      return { healthy: states.filter((s) => s === 'healthy').length, registered: states.filter((s) => s !== 'draining').length };
    } catch (cause) {
      if (TG_NOT_FOUND.has((cause as Error).name)) throw new TargetGroupNotFoundError(`target group ${arn} does not exist`, { cause });
      throw cause;
    }
  }
}

/** Target group ARN → weight; a plain `TargetGroupArn` forward sends everything to one group. */
function forwardWeights(forward: Action): Map<string, number> {
  const groups = forward.ForwardConfig?.TargetGroups;
  if (groups && groups.length > 0) return new Map(groups.map((g) => [g.TargetGroupArn!, g.Weight ?? 1]));
  return new Map(forward.TargetGroupArn ? [[forward.TargetGroupArn, 1]] : []);
}
