import { Aws, Duration, Stack } from 'aws-cdk-lib';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CHARTS, SERVICE_ACCOUNTS } from '../versions.ts';
import { PodIdentity } from './pod-identity.ts';

export interface KarpenterProps {
  cluster: eks.Cluster;
  /** The cluster's name as a plain string: IAM condition keys carry it and cannot be tokens. */
  clusterName: string;
}

/** The events that end or threaten an instance: Karpenter drains the node before EC2 takes it. */
const INTERRUPTION_EVENTS: Array<{ id: string; source: string; detailType: string }> = [
  { id: 'ScheduledChange', source: 'aws.health', detailType: 'AWS Health Event' },
  { id: 'SpotInterruption', source: 'aws.ec2', detailType: 'EC2 Spot Instance Interruption Warning' },
  { id: 'Rebalance', source: 'aws.ec2', detailType: 'EC2 Instance Rebalance Recommendation' },
  { id: 'InstanceStateChange', source: 'aws.ec2', detailType: 'EC2 Instance State-change Notification' },
];

/**
 * Karpenter v1: the node role (with its access entry), the controller's IAM through EKS Pod
 * Identity, the interruption queue fed by EventBridge, and the Helm chart. The NodePools and
 * EC2NodeClasses come from the fleet spec (shared/src/render).
 */
