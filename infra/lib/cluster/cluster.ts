import { KubectlV35Layer } from '@aws-cdk/lambda-layer-kubectl-v35';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { KUBERNETES_VERSION } from '../versions.ts';

export interface EksClusterProps {
  clusterName: string;
  vpc: ec2.IVpc;
  /** Given cluster-admin through an access entry. */
  adminPrincipalArn?: string;
}

/**
 * The EKS cluster: API authentication mode (access entries only, no aws-auth ConfigMap), every
 * control-plane log type, envelope encryption of Secrets, and a small managed node group for the
 * system pods (Karpenter cannot run on the nodes it launches).
 */
export class EksCluster extends Construct {
  readonly cluster: eks.Cluster;

  constructor(scope: Construct, id: string, props: EksClusterProps) {
    super(scope, id);
    this.cluster = new eks.Cluster(this, 'Cluster', {
      clusterName: props.clusterName,
      version: eks.KubernetesVersion.of(KUBERNETES_VERSION),
      vpc: props.vpc,
      vpcSubnets: [{ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }],
      defaultCapacityType: eks.DefaultCapacityType.NODEGROUP,
      defaultCapacity: 0,
      endpointAccess: eks.EndpointAccess.PUBLIC_AND_PRIVATE,
      secretsEncryptionKey: new kms.Key(this, 'SecretsKey', {
        enableKeyRotation: true,
        description: `${props.clusterName}: EKS Secrets envelope encryption`,
        // Goes with the cluster (`cdk destroy`), after KMS's shortest waiting period.
        removalPolicy: RemovalPolicy.DESTROY,
        pendingWindow: Duration.days(7),
      }),
      clusterLogging: [
        eks.ClusterLoggingTypes.API,
        eks.ClusterLoggingTypes.AUDIT,
        eks.ClusterLoggingTypes.AUTHENTICATOR,
        eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
        eks.ClusterLoggingTypes.SCHEDULER,
      ],
      kubectlProviderOptions: { kubectlLayer: new KubectlV35Layer(this, 'KubectlLayer') },
    });
    // Karpenter, KEDA, the Load Balancer Controller and CoreDNS: two small Graviton nodes.
    this.cluster.addNodegroupCapacity('System', {
      instanceTypes: [new ec2.InstanceType('t4g.large')],
      amiType: eks.NodegroupAmiType.AL2023_ARM_64_STANDARD,
      minSize: 2,
      desiredSize: 2,
      maxSize: 3,
      diskSize: 20,
      labels: { 'hwai.dev/role': 'system' },
    });
    // Credentials for Karpenter, KEDA and the Load Balancer Controller come from EKS Pod Identity.
    void this.cluster.eksPodIdentityAgent;
    if (props.adminPrincipalArn) this.cluster.grantClusterAdmin('Admin', props.adminPrincipalArn);
  }
}
