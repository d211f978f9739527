import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type * as eks from 'aws-cdk-lib/aws-eks-v2';
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import type { Construct } from 'constructs';
import type { FleetSpec } from '../../shared/src/spec/schema.ts';
import { FAMILIES } from '../../shared/src/render/index.ts';
import { DevicePlugins, Keda, LoadBalancerController } from './cluster/addons.ts';
import { EksCluster } from './cluster/cluster.ts';
import { FleetWorkloads } from './cluster/fleet.ts';
import { InferenceIngress, SERVICE_HEADER } from './cluster/ingress.ts';
import { Karpenter } from './cluster/karpenter.ts';
import { Network } from './cluster/network.ts';

export interface ClusterStackProps extends StackProps {
  spec: FleetSpec;
  clusterName: string;
  natGateways: number;
  ingressCidr: string;
  adminPrincipalArn?: string;
  modelServersDir: string;
}

/** The data plane: network, EKS with Karpenter and add-ons, the ALB, and the fleet's workloads. */
export class ClusterStack extends Stack {
  readonly cluster: eks.Cluster;
  readonly ingress: InferenceIngress;

  constructor(scope: Construct, id: string, props: ClusterStackProps) {
    super(scope, id, props);
    const { spec } = props;
    const network = new Network(this, 'Network', { clusterName: props.clusterName, natGateways: props.natGateways });
    this.cluster = new EksCluster(this, 'Eks', { clusterName: props.clusterName, vpc: network.vpc, adminPrincipalArn: props.adminPrincipalArn }).cluster;
    const karpenter = new Karpenter(this, 'Karpenter', { cluster: this.cluster, clusterName: props.clusterName });
    const accelerators = new Set(spec.units.map((u) => FAMILIES[u.family]!.accelerator));
    new DevicePlugins(this, 'DevicePlugins', { cluster: this.cluster, nvidia: accelerators.has('nvidia'), neuron: accelerators.has('neuron') });
    const keda = new Keda(this, 'Keda', { cluster: this.cluster });

    this.ingress = new InferenceIngress(this, 'Ingress', { spec, vpc: network.vpc, ingressCidr: props.ingressCidr });
    this.ingress.allowTo(this.cluster.clusterSecurityGroup);
    const targetGroupArn = (unit: string) => this.ingress.targetGroups.get(unit)!.targetGroupArn;
    const lbc = new LoadBalancerController(this, 'LoadBalancerController', {
      cluster: this.cluster,
      vpcId: network.vpc.vpcId,
      region: this.region,
      targetGroupArns: spec.units.map((u) => targetGroupArn(u.name)),
    });

    new FleetWorkloads(this, 'Fleet', {
      spec,
      cluster: this.cluster,
      modelServersDir: props.modelServersDir,
      nodeRole: karpenter.nodeRole,
      targetGroupArn,
      karpenter: karpenter.chart,
      keda: keda.chart,
      loadBalancerController: lbc.chart,
    });

    new CfnOutput(this, 'Endpoint', { value: `http://${this.ingress.loadBalancer.loadBalancerDnsName}`, description: `Inference endpoint; pick the service with the ${SERVICE_HEADER} header` });
    new CfnOutput(this, 'ListenerArn', { value: this.ingress.listener.listenerArn });
  }

  get rules(): Map<string, elbv2.ApplicationListenerRule> {
    return this.ingress.rules;
  }
}
