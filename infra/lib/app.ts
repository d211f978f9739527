import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Validations, type StageSynthesisOptions } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadFleetSpec } from '../../shared/src/spec/load.ts';
import { assertDeployable } from '../../shared/src/render/index.ts';
import type { DeployContext } from './context.ts';
import { ClusterStack } from './cluster-stack.ts';
import { ControlStack } from './control-stack.ts';
import { acknowledgeNagFindings } from './nag.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface HwaiAppProps {
  context: DeployContext;
  /** The handler modules; default functions/{controller,override}/handler.ts. */
  entries?: { controller: string; override: string };
  /** The CDK app to build into (the CLI's, with its context and output folder); default a new one. */
  app?: App;
}

export interface HwaiApp {
  app: App;
  cluster: ClusterStack;
  control: ControlStack;
  synth(options?: StageSynthesisOptions): ReturnType<App['synth']>;
}

/**
 * The whole deployment from one fleet spec. A spec the stack cannot deploy is refused here,
 * before any construct exists, with every field at fault named.
 */
export function buildApp(props: HwaiAppProps): HwaiApp {
  const { context } = props;
  const spec = loadFleetSpec(context.spec);
  assertDeployable(spec, context.spec);
  const entries = props.entries ?? {
    controller: join(REPO_ROOT, 'functions/controller/handler.ts'),
    override: join(REPO_ROOT, 'functions/override/handler.ts'),
  };
  for (const [name, entry] of Object.entries(entries)) {
    if (!existsSync(entry)) throw new Error(`the ${name} handler is missing: ${entry} (the stack bundles it)`);
  }

  const app = props.app ?? new App();
  // Cross-stack values go through CloudFormation exports: the control stack cannot outlive the
  // cluster it points at (cdk destroy --all removes the control plane first).
  app.node.setContext('@aws-cdk/core:defaultCrossStackReferences', 'strong');
  const env = context.region ? { region: context.region } : undefined;
  const cluster = new ClusterStack(app, 'HwaiCluster', {
    env,
    description: `hwai data plane: EKS ${context.clusterName}, Karpenter, KEDA, ALB and the units of fleet ${spec.metadata.name}`,
    spec,
    clusterName: context.clusterName,
    natGateways: context.natGateways,
    ingressCidr: context.ingressCidr,
    adminPrincipalArn: context.adminPrincipalArn,
    modelServersDir: join(REPO_ROOT, 'model-servers'),
  });
  const control = new ControlStack(app, 'HwaiControl', {
    env,
    description: `hwai control plane for fleet ${spec.metadata.name}: controller, override, schedules, state, alerts`,
    spec,
    clusterName: context.clusterName,
    cluster: { name: cluster.cluster.clusterName, endpoint: cluster.cluster.clusterEndpoint, certificateAuthorityData: cluster.cluster.clusterCertificateAuthorityData },
    listenerArn: cluster.ingress.listener.listenerArn,
    ruleArns: [...cluster.rules.values()].map((r) => r.listenerRuleArn),
    loadBalancerFullName: cluster.ingress.loadBalancer.loadBalancerFullName,
    entries,
    projectRoot: REPO_ROOT,
    alertEmail: context.alertEmail,
    servicesPerSchedule: context.servicesPerSchedule,
  });
  control.addStackDependency(cluster);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  acknowledgeNagFindings({ HwaiCluster: cluster, HwaiControl: control });
  return { app, cluster, control, synth: (options) => app.synth(options) };
}
