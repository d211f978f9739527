import { Duration, Tags } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Construct } from 'constructs';
import type { FleetSpec } from '../../../shared/src/spec/schema.ts';
import { MODEL_SERVER_PORT, targetGroupName } from '../../../shared/src/render/index.ts';

const MAX_PRIORITY = 50_000;

/**
 * A listener rule priority per service from its name, not its position in the spec: adding or
 * removing a service leaves the others' priorities alone, so CloudFormation never renumbers
 * rules (which can collide mid-update). The header conditions are disjoint, so order is moot.
 */
export function rulePriorities(services: string[]): Map<string, number> {
  const taken = new Set<number>();
  const out = new Map<string, number>();
  for (const service of [...services].sort()) {
    let hash = 0x811c9dc5; // FNV-1a
    for (const c of service) hash = Math.imul(hash ^ c.charCodeAt(0), 0x01000193) >>> 0;
    let priority = (hash % MAX_PRIORITY) + 1;
    while (taken.has(priority)) priority = (priority % MAX_PRIORITY) + 1;
    taken.add(priority);
    out.set(service, priority);
  }
  return out;
}

/** Clients pick the service with this header; the ALB forwards it to the service's units. */
export const SERVICE_HEADER = 'x-hwai-service';
/** The tag the controller resolves a service's `listenerRule.lookup` by. */
export const RULE_TAG = 'hwai:rule';

export interface InferenceIngressProps {
  spec: FleetSpec;
  vpc: ec2.IVpc;
  ingressCidr: string;
}

/**
 * The ALB that hwai steers: one listener, one rule per service forwarding to an IP target group
 * per unit. The stack owns them (no Ingress object), so nothing reverts the weights the
 * controller writes; TargetGroupBindings fill the target groups with the units' pods.
 */
export class InferenceIngress extends Construct {
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly listener: elbv2.ApplicationListener;
  readonly securityGroup: ec2.SecurityGroup;
  readonly targetGroups = new Map<string, elbv2.ApplicationTargetGroup>();
  readonly rules = new Map<string, elbv2.ApplicationListenerRule>();

  constructor(scope: Construct, id: string, props: InferenceIngressProps) {
    super(scope, id);
    const { spec, vpc } = props;
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', { vpc, description: 'hwai inference ALB', allowAllOutbound: false });
    this.securityGroup.addIngressRule(ec2.Peer.ipv4(props.ingressCidr), ec2.Port.tcp(80), 'inference clients');
    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc,
      internetFacing: true,
      securityGroup: this.securityGroup,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      dropInvalidHeaderFields: true,
      // Text-to-image and text generation answer in seconds, queued up to the SLO's multiple.
      idleTimeout: Duration.seconds(120),
    });
    this.listener = this.loadBalancer.addListener('Http', {
      port: 80,
      protocol: elbv2.ApplicationProtocol.HTTP,
      open: false,
      defaultAction: elbv2.ListenerAction.fixedResponse(404, { contentType: 'application/json', messageBody: JSON.stringify({ error: `unknown service: set the ${SERVICE_HEADER} header` }) }),
    });

    for (const unit of spec.units) {
      const tg = new elbv2.ApplicationTargetGroup(this, `Unit-${unit.name}`, {
        vpc,
        targetGroupName: targetGroupName(unit),
        targetType: elbv2.TargetType.IP,
        protocol: elbv2.ApplicationProtocol.HTTP,
        port: MODEL_SERVER_PORT,
        // The model server drains for 15 s after SIGTERM; deregistration must outlast it.
        deregistrationDelay: Duration.seconds(20),
        healthCheck: { path: '/readiness', port: 'traffic-port', interval: Duration.seconds(10), timeout: Duration.seconds(5), healthyThresholdCount: 2, unhealthyThresholdCount: 2, healthyHttpCodes: '200' },
      });
      this.targetGroups.set(unit.name, tg);
    }

    const priorities = rulePriorities(Object.keys(spec.services));
    for (const [service, settings] of Object.entries(spec.services)) {
      const units = spec.units.filter((u) => u.service === service);
      const rule = new elbv2.ApplicationListenerRule(this, `Service-${service}`, {
        listener: this.listener,
        priority: priorities.get(service)!,
        conditions: [elbv2.ListenerCondition.httpHeader(SERVICE_HEADER, [service])],
        // Starting weights: the seed's hand-picked ones where given; hwai's controller owns them after.
        action: elbv2.ListenerAction.weightedForward(units.map((u) => ({ targetGroup: this.targetGroups.get(u.name)!, weight: u.costWeight ?? 1 }))),
      });
      Tags.of(rule).add(RULE_TAG, settings.listenerRule!.lookup!);
      this.rules.set(service, rule);
    }
  }

  /** Lets the ALB reach the pods (VPC CNI gives pods the nodes' security group). */
  allowTo(nodes: ec2.IConnectable): void {
    this.securityGroup.connections.allowTo(nodes, ec2.Port.tcp(MODEL_SERVER_PORT), 'ALB to model servers');
  }
}
