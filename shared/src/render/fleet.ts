import { KARPENTER_CONSOLIDATE_AFTER_SECONDS, type FleetSpec, type Unit } from '../spec/schema.ts';
import { ACCELERATORS, FAMILIES, MODEL_TASKS, familyOf, shapeOf, type AcceleratorKind } from './catalog.ts';
import { assertDeployable, targetGroupName, unitNamespace } from './deployable.ts';

/**
 * The Kubernetes objects of a fleet, from its spec alone: Karpenter node pools per accelerator
 * family, and per unit a Deployment, Service, KEDA ScaledObject and TargetGroupBinding. Pure:
 * what differs between the CDK stack and the files in manifests/ comes in through the options.
 */

/** The KEDA trigger reads the minute that ended this long ago or more (the simulator's KEDA reads the same). */
export const KEDA_METRIC_END_TIME_OFFSET_SECONDS = 120;

export interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface RenderOptions {
  /** The EKS cluster's name: Karpenter discovers subnets (and security groups) by it. */
  clusterName: string;
  /** The IAM role of the nodes Karpenter launches. */
  nodeRoleName: string;
  /** The region KEDA reads CloudWatch in. */
  region: string;
  /** The model-server image per accelerator kind. */
  images: Record<'gpu' | 'neuron', string>;
  /** The security group of Karpenter's nodes; absent: discovered by the cluster's discovery tag. */
  nodeSecurityGroupId?: string;
  /** A unit's target group ARN; absent: the binding names the target group instead. */
  targetGroupArn?: (unit: Unit) => string;
}

/** What `hwai render` writes when nothing is deployed yet: placeholders that say what they stand for. */
export const DEFAULT_RENDER_OPTIONS: RenderOptions = {
  clusterName: 'hwai',
  nodeRoleName: 'hwai-karpenter-node',
  region: 'us-west-2',
  images: { gpu: 'hwai-model-server:gpu-PLACEHOLDER', neuron: 'hwai-model-server:neuron-PLACEHOLDER' },
};

export interface UnitManifests {
  unit: Unit;
  deployment: KubernetesObject;
  service: KubernetesObject;
  scaledObject: KubernetesObject;
  targetGroupBinding: KubernetesObject;
}

export interface FleetManifests {
  namespaces: KubernetesObject[];
  nodeClasses: KubernetesObject[];
  nodePools: KubernetesObject[];
  triggerAuthentications: KubernetesObject[];
  units: UnitManifests[];
}

export const MODEL_SERVER_PORT = 8080;
export const SERVICE_PORT = 80;
/** KEDA's identity for CloudWatch (EKS Pod Identity on the keda-operator service account). */
export const KEDA_AUTH_NAME = 'hwai-keda-aws';
/** The CloudWatch counter the model servers write per request (EMF), per service and unit. */
export const REQUEST_COUNT_METRIC = 'RequestCount';
/** The AL2023 alias: Karpenter picks the NVIDIA or Neuron variant for accelerated instance types. */
export const AMI_ALIAS = 'al2023@latest';
const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'hwai' };

export function renderFleet(spec: FleetSpec, options: RenderOptions, source = spec.metadata.name): FleetManifests {
  assertDeployable(spec, source);
  const namespaces = [...new Set(spec.units.map(unitNamespace))].sort();
  const kinds = [...new Set(spec.units.map((u) => familyOf(u).accelerator))].sort();
  const families = [...new Set(spec.units.map((u) => u.family))].sort();
  return {
    namespaces: namespaces.map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { ...MANAGED_BY } } })),
    nodeClasses: kinds.map((kind) =>
      nodeClass(kind, options, spec.units.some((u) => u.capacityType === 'reserved' && familyOf(u).accelerator === kind)),
    ),
    nodePools: families.map((family) => nodePool(family, spec.units.filter((u) => u.family === family))),
    triggerAuthentications: namespaces.map((namespace) => ({
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'TriggerAuthentication',
      metadata: { name: KEDA_AUTH_NAME, namespace, labels: { ...MANAGED_BY } },
      spec: { podIdentity: { provider: 'aws', identityOwner: 'keda' } },
    })),
    units: spec.units.map((unit) => renderUnit(spec, unit, options)),
  };
}

