import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { CHARTS, SERVICE_ACCOUNTS } from '../versions.ts';
import { PodIdentity } from './pod-identity.ts';

const SYSTEM_NODES = { 'hwai.dev/role': 'system' };

/**
 * The device plugins that advertise nvidia.com/gpu and aws.amazon.com/neuron on the nodes
 * Karpenter launches (the AL2023 NVIDIA and Neuron AMIs carry the drivers, not the plugins).
 */
export class DevicePlugins extends Construct {
  readonly charts: eks.HelmChart[] = [];

  constructor(scope: Construct, id: string, props: { cluster: eks.Cluster; nvidia: boolean; neuron: boolean }) {
    super(scope, id);
    if (props.nvidia) {
      this.charts.push(
        new eks.HelmChart(this, 'NvidiaDevicePlugin', {
        cluster: props.cluster,
          ...CHARTS.nvidiaDevicePlugin,
          release: 'nvidia-device-plugin',
          values: {
            // The chart's default affinity wants Node Feature Discovery labels; Karpenter's
            // NodePools label their nodes instead.
            affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'hwai.dev/accelerator', operator: 'In', values: ['nvidia'] }] }] } } },
            tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
          },
        }),
      );
    }
    if (props.neuron) {
      this.charts.push(
        new eks.HelmChart(this, 'NeuronDevicePlugin', {
        cluster: props.cluster,
          ...CHARTS.neuron,
          release: 'neuron',
          // Only the device plugin: no custom scheduler, no node problem detector.
          values: { scheduler: { enabled: false }, npd: { enabled: false } },
        }),
      );
    }
  }
}

/** KEDA, reading CloudWatch as its own operator identity (EKS Pod Identity). */
export class Keda extends Construct {
  readonly chart: eks.HelmChart;

  constructor(scope: Construct, id: string, props: { cluster: eks.Cluster }) {
    super(scope, id);
    const identity = new PodIdentity(this, 'CloudWatchReader', {
      cluster: props.cluster,
      serviceAccount: SERVICE_ACCOUNTS.keda,
      // GetMetricData has no resource-level permissions.
      statements: [new iam.PolicyStatement({ sid: 'ReadRequestCounts', actions: ['cloudwatch:GetMetricData'], resources: ['*'] })],
    });
    this.chart = new eks.HelmChart(this, 'Chart', {
        cluster: props.cluster,
      ...CHARTS.keda,
      release: 'keda',
      wait: true,
      values: {
        serviceAccount: { operator: { name: SERVICE_ACCOUNTS.keda.name } },
        nodeSelector: SYSTEM_NODES,
      },
    });
    this.chart.node.addDependency(identity);
  }
}

/**
 * The AWS Load Balancer Controller, for TargetGroupBindings only: it registers each unit's pods
 * in the target group the stack made. It creates no load balancer, rule or security group rule,
 * so its role can only register and deregister targets in these target groups.
 */
export class LoadBalancerController extends Construct {
  readonly chart: eks.HelmChart;

  constructor(scope: Construct, id: string, props: { cluster: eks.Cluster; vpcId: string; region: string; targetGroupArns: string[] }) {
    super(scope, id);
    const identity = new PodIdentity(this, 'TargetRegistrar', {
      cluster: props.cluster,
      serviceAccount: SERVICE_ACCOUNTS.loadBalancerController,
      statements: [
        new iam.PolicyStatement({ sid: 'RegisterPods', actions: ['elasticloadbalancing:RegisterTargets', 'elasticloadbalancing:DeregisterTargets'], resources: props.targetGroupArns }),
        // Describe* calls have no resource-level permissions.
        new iam.PolicyStatement({
          sid: 'Discover',
          actions: [
            'elasticloadbalancing:DescribeTargetGroups',
            'elasticloadbalancing:DescribeTargetGroupAttributes',
            'elasticloadbalancing:DescribeTargetHealth',
            'elasticloadbalancing:DescribeLoadBalancers',
            'elasticloadbalancing:DescribeListeners',
            'elasticloadbalancing:DescribeRules',
            'elasticloadbalancing:DescribeTags',
            'ec2:DescribeVpcs',
            'ec2:DescribeSubnets',
            'ec2:DescribeSecurityGroups',
            'ec2:DescribeInstances',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeAvailabilityZones',
          ],
          resources: ['*'],
        }),
      ],
    });
    this.chart = new eks.HelmChart(this, 'Chart', {
        cluster: props.cluster,
      ...CHARTS.loadBalancerController,
      release: 'aws-load-balancer-controller',
      wait: true,
      values: {
        clusterName: props.cluster.clusterName,
        region: props.region,
        vpcId: props.vpcId,
        serviceAccount: { create: true, name: SERVICE_ACCOUNTS.loadBalancerController.name },
        createIngressClassResource: false,
        enableServiceMutatorWebhook: false,
        enableShield: false,
        enableWaf: false,
        enableWafv2: false,
        nodeSelector: SYSTEM_NODES,
      },
    });
    this.chart.node.addDependency(identity);
  }
}
