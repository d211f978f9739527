import { CoreV1Api, CustomObjectsApi, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import type { PoolSignal } from '../../core/types.ts';
import type { CallOptions, CapacitySignalsPort } from '../../reconcile/ports.ts';
import { kubeCall, requestOptions } from './call.ts';

/**
 * Karpenter's word that a pool is out of capacity. Karpenter launches with CreateFleet `instant`,
 * which emits no EventBridge event, so the cluster is the only witness:
 * - Events with reason `InsufficientCapacityError`. Karpenter v1 records them on the NodeClaim
 *   (a cluster-scoped object, so the event lands in `default`; all namespaces are read), with a
 *   message like `NodeClaim gpu-x7k2p event: creating instance, insufficient capacity, ...`,
 *   and then deletes the NodeClaim.
 * - NodeClaims whose `Launched` condition is False for want of capacity (reason
 *   InsufficientCapacity, or a launch failure whose message says "insufficient capacity").
 *
 * The family of a refusal, first that answers:
 *   1. the NodeClaim: its `karpenter.k8s.aws/instance-family` label, else the `In` values of its
 *      instance-family requirement, else the families of its `node.kubernetes.io/instance-type`
 *      requirement, else those of its NodePool (label `karpenter.sh/nodepool`);
 *   2. for an event whose NodeClaim is gone: the instance types named in the message
 *      (`... sufficient g5.12xlarge capacity ...` → g5);
 *   3. else the NodePool the NodeClaim came from: NodeClaims are named `<nodepool>-<suffix>`.
 * A refusal that names several families refuses each of them ("all requested instance types
 * were unavailable"). Only the families asked for are returned; each signal is dated by its
 * event's last occurrence or its condition's lastTransitionTime, and kept when at or after `since`.
 */
export const FAMILY_LABEL = 'karpenter.k8s.aws/instance-family';
const INSTANCE_TYPE_LABEL = 'node.kubernetes.io/instance-type';
const NODEPOOL_LABEL = 'karpenter.sh/nodepool';
const ICE_REASON = 'InsufficientCapacityError';
const NODECLAIMS = { group: 'karpenter.sh', version: 'v1', plural: 'nodeclaims' } as const;
const NODEPOOLS = { group: 'karpenter.sh', version: 'v1', plural: 'nodepools' } as const;

interface Requirement {
  key: string;
  operator: string;
  values?: string[];
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime: string;
}

interface NodeClaim {
  metadata: { name: string; labels?: Record<string, string> };
  spec: { requirements: Requirement[] };
  status?: { conditions?: Condition[] };
}

interface NodePool {
  metadata: { name: string };
  spec: { template: { metadata?: { labels?: Record<string, string> }; spec: { requirements: Requirement[] } } };
}

export class KarpenterSignals implements CapacitySignalsPort {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;

  constructor(kubeConfig: KubeConfig) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  async readSignals(families: ReadonlyArray<string>, since: number, options?: CallOptions): Promise<PoolSignal[]> {
    const config = requestOptions(options);
    const [events, claims] = await Promise.all([
      kubeCall(`${ICE_REASON} events`, () => this.core.listEventForAllNamespaces({ fieldSelector: `reason=${ICE_REASON}` }, config)),
      kubeCall('NodeClaims', () => this.custom.listClusterCustomObject(NODECLAIMS, config) as Promise<{ items: NodeClaim[] }>),
    ]);
    const refused = claims.items.filter((c) => c.status?.conditions?.some((l) => l.type === 'Launched' && l.status === 'False' && refusedForCapacity(l)));
    // NodePools only name the family of a refusal: with none (the steady state) they are not read.
    const pools = events.items.length > 0 || refused.length > 0
      ? await kubeCall('NodePools', () => this.custom.listClusterCustomObject(NODEPOOLS, config) as Promise<{ items: NodePool[] }>)
      : { items: [] };
    const resolver = new FamilyResolver(claims.items, pools.items);
    const signals: PoolSignal[] = [];
    const add = (found: string[], at: number, detail: string) => {
      for (const family of new Set(found)) {
        if (at >= since && families.includes(family)) signals.push({ family, kind: 'insufficient-capacity', at, detail });
      }
    };
    for (const event of events.items) {
      add(resolver.ofEvent(event), eventTime(event), `${event.involvedObject.kind ?? 'object'} ${event.involvedObject.name ?? ''}: ${event.message ?? ICE_REASON}`);
    }
    for (const claim of refused) {
      const launched = claim.status!.conditions!.find((c) => c.type === 'Launched')!;
      add(resolver.ofNodeClaim(claim), Date.parse(launched.lastTransitionTime), `NodeClaim ${claim.metadata.name} not launched: ${launched.message ?? launched.reason}`);
    }
    return signals.sort((a, b) => a.at - b.at || a.family.localeCompare(b.family));
  }
}

function refusedForCapacity(c: Condition): boolean {
  return (c.reason ?? '').startsWith('InsufficientCapacity') || /insufficient capacity/i.test(c.message ?? '');
}

function eventTime(e: CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp;
  return t ? new Date(t).getTime() : 0;
}

class FamilyResolver {
  private readonly claims: Map<string, NodeClaim>;
  private readonly pools: Map<string, NodePool>;

  constructor(claims: NodeClaim[], pools: NodePool[]) {
    this.claims = new Map(claims.map((c) => [c.metadata.name, c]));
    this.pools = new Map(pools.map((p) => [p.metadata.name, p]));
  }

  ofEvent(event: CoreV1Event): string[] {
    const { kind, name = '' } = event.involvedObject;
    if (kind === 'NodePool') return this.ofPool(this.pools.get(name));
    const claim = this.claims.get(name);
    if (claim) return this.ofNodeClaim(claim);
    const named = familiesInText(event.message ?? '');
    if (named.length > 0) return named;
    return this.ofPool(this.poolOfClaimName(name));
  }

  ofNodeClaim(claim: NodeClaim): string[] {
    const label = claim.metadata.labels?.[FAMILY_LABEL];
    if (label) return [label];
    const required = familiesRequired(claim.spec.requirements);
    if (required.length > 0) return required;
    return this.ofPool(this.pools.get(claim.metadata.labels?.[NODEPOOL_LABEL] ?? '') ?? this.poolOfClaimName(claim.metadata.name));
  }

  private ofPool(pool: NodePool | undefined): string[] {
    if (!pool) return [];
    const label = pool.spec.template.metadata?.labels?.[FAMILY_LABEL];
    return label ? [label] : familiesRequired(pool.spec.template.spec.requirements);
  }

  /** The longest NodePool name that prefixes `<nodepool>-<suffix>`. */
  private poolOfClaimName(claimName: string): NodePool | undefined {
    const matches = [...this.pools.values()].filter((p) => claimName.startsWith(`${p.metadata.name}-`));
    return matches.sort((a, b) => b.metadata.name.length - a.metadata.name.length)[0];
  }
}

function familiesRequired(requirements: Requirement[]): string[] {
  const inValues = (key: string) => requirements.filter((r) => r.key === key && r.operator === 'In').flatMap((r) => r.values ?? []);
  const families = inValues(FAMILY_LABEL);
  return families.length > 0 ? families : inValues(INSTANCE_TYPE_LABEL).map(familyOf);
}

/** `g5.12xlarge` → `g5`: the EC2 family is the instance type's part before the dot. */
function familyOf(instanceType: string): string {
  return instanceType.split('.')[0]!;
}

const INSTANCE_TYPE = /\b([a-z][a-z0-9-]*\d[a-z0-9-]*)\.(?:nano|micro|small|medium|large|\d*xlarge|metal(?:-\d+xl)?)\b/g;

export function familiesInText(text: string): string[] {
  return [...new Set([...text.matchAll(INSTANCE_TYPE)].map((m) => m[1]!))];
}
