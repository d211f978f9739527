import { PutMetricDataCommand, type MetricDatum } from '@aws-sdk/client-cloudwatch';
import { RunInstancesCommand, type _InstanceType } from '@aws-sdk/client-ec2';
import { DeregisterTargetsCommand, DescribeRulesCommand, RegisterTargetsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import { PatchStrategy, setHeaderOptions, type V1Pod, type V1PodStatus } from '@kubernetes/client-node';
import { FAMILY_LABEL } from '../adapters/kubernetes/karpenter-signals.ts';
import { scalingOf } from '../adapters/kubernetes/keda-autoscaler.ts';
import { SCALED_OBJECTS, type ScaledObject } from '../adapters/kubernetes/scaled-object.ts';
import type { PoolSignal } from '../core/types.ts';
import { podPhase, type Pod, type PodPhase, type UnitWorld, type World } from '../sim/world.ts';
import type { TwinClients } from './clients.ts';
import { nodePoolOf, type TwinDeployment } from './deploy.ts';
import { createInsufficientCapacityEvent } from './harness-objects.ts';

/**
 * The simulated world written onto the harness before each tick, as the parts it stands for
 * write it in a cluster, and the controller's writes read back into the world after it:
 *
 * - the model servers' EMF metrics: each unit's complete minutes into moto's CloudWatch once the
 *   world's metric delay is over, `RequestCount` (every request received), `SuccessCount`,
 *   `ErrorCount` and `Latency` (the minute's p99 of 2xx, ms) per minute, stamped with the
 *   minute's start; a minute with no requests has no datapoint;
 * - KEDA's HPA: the Deployment's replicas;
 * - the scheduler and the kubelet: one pod per world pod, with PodScheduled False/Unschedulable
 *   while Karpenter has no node for it, PodScheduled True once it has, Ready True once it serves;
 * - Karpenter: a launched NodeClaim per node, and an InsufficientCapacityError event (on a
 *   NodeClaim it then deleted) for each refused launch;
 * - EC2: nodes the world takes away (a limit below the running count) come back to the caller,
 *   which sends the controller the EventBridge interruption event EC2 would;
 * - the Load Balancer Controller's TargetGroupBinding: each ready pod's IP registered in its
 *   unit's target group once the world's health checks passed it (moto reports a registered IP
 *   target healthy at once: it runs no health checks, so the twin's healthy count is the world's,
 *   and its registered count leaves out the world's `initial` targets).
 *
 * Only what changed since the last tick is written. Times are the world's seconds on the
 * twin's clock: `epochMs + second * 1000`.
 */

const NODECLAIMS = { group: 'karpenter.sh', version: 'v1', plural: 'nodeclaims' } as const;
const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
/** PutMetricData takes at most 1,000 datapoints a call. */
const DATUMS_PER_CALL = 1000;

export class TwinUnsupportedError extends Error {
  override name = 'TwinUnsupportedError';
}

export class WorldMirror {
  /** Unit → its pods' names → what was last written of them. */
  private readonly pods = new Map<string, Map<string, PodPhase>>();
  private readonly replicas = new Map<string, number>();
  private readonly targets = new Map<string, Set<string>>();
  private readonly minutesPublished = new Map<string, number>();
  private signalsPublished = 0;
  private readonly instances = new Map<string, { instanceId: string; instanceType: string }>();

  constructor(
    private readonly clients: TwinClients,
    private readonly deployment: TwinDeployment,
    private readonly world: World,
    private readonly epochMs: number,
  ) {}

  private iso(second: number): Date {
    return new Date(this.epochMs + second * 1000);
  }

  /**
   * Writes what changed in the world since the last call. Returns the interruptions that
   * happened since, dated on the twin's clock: EC2 tells of them with an EventBridge event,
   * which the caller sends.
   */
  async publish(): Promise<PoolSignal[]> {
    const [interruptions] = await Promise.all([this.publishSignals(), this.publishMetrics(), ...[...this.world.units.values()].map((u) => this.publishUnit(u))]);
    return interruptions;
  }

  /** An EC2 instance of `family` in moto, to name in an interruption event (one per family). */
  async instanceOf(family: string): Promise<{ instanceId: string; instanceType: string }> {
    const known = this.instances.get(family);
    if (known) return known;
    const instanceType = [...this.world.units.values()].find((u) => u.unit.family === family)!.unit.instanceType;
    const out = await this.clients.aws.ec2.send(new RunInstancesCommand({ ImageId: 'ami-0a1b2c3d4e5f60718', InstanceType: instanceType as _InstanceType, MinCount: 1, MaxCount: 1 }));
    const instance = { instanceId: out.Instances![0]!.InstanceId!, instanceType };
    this.instances.set(family, instance);
    return instance;
  }

  /** Reads the listener rules' weights and the ScaledObjects' settings into the world. */
  async readBack(): Promise<void> {
    const { elbv2 } = this.clients.aws;
    const rules = await elbv2.send(new DescribeRulesCommand({ RuleArns: Object.values(this.deployment.ruleArns) }));
    const weightByArn = new Map<string, number>();
    for (const rule of rules.Rules ?? []) {
      for (const action of rule.Actions ?? []) for (const g of action.ForwardConfig?.TargetGroups ?? []) weightByArn.set(g.TargetGroupArn!, g.Weight ?? 1);
    }
    const list = (await this.clients.kube.custom.listNamespacedCustomObject({ ...SCALED_OBJECTS, namespace: this.deployment.namespace })) as { items: ScaledObject[] };
    const scalingByName = new Map(list.items.map((so) => [so.metadata.name, scalingOf(so)]));
    for (const u of this.world.units.values()) {
      u.weight = weightByArn.get(this.deployment.targetGroupArns[u.unit.name]!) ?? 0;
      const scaling = scalingByName.get(u.unit.scaledObject?.name ?? u.unit.name);
      if (!scaling) throw new Error(`twin: the ScaledObject of ${u.unit.name} is gone from ${this.deployment.namespace}`);
      u.scaling = scaling;
    }
  }

  private async publishMetrics(): Promise<void> {
    const byNamespace = new Map<string, MetricDatum[]>();
    for (const u of this.world.units.values()) {
      const after = this.minutesPublished.get(u.unit.name) ?? -Infinity;
      // CloudWatch has a minute only once the world's metric delay is over.
      const fresh = u.minutes.filter((m) => m.startSecond > after && m.visibleAt <= this.world.now);
      if (fresh.length === 0) continue;
      this.minutesPublished.set(u.unit.name, fresh.at(-1)!.startSecond);
      const dimensions = [
        { Name: 'service', Value: u.unit.service },
        { Name: 'unit', Value: u.unit.name },
      ];
      const namespace = this.deployment.fleet.services[u.unit.service]!.metricNamespace;
      const datums = byNamespace.get(namespace) ?? [];
      for (const m of fresh) {
        if (m.requests === 0) continue; // one RequestCount per request: no request, no datapoint
        const Timestamp = this.iso(m.startSecond);
        datums.push({ MetricName: 'RequestCount', Dimensions: dimensions, Timestamp, Value: m.requests, Unit: 'Count' });
        datums.push({ MetricName: 'SuccessCount', Dimensions: dimensions, Timestamp, Value: m.success, Unit: 'Count' });
        datums.push({ MetricName: 'ErrorCount', Dimensions: dimensions, Timestamp, Value: m.errors, Unit: 'Count' });
        if (m.latencyMs !== null) datums.push({ MetricName: 'Latency', Dimensions: dimensions, Timestamp, Value: m.latencyMs, Unit: 'Milliseconds' });
      }
      byNamespace.set(namespace, datums);
    }
    for (const [Namespace, datums] of byNamespace) {
      for (let i = 0; i < datums.length; i += DATUMS_PER_CALL) {
        await this.clients.aws.cloudwatch.send(new PutMetricDataCommand({ Namespace, MetricData: datums.slice(i, i + DATUMS_PER_CALL) }));
      }
    }
  }

  /** Karpenter's refusals as it records them: an event on the NodeClaim it then deletes. Returns the interruptions. */
  private async publishSignals(): Promise<PoolSignal[]> {
    const fresh = this.world.signals.slice(this.signalsPublished);
    this.signalsPublished = this.world.signals.length;
    const interruptions: PoolSignal[] = [];
    for (const [i, signal] of fresh.entries()) {
      if (signal.kind === 'interruption') {
        interruptions.push({ ...signal, at: this.epochMs + signal.at });
        continue;
      }
      if (signal.kind !== 'insufficient-capacity') throw new TwinUnsupportedError(`twin: the world produced a ${signal.kind} signal (${signal.detail}), which the twin does not mirror`);
      const unit = [...this.world.units.values()].find((u) => u.unit.family === signal.family)!.unit;
      const claim = `${nodePoolOf(unit)}-ice${this.signalsPublished - fresh.length + i}`;
      const at = this.iso(signal.at / 1000);
      await createInsufficientCapacityEvent(this.clients.kube.core, claim, unit.instanceType, at);
    }
    return interruptions;
  }

  private async publishUnit(u: UnitWorld): Promise<void> {
    const { namespace } = this.deployment;
    const { core, apps } = this.clients.kube;
    const name = u.unit.name;
    if (this.replicas.get(name) !== u.pods.length) {
      await apps.patchNamespacedDeployment({ namespace, name, body: { spec: { replicas: u.pods.length } } }, MERGE_PATCH);
      this.replicas.set(name, u.pods.length);
    }
    const live = new Map(u.pods.map((p) => [podName(name, p), p]));
    const written = this.pods.get(name) ?? new Map<string, PodPhase>();
    this.pods.set(name, written);
    const gone = [...written.keys()].filter((n) => !live.has(n));
    await Promise.all(
      gone.map(async (podNameGone) => {
        const had = written.get(podNameGone)!;
        written.delete(podNameGone);
        await core.deleteNamespacedPod({ namespace, name: podNameGone, gracePeriodSeconds: 0 });
        if (had !== 'unschedulable') await this.clients.kube.custom.deleteClusterCustomObject({ ...NODECLAIMS, name: claimName(u, podNameGone) });
      }),
    );
    await Promise.all(
      [...live].map(async ([pName, pod]) => {
        const before = written.get(pName);
        const now = podPhase(pod);
        if (before === now) return;
        if (before === undefined) await core.createNamespacedPod({ namespace, body: podBody(u, pName) });
        if (now !== 'unschedulable' && (before === undefined || before === 'unschedulable')) await this.launchNode(u, pName, pod);
        await core.patchNamespacedPodStatus({ namespace, name: pName, body: { status: this.statusOf(pod, now) } }, MERGE_PATCH);
        written.set(pName, now);
      }),
    );
    await this.registerTargets(u);
  }

  private async launchNode(u: UnitWorld, pName: string, pod: Pod): Promise<void> {
    const { custom } = this.clients.kube;
    const name = claimName(u, pName);
    const labels = { 'karpenter.sh/nodepool': nodePoolOf(u.unit), [FAMILY_LABEL]: u.unit.family, 'node.kubernetes.io/instance-type': u.unit.instanceType };
    await custom.createClusterCustomObject({
      ...NODECLAIMS,
      body: {
        apiVersion: 'karpenter.sh/v1',
        kind: 'NodeClaim',
        metadata: { name, labels },
        spec: {
          nodeClassRef: { group: 'karpenter.k8s.aws', kind: 'EC2NodeClass', name: 'default' },
          requirements: [{ key: 'node.kubernetes.io/instance-type', operator: 'In', values: [u.unit.instanceType] }],
        },
      },
    });
    const at = this.iso(pod.nodeAt!).toISOString();
    const launched = { type: 'Launched', status: 'True', reason: 'Launched', message: '', lastTransitionTime: at };
    await custom.patchClusterCustomObjectStatus({ ...NODECLAIMS, name, body: { status: { conditions: [launched] } } }, MERGE_PATCH);
  }

  private statusOf(pod: Pod, phase: PodPhase): V1PodStatus {
    if (phase === 'unschedulable') {
      const message = '0/0 nodes are available: no node for the pod yet; Karpenter is launching one or was refused capacity.';
      return { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: this.iso(pod.createdAt) }] };
    }
    const scheduled = { type: 'PodScheduled', status: 'True', lastTransitionTime: this.iso(pod.scheduledAt!) };
    if (phase === 'starting') return { phase: 'Pending', conditions: [scheduled, { type: 'Ready', status: 'False', reason: 'ContainersNotReady', lastTransitionTime: this.iso(pod.scheduledAt!) }] };
    return { phase: 'Running', conditions: [scheduled, { type: 'Ready', status: 'True', lastTransitionTime: this.iso(pod.readyAt!) }] };
  }

  private async registerTargets(u: UnitWorld): Promise<void> {
    const { elbv2 } = this.clients.aws;
    const TargetGroupArn = this.deployment.targetGroupArns[u.unit.name]!;
    const wanted = new Set(u.pods.filter((p) => this.world.isHealthy(p)).map(podIp));
    const had = this.targets.get(u.unit.name) ?? new Set<string>();
    const added = [...wanted].filter((ip) => !had.has(ip));
    const removed = [...had].filter((ip) => !wanted.has(ip));
    if (added.length > 0) await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn, Targets: added.map((Id) => ({ Id, Port: 8000 })) }));
    if (removed.length > 0) await elbv2.send(new DeregisterTargetsCommand({ TargetGroupArn, Targets: removed.map((Id) => ({ Id, Port: 8000 })) }));
    this.targets.set(u.unit.name, wanted);
  }
}

function podName(unit: string, p: Pod): string {
  return `${unit}-${p.id}`;
}

function claimName(u: UnitWorld, pName: string): string {
  return `${nodePoolOf(u.unit)}-${pName.slice(u.unit.name.length + 1)}`;
}

/** A pod's IP in the twin's VPC (10.0.0.0/16), from its id. */
function podIp(p: Pod): string {
  return `10.0.${Math.floor(p.id / 250) % 250}.${(p.id % 250) + 1}`;
}

function podBody(u: UnitWorld, name: string): V1Pod {
  return {
    metadata: { name, labels: { app: u.unit.name }, annotations: { 'hwai.dev/twin': 'a pod of the simulated world' } },
    spec: { containers: [{ name: 'server', image: `hwai/${u.unit.service}:${u.unit.framework}` }] },
  };
}
