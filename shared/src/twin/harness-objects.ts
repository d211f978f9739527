import { AddTagsCommand, CreateRuleCommand, type ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { CoreV1Api } from '@kubernetes/client-node';
import { RULE_TAG } from '../adapters/aws/elbv2-router.ts';
import type { FleetSpec } from '../spec/schema.ts';

/**
 * Objects the twin and the handler tests both put on the harness the way the CDK stack and
 * Karpenter would: the listener rules hwai rewrites, and Karpenter's event for a refused launch.
 */

/** Per service, a listener rule forwarding to its units' target groups, tagged for its `listenerRule.lookup`. Service → rule ARN. */
export async function createServiceRules(
  elbv2: ElasticLoadBalancingV2Client,
  listenerArn: string,
  fleet: FleetSpec,
  targetGroupArn: (unit: string) => string,
  weight: (unit: string) => number,
): Promise<Record<string, string>> {
  const ruleArns: Record<string, string> = {};
  for (const [i, [service, spec]] of Object.entries(fleet.services).entries()) {
    const units = fleet.units.filter((u) => u.service === service);
    const rule = await elbv2.send(
      new CreateRuleCommand({
        ListenerArn: listenerArn,
        Priority: 10 + i,
        Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: [`/${service}/*`] } }],
        Actions: [{ Type: 'forward', ForwardConfig: { TargetGroups: units.map((u) => ({ TargetGroupArn: targetGroupArn(u.name), Weight: weight(u.name) })) } }],
      }),
    );
    ruleArns[service] = rule.Rules![0]!.RuleArn!;
    await elbv2.send(new AddTagsCommand({ ResourceArns: [ruleArns[service]!], Tags: [{ Key: RULE_TAG, Value: spec.listenerRule!.lookup! }] }));
  }
  return ruleArns;
}

/** Karpenter's event after EC2 refused a launch (reason InsufficientCapacityError); a NodeClaim is cluster-scoped, so its events live in `default`. */
export async function createInsufficientCapacityEvent(core: CoreV1Api, claim: string, instanceType: string, at: Date): Promise<void> {
  await core.createNamespacedEvent({
    namespace: 'default',
    body: {
      metadata: { name: `${claim}.${at.getTime().toString(16)}` },
      involvedObject: { apiVersion: 'karpenter.sh/v1', kind: 'NodeClaim', name: claim },
      reason: 'InsufficientCapacityError',
      type: 'Warning',
      message: `NodeClaim ${claim} event: creating instance, insufficient capacity, with fleet error(s), InsufficientInstanceCapacity: We currently do not have sufficient ${instanceType} capacity in the Availability Zone you requested`,
      source: { component: 'karpenter' },
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    },
  });
}