/** `reserved`: launch into ODCRs and Capacity Blocks tagged with the cluster's discovery tag. */
function nodeClass(kind: AcceleratorKind, options: RenderOptions, reserved: boolean): KubernetesObject {
  const discovery = { 'karpenter.sh/discovery': options.clusterName };
  return {
    apiVersion: 'karpenter.k8s.aws/v1',
    kind: 'EC2NodeClass',
    metadata: { name: `hwai-${kind}`, labels: { ...MANAGED_BY } },
    spec: {
      role: options.nodeRoleName,
      amiSelectorTerms: [{ alias: AMI_ALIAS }],
      subnetSelectorTerms: [{ tags: discovery }],
      securityGroupSelectorTerms: [options.nodeSecurityGroupId ? { id: options.nodeSecurityGroupId } : { tags: discovery }],
      ...(reserved ? { capacityReservationSelectorTerms: [{ tags: discovery }] } : {}),
      // Model-server images (CUDA or Neuron SDK) and model files are large.
      blockDeviceMappings: [{ deviceName: '/dev/xvda', ebs: { volumeSize: '200Gi', volumeType: 'gp3', encrypted: true, deleteOnTermination: true } }],
      // Pods get AWS credentials from EKS Pod Identity, never from the node's IMDS.
      metadataOptions: { httpEndpoint: 'enabled', httpProtocolIPv6: 'disabled', httpPutResponseHopLimit: 1, httpTokens: 'required' },
      tags: { 'hwai.dev/accelerator': kind, ...discovery },
    },
  };
}

function nodePool(family: string, units: Unit[]): KubernetesObject {
  const accelerator = FAMILIES[family]!.accelerator;
  const { resource, taintKey } = ACCELERATORS[accelerator];
  const instanceTypes = [...new Set(units.map((u) => u.instanceType))].sort();
  const capacityTypes = [...new Set(units.map((u) => u.capacityType))].sort();
  // Every pod takes one device; a node holds as many pods as it has devices.
  const devices = units.reduce((sum, u) => {
    const perNode = shapeOf(u).devices;
    return sum + Math.ceil(u.maxReplicas / perNode) * perNode;
  }, 0);
  return {
    apiVersion: 'karpenter.sh/v1',
    kind: 'NodePool',
    metadata: { name: `hwai-${family}`, labels: { ...MANAGED_BY } },
    spec: {
      template: {
        metadata: { labels: { 'hwai.dev/family': family, 'hwai.dev/accelerator': accelerator } },
        spec: {
          nodeClassRef: { group: 'karpenter.k8s.aws', kind: 'EC2NodeClass', name: `hwai-${accelerator}` },
          requirements: [
            { key: 'node.kubernetes.io/instance-type', operator: 'In', values: instanceTypes },
            { key: 'karpenter.sh/capacity-type', operator: 'In', values: capacityTypes },
            { key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] },
            { key: 'kubernetes.io/os', operator: 'In', values: ['linux'] },
          ],
          taints: [{ key: taintKey, value: 'true', effect: 'NoSchedule' }],
          expireAfter: '720h',
          // A model server drains for seconds; give a node's pods time to leave before it goes.
          terminationGracePeriod: '1h',
        },
      },
      // Accelerator nodes are consolidated only once empty: moving a serving pod costs a cold
      // start of 5-15 minutes, and hwai's controller, not Karpenter, decides where traffic goes.
      disruption: { consolidationPolicy: 'WhenEmpty', consolidateAfter: `${KARPENTER_CONSOLIDATE_AFTER_SECONDS / 60}m`, budgets: [{ nodes: '20%' }] },
      limits: { [resource]: String(devices) },
    },
  };
}

