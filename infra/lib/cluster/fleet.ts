import { IgnoreMode, Stack } from 'aws-cdk-lib';
import * as ecr_assets from 'aws-cdk-lib/aws-ecr-assets';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct, type IDependable } from 'constructs';
import type { FleetSpec } from '../../../shared/src/spec/schema.ts';
import { ACCELERATORS, FAMILIES, readRbacManifest, renderFleet, type FleetManifests } from '../../../shared/src/render/index.ts';

export interface FleetWorkloadsProps {
  spec: FleetSpec;
  cluster: eks.Cluster;
  /** model-servers/: the build context of the model-server images. */
  modelServersDir: string;
  nodeRole: iam.IRole;
  targetGroupArn: (unit: string) => string;
  /** What the manifests need installed first. */
  karpenter: IDependable;
  keda: IDependable;
  loadBalancerController: IDependable;
}

/**
 * Everything of the fleet spec inside the cluster, rendered by the same code as `hwai render`:
 * node pools, namespaces, KEDA's TriggerAuthentications, per unit a Deployment, Service,
 * ScaledObject and TargetGroupBinding, and the controller's RBAC. The model-server images are
 * Docker image assets: hashed at synth, built and pushed only by `cdk deploy`.
 */
export class FleetWorkloads extends Construct {
  readonly manifests: FleetManifests;
  readonly images: Partial<Record<'gpu' | 'neuron', ecr_assets.DockerImageAsset>> = {};

  constructor(scope: Construct, id: string, props: FleetWorkloadsProps) {
    super(scope, id);
    const { spec, cluster } = props;
    const kinds = new Set(spec.units.map((u) => ACCELERATORS[FAMILIES[u.family]!.accelerator].image));
    for (const kind of [...kinds].sort()) {
      this.images[kind] = new ecr_assets.DockerImageAsset(this, `ModelServer-${kind}`, {
        directory: props.modelServersDir,
        file: `docker/Dockerfile.${kind}`,
        platform: ecr_assets.Platform.LINUX_AMD64,
        ignoreMode: IgnoreMode.DOCKER,
        exclude: ['.venv', '**/__pycache__', '.pytest_cache', 'tests', 'benchmarks', '*.egg-info'],
      });
    }
    // An image no unit runs is not built; no manifest refers to it.
    const image = (kind: 'gpu' | 'neuron') => this.images[kind]?.imageUri ?? `no ${kind} unit in this fleet`;
    this.manifests = renderFleet(spec, {
      clusterName: cluster.clusterName,
      nodeRoleName: props.nodeRole.roleName,
      region: Stack.of(this).region,
      images: { gpu: image('gpu'), neuron: image('neuron') },
      nodeSecurityGroupId: cluster.clusterSecurityGroupId,
      targetGroupArn: (unit) => props.targetGroupArn(unit.name),
    });
    const m = this.manifests;

    const namespaces = new eks.KubernetesManifest(this, 'Namespaces', { cluster, manifest: [...m.namespaces] });
    const nodePools = new eks.KubernetesManifest(this, 'NodePools', { cluster, manifest: [...m.nodeClasses, ...m.nodePools] });
    nodePools.node.addDependency(props.karpenter);
    const auth = new eks.KubernetesManifest(this, 'KedaAuthentication', { cluster, manifest: [...m.triggerAuthentications] });
    auth.node.addDependency(namespaces, props.keda);
    for (const u of m.units) {
      const unit = new eks.KubernetesManifest(this, `Unit-${u.unit.name}`, { cluster, manifest: [u.deployment, u.service, u.scaledObject, u.targetGroupBinding] });
      unit.node.addDependency(namespaces, auth, props.keda, props.loadBalancerController);
    }
    new eks.KubernetesManifest(this, 'ControllerRbac', { cluster, manifest: readRbacManifest().objects });
  }
}