export class Karpenter extends Construct {
  readonly nodeRole: iam.Role;
  readonly chart: eks.HelmChart;
  readonly interruptionQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: KarpenterProps) {
    super(scope, id);
    const { cluster } = props;
    const stack = Stack.of(this);
    this.nodeRole = new iam.Role(this, 'NodeRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `Nodes Karpenter launches in ${cluster.clusterName}`,
      managedPolicies: ['AmazonEKSWorkerNodePolicy', 'AmazonEKS_CNI_Policy', 'AmazonEC2ContainerRegistryPullOnly'].map((n) => iam.ManagedPolicy.fromAwsManagedPolicyName(n)),
    });
    new eks.AccessEntry(this, 'NodeAccess', { cluster, principal: this.nodeRole.roleArn, accessEntryType: eks.AccessEntryType.EC2_LINUX, accessPolicies: [] });

    this.interruptionQueue = new sqs.Queue(this, 'InterruptionQueue', {
      retentionPeriod: Duration.minutes(5),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    for (const e of INTERRUPTION_EVENTS) {
      new events.Rule(this, `${e.id}Rule`, {
        eventPattern: { source: [e.source], detailType: [e.detailType] },
        targets: [new targets.SqsQueue(this.interruptionQueue)],
      });
    }

    const tagged = (key: string) => `aws:${key}/kubernetes.io/cluster/${props.clusterName}`;
    const regionTag = (key: string) => `aws:${key}/topology.kubernetes.io/region`;
    const ec2 = (resource: string) => stack.formatArn({ service: 'ec2', resource, resourceName: '*' });
    const created = ['fleet', 'instance', 'volume', 'network-interface', 'launch-template', 'spot-instances-request'].map(ec2);
    const instanceProfiles = stack.formatArn({ service: 'iam', region: '', resource: 'instance-profile', resourceName: '*' });
    const owned = (key: 'RequestTag' | 'ResourceTag') => ({ [tagged(key)]: 'owned', [regionTag(key)]: Aws.REGION });
    const controller = new PodIdentity(this, 'Controller', {
      cluster,
      serviceAccount: SERVICE_ACCOUNTS.karpenter,
      statements: [
        // Launching, scoped as Karpenter's reference policy: shared inputs (AMIs, snapshots,
        // subnets, security groups, reservations) as they are; what a launch creates only with
        // this cluster's tags on the request; launch templates only Karpenter's own.
        new iam.PolicyStatement({
          sid: 'LaunchFromSharedResources',
          actions: ['ec2:RunInstances', 'ec2:CreateFleet'],
          resources: [
            stack.formatArn({ service: 'ec2', account: '', resource: 'image', resourceName: '*' }),
            stack.formatArn({ service: 'ec2', account: '', resource: 'snapshot', resourceName: '*' }),
            ec2('subnet'),
            ec2('security-group'),
            ec2('capacity-reservation'),
          ],
        }),
        new iam.PolicyStatement({
          sid: 'LaunchWithClusterTags',
          actions: ['ec2:RunInstances', 'ec2:CreateFleet', 'ec2:CreateLaunchTemplate'],
          resources: created,
          conditions: { StringEquals: { [tagged('RequestTag')]: 'owned' }, StringLike: { 'aws:RequestTag/karpenter.sh/nodepool': '*' } },
        }),
        new iam.PolicyStatement({
          sid: 'LaunchFromOwnTemplates',
          actions: ['ec2:RunInstances', 'ec2:CreateFleet'],
          resources: [ec2('launch-template')],
          conditions: { StringEquals: { [tagged('ResourceTag')]: 'owned' }, StringLike: { 'aws:ResourceTag/karpenter.sh/nodepool': '*' } },
        }),
        new iam.PolicyStatement({
          sid: 'TagWhatItLaunches',
          actions: ['ec2:CreateTags'],
          resources: created,
          conditions: {
            StringEquals: { [tagged('RequestTag')]: 'owned', 'ec2:CreateAction': ['RunInstances', 'CreateFleet', 'CreateLaunchTemplate'] },
            StringLike: { 'aws:RequestTag/karpenter.sh/nodepool': '*' },
          },
        }),
        new iam.PolicyStatement({
          sid: 'TagOwnNodes',
          actions: ['ec2:CreateTags'],
          resources: [ec2('instance')],
          conditions: {
            StringEquals: { [tagged('ResourceTag')]: 'owned' },
            StringLike: { 'aws:ResourceTag/karpenter.sh/nodepool': '*' },
            'ForAllValues:StringEquals': { 'aws:TagKeys': ['eks:eks-cluster-name', 'karpenter.sh/nodeclaim', 'Name'] },
          },
        }),
        new iam.PolicyStatement({
          sid: 'TerminateOwnNodes',
          actions: ['ec2:TerminateInstances', 'ec2:DeleteLaunchTemplate'],
          resources: [ec2('instance'), ec2('launch-template')],
          conditions: { StringEquals: { [tagged('ResourceTag')]: 'owned' }, StringLike: { 'aws:ResourceTag/karpenter.sh/nodepool': '*' } },
        }),
        new iam.PolicyStatement({
          sid: 'Discover',
          actions: [
            'ec2:DescribeAvailabilityZones',
            'ec2:DescribeImages',
            'ec2:DescribeInstances',
            'ec2:DescribeInstanceTypeOfferings',
            'ec2:DescribeInstanceTypes',
            'ec2:DescribeLaunchTemplates',
            'ec2:DescribeSecurityGroups',
            'ec2:DescribeSpotPriceHistory',
            'ec2:DescribeSubnets',
            'ec2:DescribeCapacityReservations',
            'pricing:GetProducts',
          ],
          resources: ['*'],
        }),
        new iam.PolicyStatement({
          sid: 'AmiParameters',
          actions: ['ssm:GetParameter'],
          resources: [stack.formatArn({ service: 'ssm', account: '', resource: 'parameter', resourceName: 'aws/service/*' })],
        }),
        new iam.PolicyStatement({ sid: 'Interruptions', actions: ['sqs:DeleteMessage', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage'], resources: [this.interruptionQueue.queueArn] }),
        new iam.PolicyStatement({ sid: 'PassNodeRole', actions: ['iam:PassRole'], resources: [this.nodeRole.roleArn], conditions: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } } }),
        new iam.PolicyStatement({
          sid: 'CreateInstanceProfile',
          actions: ['iam:CreateInstanceProfile'],
          resources: [instanceProfiles],
          conditions: { StringEquals: owned('RequestTag'), StringLike: { 'aws:RequestTag/karpenter.k8s.aws/ec2nodeclass': '*' } },
        }),
        new iam.PolicyStatement({
          sid: 'TagInstanceProfile',
          actions: ['iam:TagInstanceProfile'],
          resources: [instanceProfiles],
          conditions: {
            StringEquals: { ...owned('ResourceTag'), ...owned('RequestTag') },
            StringLike: { 'aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass': '*', 'aws:RequestTag/karpenter.k8s.aws/ec2nodeclass': '*' },
          },
        }),
        new iam.PolicyStatement({
          sid: 'ManageInstanceProfile',
          actions: ['iam:AddRoleToInstanceProfile', 'iam:RemoveRoleFromInstanceProfile', 'iam:DeleteInstanceProfile'],
          resources: [instanceProfiles],
          conditions: { StringEquals: owned('ResourceTag'), StringLike: { 'aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass': '*' } },
        }),
        new iam.PolicyStatement({ sid: 'ReadInstanceProfile', actions: ['iam:GetInstanceProfile'], resources: [instanceProfiles] }),
        new iam.PolicyStatement({ sid: 'ClusterEndpoint', actions: ['eks:DescribeCluster'], resources: [cluster.clusterArn] }),
      ],
    });

    this.chart = new eks.HelmChart(this, 'Chart', {
        cluster: cluster,
      ...CHARTS.karpenter,
      release: 'karpenter',
      wait: true,
      values: {
        serviceAccount: { name: SERVICE_ACCOUNTS.karpenter.name },
        settings: { clusterName: cluster.clusterName, interruptionQueue: this.interruptionQueue.queueName },
        // Never on the nodes it launches: only on the system node group.
        nodeSelector: { 'hwai.dev/role': 'system' },
        controller: { resources: { requests: { cpu: '250m', memory: '512Mi' }, limits: { memory: '512Mi' } } },
      },
    });
    this.chart.node.addDependency(controller);
  }
}