function renderUnit(spec: FleetSpec, unit: Unit, options: RenderOptions): UnitManifests {
  const service = spec.services[unit.service]!;
  const accelerator = familyOf(unit).accelerator;
  const { resource, taintKey, image } = ACCELERATORS[accelerator];
  const shape = shapeOf(unit);
  const namespace = unitNamespace(unit);
  const selector = { 'hwai.dev/unit': unit.name };
  const labels = { ...MANAGED_BY, 'app.kubernetes.io/name': 'hwai-model-server', 'hwai.dev/service': unit.service, ...selector };
  const cpu = Math.max(1, Math.floor(shape.vcpus / shape.devices / 2));
  const memory = `${Math.floor((shape.memoryGiB / shape.devices) * 0.6)}Gi`;
  const httpGet = (path: string) => ({ path, port: 'http' });
  const deployment: KubernetesObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: unit.name, namespace, labels },
    spec: {
      // No replicas: KEDA owns them (through its HPA), and a re-apply must not reset them.
      selector: { matchLabels: selector },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels },
        spec: {
          nodeSelector: {
            'hwai.dev/family': unit.family,
            'node.kubernetes.io/instance-type': unit.instanceType,
            'karpenter.sh/capacity-type': unit.capacityType,
          },
          tolerations: [{ key: taintKey, operator: 'Exists', effect: 'NoSchedule' }],
          automountServiceAccountToken: false,
          // The server drains for HWAI_DRAIN_SECONDS after SIGTERM while the ALB deregisters it.
          terminationGracePeriodSeconds: 45,
          securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'model-server',
              image: options.images[image],
              ports: [{ name: 'http', containerPort: MODEL_SERVER_PORT, protocol: 'TCP' }],
              env: [
                { name: 'HWAI_TASK', value: MODEL_TASKS[unit.model]! },
                { name: 'HWAI_BACKEND', value: unit.framework },
                { name: 'HWAI_SERVICE', value: unit.service },
                { name: 'HWAI_UNIT', value: unit.name },
                { name: 'HWAI_MODEL_ID', value: unit.model },
                { name: 'HWAI_PORT', value: String(MODEL_SERVER_PORT) },
                { name: 'HWAI_DRAIN_SECONDS', value: '15' },
              ],
              resources: {
                requests: { cpu: String(cpu), memory, [resource]: '1' },
                limits: { memory, [resource]: '1' },
              },
              // Loading and warming a model takes up to the unit's start-up time; liveness waits for it.
              startupProbe: { httpGet: httpGet('/health'), periodSeconds: 10, failureThreshold: Math.ceil((unit.startupSeconds * 2) / 10) },
              livenessProbe: { httpGet: httpGet('/health'), periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 6 },
              readinessProbe: { httpGet: httpGet('/readiness'), periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 2 },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              volumeMounts: [
                { name: 'models', mountPath: '/models' },
                { name: 'tmp', mountPath: '/tmp' },
                { name: 'shm', mountPath: '/dev/shm' },
              ],
            },
          ],
          volumes: [
            { name: 'models', emptyDir: {} },
            { name: 'tmp', emptyDir: {} },
            { name: 'shm', emptyDir: { medium: 'Memory', sizeLimit: '2Gi' } },
          ],
        },
      },
    },
  };
  const svc: KubernetesObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: unit.name, namespace, labels },
    spec: { type: 'ClusterIP', selector, ports: [{ name: 'http', port: SERVICE_PORT, targetPort: 'http', protocol: 'TCP' }] },
  };
  const scaledObjectName = unit.scaledObject?.name ?? unit.name;
  const scaledObject: KubernetesObject = {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: { name: scaledObjectName, namespace, labels },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: unit.name },
      minReplicaCount: unit.minReplicas,
      maxReplicaCount: unit.maxReplicas,
      pollingInterval: 30,
      cooldownPeriod: 300,
      // CloudWatch unreachable 3 polls in a row: hold at least one pod (or the operator's floor)
      // rather than let the HPA act on nothing.
      fallback: { failureThreshold: 3, replicas: Math.max(1, unit.minReplicas) },
      advanced: { horizontalPodAutoscalerConfig: { behavior: { scaleDown: { stabilizationWindowSeconds: 300 } } } },
      triggers: [
        {
          type: 'aws-cloudwatch',
          authenticationRef: { name: KEDA_AUTH_NAME },
          metadata: {
            awsRegion: options.region,
            namespace: service.metricNamespace,
            metricName: REQUEST_COUNT_METRIC,
            dimensionName: 'service;unit',
            dimensionValue: `${unit.service};${unit.name}`,
            metricStat: 'Sum',
            metricStatPeriod: '60',
            metricCollectionTime: '60',
            // EMF data for a minute lands 1-3 minutes late: read the last complete minute.
            metricEndTimeOffset: String(KEDA_METRIC_END_TIME_OFFSET_SECONDS),
            // Missing data means no request was answered in that minute (the servers write a
            // point per request): read it as 0, explicitly, not as an error.
            ignoreNullValues: 'true',
            minMetricValue: '0',
            // Per-pod requests per minute at the breaking point; hwai's controller owns this field.
            targetMetricValue: String(unit.maxRpm),
          },
        },
      ],
    },
  };
  const targetGroup = options.targetGroupArn ? { targetGroupARN: options.targetGroupArn(unit) } : { targetGroupName: targetGroupName(unit) };
  const targetGroupBinding: KubernetesObject = {
    apiVersion: 'elbv2.k8s.aws/v1beta1',
    kind: 'TargetGroupBinding',
    metadata: { name: unit.name, namespace, labels },
    spec: { ...targetGroup, targetType: 'ip', serviceRef: { name: unit.name, port: SERVICE_PORT } },
  };
  return { unit, deployment, service: svc, scaledObject, targetGroupBinding };
}
