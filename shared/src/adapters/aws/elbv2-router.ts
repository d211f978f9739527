import {
  DescribeListenersCommand,
  DescribeRulesCommand,
  DescribeTagsCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ModifyListenerCommand,
  ModifyRuleCommand,
  type Action,
  type ElasticLoadBalancingV2Client,
  type Rule,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import type { FleetSpec, Unit } from '../../spec/schema.ts';
import type { CallOptions, LiveRoute, TargetHealth, TrafficRouter } from '../../reconcile/ports.ts';
import { SingleFlight } from '../single-flight.ts';

/**
 * The ALB side of a service: the forward action of its listener rule (or of its listener's
 * default action) and the health of its units' target groups. hwai owns the forward action's
 * target groups and weights; everything else on the rule (conditions, priority, authenticate
 * actions, stickiness) is left as it is.
 *
 * A rule is named in the spec by ARN, by its listener (the default action), or by `lookup`: the
 * rule under the listener `listenerArn` (HWAI_LISTENER_ARN) that carries the tag
 * `hwai:rule` = lookup value, found with DescribeRules + DescribeTags once and cached (a rule
 * that disappears is looked up again). Looked-up rules are read each tick with one DescribeRules
 * of their listener, shared by every service reading at the same time.
 */

export const MAX_FORWARD_WEIGHT = 999;
/** The tag the stack puts on each service's listener rule, valued with the spec's `lookup`. */
export const RULE_TAG = 'hwai:rule';
/** DescribeTags takes at most 20 resource ARNs per call. */
const TAGS_PER_CALL = 20;

export interface Elbv2TrafficRouterOptions {
  /** The listener whose rules resolve `listenerRule.lookup` (HWAI_LISTENER_ARN). */
  listenerArn?: string;
}

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

type RuleRef = { kind: 'rule'; arn: string; lookup?: string } | { kind: 'listener'; arn: string };

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
  /** `hwai:rule` tag value → rule ARN under the listener; one resolution shared by concurrent reads. */
  private rulesByTag: Promise<Map<string, string>> | null = null;
  private readonly rulesInFlight = new SingleFlight<Rule[]>();

  constructor(
    private readonly client: ElasticLoadBalancingV2Client,
    private readonly services: FleetSpec['services'],
    private readonly options: Elbv2TrafficRouterOptions = {},
  ) {}

  async readRoute(service: string, units: ReadonlyArray<Unit>, options: CallOptions = {}): Promise<LiveRoute> {
    const ref = await this.ruleRef(service, options);
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
    const ref = await this.ruleRef(service, options);
    const [live, arns] = await Promise.all([this.readForward(service, ref, options), this.targetGroupArns(units, options)]);
    const forward = live.actions[live.forwardIndex]!;
    const actions = live.actions.map((a, i) =>
      i !== live.forwardIndex
        ? asSentBack(a)
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

  private async ruleRef(service: string, options: CallOptions): Promise<RuleRef> {
    const ref = this.services[service]?.listenerRule;
    if (ref?.ruleArn) return { kind: 'rule', arn: ref.ruleArn };
    if (ref?.listenerArn) return { kind: 'listener', arn: ref.listenerArn };
    if (ref?.lookup) {
      const listenerArn = this.options.listenerArn;
      if (!listenerArn) {
        throw new UnresolvedListenerRuleError(`${service}: listenerRule.lookup "${ref.lookup}" needs the listener whose rules to search (HWAI_LISTENER_ARN); none was given`);
      }
      const arn = (await this.resolveTags(listenerArn, options)).get(ref.lookup);
      if (!arn) {
        this.rulesByTag = null; // the stack may add the rule later: look again next time
        throw new UnresolvedListenerRuleError(`${service}: no rule under listener ${listenerArn} carries the tag ${RULE_TAG}=${ref.lookup}`);
      }
      return { kind: 'rule', arn, lookup: ref.lookup };
    }
    throw new UnresolvedListenerRuleError(`${service}: the fleet spec names no listenerRule for this service; expected ruleArn, listenerArn or lookup`);
  }

  private resolveTags(listenerArn: string, options: CallOptions): Promise<Map<string, string>> {
    this.rulesByTag ??= this.describeRuleTags(listenerArn, options).catch((cause: unknown) => {
      this.rulesByTag = null;
      if (NOT_FOUND.has((cause as Error).name)) throw new ListenerRuleNotFoundError(`listener ${listenerArn} (HWAI_LISTENER_ARN) does not exist`, { cause });
      throw cause;
    });
    return this.rulesByTag;
  }

  /** Every rule of the listener, every page; services reading in the same tick share the call. */
  private listenerRules(listenerArn: string, options: CallOptions): Promise<Rule[]> {
    return this.rulesInFlight.run(listenerArn, async () => {
      const rules: Rule[] = [];
      let marker: string | undefined;
      do {
        const out = await this.client.send(new DescribeRulesCommand({ ListenerArn: listenerArn, Marker: marker }), { abortSignal: options.signal });
        rules.push(...(out.Rules ?? []));
        marker = out.NextMarker;
      } while (marker);
      return rules;
    });
  }

  private async describeRuleTags(listenerArn: string, options: CallOptions): Promise<Map<string, string>> {
    const rules = await this.listenerRules(listenerArn, options);
    const arns = rules.filter((r) => !r.IsDefault && r.RuleArn).map((r) => r.RuleArn!);
    const byTag = new Map<string, string>();
    for (let i = 0; i < arns.length; i += TAGS_PER_CALL) {
      const out = await this.client.send(new DescribeTagsCommand({ ResourceArns: arns.slice(i, i + TAGS_PER_CALL) }), { abortSignal: options.signal });
      for (const d of out.TagDescriptions ?? []) {
        const value = d.Tags?.find((t) => t.Key === RULE_TAG)?.Value;
        if (value === undefined || !d.ResourceArn) continue;
        if (byTag.has(value)) throw new UnresolvedListenerRuleError(`listener ${listenerArn}: rules ${byTag.get(value)} and ${d.ResourceArn} both carry ${RULE_TAG}=${value}; expected one`);
        byTag.set(value, d.ResourceArn);
      }
    }
    return byTag;
  }

  private async readForward(service: string, ref: RuleRef, options: CallOptions): Promise<ForwardTarget> {
    const actions = await this.call(service, ref, async () => {
      if (ref.kind === 'rule' && ref.lookup) {
        // A looked-up rule is read with its listener's other rules: one call for all such services.
        const actions = (await this.listenerRules(this.options.listenerArn!, options)).find((r) => r.RuleArn === ref.arn)?.Actions;
        if (!actions) this.rulesByTag = null; // gone since it was looked up: look again next time
        return actions;
      }
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
        if (ref.kind === 'rule' && ref.lookup) this.rulesByTag = null; // looked up again next time
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

/**
 * A non-forward action as ModifyRule takes it back. DescribeRules never returns an OIDC client
 * secret, and ModifyRule refuses an authenticate-oidc action without one unless it is told to
 * keep the secret it has.
 */
function asSentBack(action: Action): Action {
  if (action.Type !== 'authenticate-oidc' || !action.AuthenticateOidcConfig) return action;
  const { ClientSecret: _secret, ...config } = action.AuthenticateOidcConfig;
  return { ...action, AuthenticateOidcConfig: { ...config, UseExistingClientSecret: true } };
}

/** Target group ARN → weight; a plain `TargetGroupArn` forward sends everything to one group. */
function forwardWeights(forward: Action): Map<string, number> {
  const groups = forward.ForwardConfig?.TargetGroups;
  if (groups && groups.length > 0) return new Map(groups.map((g) => [g.TargetGroupArn!, g.Weight ?? 1]));
  return new Map(forward.TargetGroupArn ? [[forward.TargetGroupArn, 1]] : []);
}
