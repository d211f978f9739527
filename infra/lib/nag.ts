import { Validations, type Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Every cdk-nag AwsSolutions finding the stacks keep, each with the reason it is kept. The test
 * in test/infra requires zero unacknowledged findings and a reason on every entry here; an entry
 * whose construct no longer exists fails the build (no stale acknowledgements).
 */
export interface NagAcknowledgement {
  stack: 'HwaiCluster' | 'HwaiControl';
  /** Construct path under the stack; the acknowledgement covers the construct and its children. */
  path: string;
  /** The exact finding ids (`Rule[finding]` where the rule reports findings). */
  ids: string[];
  reason: string;
}

const managed = (...names: string[]) => names.map((n) => `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${n}]`);
const KUBECTL_ECR_PUBLIC =
  'AwsSolutions-IAM4[Policy::{"Fn::If":["EksClusterKubectlProviderHandlerHasEcrPublicC426D1A5",{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},{"Ref":"AWS::NoValue"}]}]';
const NODE_MANAGED = ['AmazonEKSWorkerNodePolicy', 'AmazonEKS_CNI_Policy'];
const wildcard = (...resources: string[]) => resources.map((r) => `AwsSolutions-IAM5[Resource::${r}]`);
const ec2Wildcards = ['instance', 'fleet', 'launch-template', 'volume', 'network-interface', 'spot-instances-request', 'subnet', 'security-group', 'capacity-reservation'].map(
  (t) => `arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:${t}/*`,
);
const KARPENTER_WILDCARDS = wildcard(
  '*',
  ...ec2Wildcards,
  'arn:<AWS::Partition>:ec2:<AWS::Region>::image/*',
  'arn:<AWS::Partition>:ec2:<AWS::Region>::snapshot/*',
  'arn:<AWS::Partition>:ssm:<AWS::Region>::parameter/aws/service/*',
  'arn:<AWS::Partition>:iam::<AWS::AccountId>:instance-profile/*',
);

const KUBECTL_PROVIDER = 'aws-eks-v2 runs kubectl and helm from a Lambda it builds itself (the kubectl provider); its runtime and roles are the construct library\'s, not configurable here.';
const NODE_POLICIES = 'EKS documents these AWS managed policies as the node role\'s requirement (kubelet, VPC CNI, image pulls from the EKS add-on registries in other accounts); a copy would drift from what EKS needs.';

export const NAG_ACKNOWLEDGEMENTS: NagAcknowledgement[] = [
  { stack: 'HwaiCluster', path: 'Eks/Cluster/Role', ids: managed('AmazonEKSClusterPolicy'), reason: 'AmazonEKSClusterPolicy is the policy EKS requires on the cluster role; AWS maintains it as the control plane changes.' },
  { stack: 'HwaiCluster', path: 'Eks/Cluster/KubectlProvider', ids: [...managed('service-role/AWSLambdaBasicExecutionRole', 'service-role/AWSLambdaVPCAccessExecutionRole', 'AmazonEC2ContainerRegistryReadOnly'), KUBECTL_ECR_PUBLIC], reason: KUBECTL_PROVIDER },
  { stack: 'HwaiCluster', path: 'Eks/Cluster/KubectlProvider', ids: ['AwsSolutions-IAM5[Resource::<EksClusterKubectlProviderHandlerDA75FB7A.Arn>:*]'], reason: KUBECTL_PROVIDER },
  { stack: 'HwaiCluster', path: 'Eks/Cluster/KubectlProvider', ids: ['AwsSolutions-L1'], reason: KUBECTL_PROVIDER },
  { stack: 'HwaiCluster', path: 'Eks/Cluster/NodegroupSystem', ids: managed(...NODE_MANAGED, 'AmazonEC2ContainerRegistryReadOnly'), reason: NODE_POLICIES },
  { stack: 'HwaiCluster', path: 'Karpenter/NodeRole', ids: managed(...NODE_MANAGED, 'AmazonEC2ContainerRegistryPullOnly'), reason: `${NODE_POLICIES} Pull-only ECR access, not read-only.` },
  {
    stack: 'HwaiCluster',
    path: 'Karpenter/Controller/Policy',
    ids: KARPENTER_WILDCARDS,
    reason: 'Karpenter launches instances, fleets and launch templates whose ids are unknown until it creates them (resource ARNs end in /*; creation, tagging, termination and launch-template use limited by request or resource tags to this cluster\'s node pools), discovers with Describe* and pricing calls that have no resource-level permissions, and manages instance profiles it names itself (limited by request and resource tags) - the scoping of Karpenter\'s own reference policy.',
  },
  { stack: 'HwaiCluster', path: 'Karpenter/InterruptionQueue', ids: ['AwsSolutions-SQS3'], reason: 'Interruption notices are worthless after their 2-minute warning; the queue keeps them 5 minutes and a dead-letter queue would only hold stale ones. Karpenter deletes what it has handled.' },
  { stack: 'HwaiCluster', path: 'Keda/CloudWatchReader/Policy', ids: ['AwsSolutions-IAM5[Resource::*]'], reason: 'cloudwatch:GetMetricData, the only action, has no resource-level permissions.' },
  { stack: 'HwaiCluster', path: 'LoadBalancerController/TargetRegistrar/Policy', ids: ['AwsSolutions-IAM5[Resource::*]'], reason: 'Only the Describe* calls (no resource-level permissions) are on *; RegisterTargets/DeregisterTargets are limited to the fleet\'s target groups.' },
  { stack: 'HwaiCluster', path: 'Ingress/SecurityGroup', ids: ['AwsSolutions-EC23'], reason: 'The inference endpoint is public by design (HTTP 80 to the model servers\' ALB); restrict it with `-c ingressCidr=...`.' },
  { stack: 'HwaiCluster', path: 'Ingress/LoadBalancer', ids: ['AwsSolutions-ELB2'], reason: 'Access logs need an S3 bucket and grow with every inference request; request counts, 5xx and latency per unit are in CloudWatch (model-server EMF and ALB metrics on the dashboard). Enable access logs for audits.' },
  { stack: 'HwaiControl', path: 'Controller/Policy', ids: ['AwsSolutions-IAM5[Resource::*]'], reason: 'elasticloadbalancing:Describe*, cloudwatch:GetMetricData and the EC2 capacity reads (DescribeCapacityReservations, DescribeInstances — the instance type of a capacity event —, GetSpotPlacementScores, DescribeInstanceTypeOfferings) have no resource-level permissions; the only write, ModifyRule, is limited to the fleet\'s listener rules.' },
  { stack: 'HwaiControl', path: 'SchedulerRoleForTarget-b951ce', ids: ['AwsSolutions-IAM5[Resource::<ControllerFunction5B01FC5C.Arn>:*]'], reason: 'The scheduler may invoke the controller function and its versions (ARN:*), nothing else; the role is made by the Scheduler target construct.' },
];

function at(stack: Stack, path: string): IConstruct {
  let node: IConstruct = stack;
  for (const part of path.split('/')) {
    const child = node.node.tryFindChild(part);
    if (!child) throw new Error(`nag acknowledgement: no construct ${stack.stackName}/${path} (stale entry in infra/lib/nag.ts)`);
    node = child;
  }
  return node;
}

export function acknowledgeNagFindings(stacks: Record<NagAcknowledgement['stack'], Stack>): void {
  for (const ack of NAG_ACKNOWLEDGEMENTS) {
    const target = Validations.of(at(stacks[ack.stack], ack.path));
    for (const id of ack.ids) target.acknowledge({ id, reason: ack.reason });
  }
}
