import { readFileSync, readdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { stringify } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type HwaiApp } from '../../infra/lib/app.ts';
import { parseDeployContext } from '../../infra/lib/context.ts';
import { CONTROLLER_GROUP } from '../../infra/lib/control-stack.ts';
import { Alerts } from '../../infra/lib/control/state-and-alerts.ts';
import { NAG_ACKNOWLEDGEMENTS } from '../../infra/lib/nag.ts';
import { rulePriorities } from '../../infra/lib/cluster/ingress.ts';
import { CHARTS } from '../../infra/lib/versions.ts';
import { CAPACITY_DETAIL_TYPES } from '../../shared/src/control/events.ts';
import { controllerConfig, overrideConfig } from '../../shared/src/control/config.ts';
import { loadFleetSpec } from '../../shared/src/spec/load.ts';
import { InputValidationError } from '../../shared/src/spec/validation.ts';
import { readRbacManifest, targetGroupName } from '../../shared/src/render/index.ts';
import { INFRA_DIR, synthApp } from './synth.ts';

type Statement = { Sid?: string; Effect: string; Action: string | string[]; Resource: unknown };
type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

const spec = loadFleetSpec();
let hwai: HwaiApp;
let outdir: string;
let cluster: Template;
let control: Template;

beforeAll(() => {
  ({ hwai, outdir } = synthApp());
  cluster = Template.fromStack(hwai.cluster);
  control = Template.fromStack(hwai.control);
});

const logicalId = (stack: Stack, construct: { node: { defaultChild?: unknown } }) => stack.getLogicalId(construct.node.defaultChild as never);

/** The statements of the policies attached to a role (the role has no inline or managed ones). */
function statementsOf(template: Template, roleId: string): Statement[] {
  const policies = Object.values(template.findResources('AWS::IAM::Policy') as Resources).filter((p) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: roleId }]));
  return policies.flatMap((p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
}

describe('the synth', () => {
  it('needed no context lookup (no account, no AZ query)', () => {
    expect(hwai.synth().manifest.missing ?? []).toEqual([]);
  });
});

describe('the cluster stack', () => {
  it('runs EKS in API authentication mode with every control-plane log and encrypted Secrets', () => {
    cluster.hasResourceProperties('AWS::EKS::Cluster', {
      Name: 'hwai',
      Version: '1.35',
      AccessConfig: Match.objectLike({ AuthenticationMode: 'API' }),
      Logging: { ClusterLogging: { EnabledTypes: ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'].map((type) => ({ Type: type })) } },
      EncryptionConfig: [Match.objectLike({ Resources: ['secrets'] })],
    });
    cluster.hasResourceProperties('AWS::EKS::Nodegroup', { InstanceTypes: ['t4g.large'], ScalingConfig: { MinSize: 2, DesiredSize: 2, MaxSize: 3 }, Labels: { 'hwai.dev/role': 'system' } });
  });

  it('gives Karpenter, KEDA and the Load Balancer Controller their roles through EKS Pod Identity', () => {
    const associations = Object.values(cluster.findResources('AWS::EKS::PodIdentityAssociation') as Resources).map((a) => `${a.Properties.Namespace}/${a.Properties.ServiceAccount}`);
    expect(associations.sort()).toEqual(['keda/keda-operator', 'kube-system/aws-load-balancer-controller', 'kube-system/karpenter']);
    cluster.resourceCountIs('AWS::EKS::Addon', 1);
    cluster.hasResourceProperties('AWS::EKS::Addon', { AddonName: 'eks-pod-identity-agent' });
  });

  it("limits Karpenter's launches, tags, terminations and instance profiles to this cluster's node pools", () => {
    const role = logicalId(hwai.cluster, hwai.cluster.node.findChild('Karpenter').node.findChild('Controller').node.findChild('Role'));
    const statements = statementsOf(cluster, role) as Array<Statement & { Condition?: Record<string, Record<string, unknown>> }>;
    const conditioned = ['LaunchWithClusterTags', 'LaunchFromOwnTemplates', 'TagWhatItLaunches', 'TagOwnNodes', 'TerminateOwnNodes', 'CreateInstanceProfile', 'TagInstanceProfile', 'ManageInstanceProfile'];
    for (const sid of conditioned) {
      const s = statements.find((x) => x.Sid === sid);
      expect(JSON.stringify(s?.Condition), sid).toContain('kubernetes.io/cluster/hwai');
    }
    expect(statements.find((s) => s.Sid === 'PassNodeRole')).toMatchObject({ Condition: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } } });
    // Only reads are allowed on every resource.
    const unscoped = statements.filter((s) => s.Resource === '*').flatMap((s) => [s.Action].flat());
    expect(unscoped.every((a) => /^(ec2:Describe|pricing:Get)/.test(a)), unscoped.join(', ')).toBe(true);
  });

  it('installs the pinned Helm charts: Karpenter, KEDA, the Load Balancer Controller, both device plugins', () => {
    const charts = Object.values(cluster.findResources('Custom::AWSCDK-EKS-HelmChart') as Resources).map((c) => `${c.Properties.Chart}@${c.Properties.Version}`);
    expect(charts.sort()).toEqual(Object.values(CHARTS).map((c) => `${c.chart}@${c.version}`).sort());
  });

  it('feeds Karpenter an interruption queue from the four EventBridge rules of its reference setup', () => {
    const queueId = logicalId(hwai.cluster, hwai.cluster.node.findChild('Karpenter').node.findChild('InterruptionQueue'));
    const rules = Object.values(cluster.findResources('AWS::Events::Rule') as Resources).filter((r) => JSON.stringify(r.Properties.Targets).includes(queueId));
    expect(rules.map((r) => (r.Properties.EventPattern as { 'detail-type': string[] })['detail-type'][0]).sort()).toEqual([
      'AWS Health Event',
      'EC2 Instance Rebalance Recommendation',
      'EC2 Instance State-change Notification',
      'EC2 Spot Instance Interruption Warning',
    ]);
    cluster.hasResourceProperties('AWS::SQS::Queue', { MessageRetentionPeriod: 300, SqsManagedSseEnabled: true });
  });

  it('makes one IP target group per unit, named as the controller finds it, health-checked on /readiness', () => {
    const groups = Object.values(cluster.findResources('AWS::ElasticLoadBalancingV2::TargetGroup') as Resources);
    expect(groups.map((g) => g.Properties.Name).sort()).toEqual(spec.units.map(targetGroupName).sort());
    for (const g of groups) expect(g.Properties).toMatchObject({ TargetType: 'ip', Port: 8080, Protocol: 'HTTP', HealthCheckPath: '/readiness', Matcher: { HttpCode: '200' } });
  });

  it('makes one listener rule per service, tagged hwai:rule = its lookup, forwarding to its units only', () => {
    const rules = Object.values(cluster.findResources('AWS::ElasticLoadBalancingV2::ListenerRule') as Resources);
    expect(rules).toHaveLength(Object.keys(spec.services).length);
    for (const [service, settings] of Object.entries(spec.services)) {
      const rule = rules.find((r) => JSON.stringify(r.Properties.Tags) === JSON.stringify([{ Key: 'hwai:rule', Value: settings.listenerRule!.lookup }]));
      expect(rule, service).toBeDefined();
      const forward = (rule!.Properties.Actions as Array<{ ForwardConfig: { TargetGroups: Array<{ TargetGroupArn: { Ref: string } }> } }>)[0]!.ForwardConfig.TargetGroups;
      const ingress = hwai.cluster.node.findChild('Ingress');
      const expected = spec.units.filter((u) => u.service === service).map((u) => logicalId(hwai.cluster, ingress.node.findChild(`Unit-${u.name}`)));
      expect(forward.map((tg) => tg.TargetGroupArn.Ref)).toEqual(expected);
      expect(rule!.Properties.Conditions).toEqual([{ Field: 'http-header', HttpHeaderConfig: { HttpHeaderName: 'x-hwai-service', Values: [service] } }]);
    }
  });

  it("keeps each rule's priority when services are added or removed", () => {
    const before = rulePriorities(['sd21', 'vit', 'yolos']);
    const after = rulePriorities(['aaa-new', 'sd21', 'vit']);
    expect(after.get('sd21')).toBe(before.get('sd21'));
    expect(after.get('vit')).toBe(before.get('vit'));
    const all = [...rulePriorities(Object.keys(spec.services)).values()];
    expect(new Set(all).size).toBe(all.length);
    expect(all.every((p) => p >= 1 && p <= 50_000)).toBe(true);
  });

  it('lets the ALB reach the model servers on their port only, through the nodes\' cluster security group', () => {
    cluster.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      IpProtocol: 'tcp',
      FromPort: 8080,
      ToPort: 8080,
      GroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^EksCluster'), 'ClusterSecurityGroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^IngressSecurityGroup'), 'GroupId'] },
    });
    cluster.hasResourceProperties('AWS::EC2::SecurityGroup', { SecurityGroupIngress: [Match.objectLike({ CidrIp: '0.0.0.0/0', FromPort: 80, ToPort: 80 })] });
  });

  it('binds each unit to its own target group and runs the model-server image built from model-servers/', () => {
    const fleet = hwai.cluster.node.findChild('Fleet') as unknown as { manifests: { units: Array<{ unit: { name: string }; targetGroupBinding: { spec: { targetGroupARN: string } } }> } };
    for (const u of fleet.manifests.units) {
      const tg = hwai.cluster.node.findChild('Ingress').node.findChild(`Unit-${u.unit.name}`);
      expect(hwai.cluster.resolve(u.targetGroupBinding.spec.targetGroupARN)).toEqual({ Ref: logicalId(hwai.cluster, tg) });
    }
    const assets = JSON.parse(readFileSync(join(outdir, 'HwaiCluster.assets.json'), 'utf8')) as { dockerImages: Record<string, { source: { directory: string; dockerFile: string; platform: string } }> };
    expect(Object.values(assets.dockerImages).map((i) => i.source.dockerFile).sort()).toEqual(['docker/Dockerfile.gpu', 'docker/Dockerfile.neuron']);
    // Hashed at synth, built only at deploy: the build context is staged, not an image.
    for (const image of Object.values(assets.dockerImages)) expect(readdirSync(join(outdir, image.source.directory))).toContain('hwai_models');
  });
});

describe('the control stack', () => {
  it('runs both functions on nodejs24.x, ARM64, with log groups kept 30 days; the controller one at a time', () => {
    const functions = Object.values(control.findResources('AWS::Lambda::Function') as Resources);
    expect(functions).toHaveLength(2);
    for (const f of functions) expect(f.Properties).toMatchObject({ Runtime: 'nodejs24.x', Architectures: ['arm64'], LoggingConfig: { LogGroup: expect.anything() } });
    control.hasResourceProperties('AWS::Lambda::Function', { FunctionName: 'hwai-override' });
    control.hasResourceProperties('AWS::Lambda::Function', { FunctionName: 'hwai-controller', ReservedConcurrentExecutions: 1, Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'hwai-controller', HWAI_CLUSTER_NAME: Match.anyValue(), HWAI_CLUSTER_ENDPOINT: Match.anyValue(), HWAI_CLUSTER_CA: Match.anyValue() }) } });
    control.resourcePropertiesCountIs('AWS::Logs::LogGroup', { RetentionInDays: 30 }, 2);
    // Ticks queued behind the running one expire after a minute; a failed tick is not repeated.
    control.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { MaximumEventAgeInSeconds: 60, MaximumRetryAttempts: 0 });
  });

  it('hands each function the environment of the contract, the spec file beside its bundle', () => {
    const vars = Object.values(control.findResources('AWS::Lambda::Function') as Resources).map((f) => (f.Properties.Environment as { Variables: Record<string, unknown> }).Variables);
    for (const v of vars) {
      expect(Object.keys(v)).toEqual(expect.arrayContaining(['HWAI_SPEC_FILE', 'HWAI_STATE_TABLE', 'HWAI_ALERT_TOPIC_ARN', 'HWAI_LISTENER_ARN', 'POWERTOOLS_SERVICE_NAME', 'POWERTOOLS_METRICS_NAMESPACE', 'POWERTOOLS_LOG_LEVEL']));
      expect(v).toMatchObject({ HWAI_SPEC_FILE: '/var/task/fleet.yaml', POWERTOOLS_METRICS_NAMESPACE: 'hwai', HWAI_DRY_RUN: 'false' });
    }
  });

  it("hands each function an environment its own cold-start validation accepts (deployed values in place of CloudFormation's)", () => {
    // What CloudFormation resolves each reference to, in the shape the real value has.
    const deployed: Record<string, string> = {
      HWAI_STATE_TABLE: 'HwaiControl-StateTable962DE04C-1A2B3C4D5E6F',
      HWAI_ALERT_TOPIC_ARN: 'arn:aws:sns:us-west-2:123456789012:HwaiControl-AlertsTopic-1A2B3C',
      HWAI_LISTENER_ARN: 'arn:aws:elasticloadbalancing:us-west-2:123456789012:listener/app/HwaiCl-Ingre-1A2B/0123456789abcdef/fedcba9876543210',
      HWAI_CLUSTER_NAME: 'hwai',
      HWAI_CLUSTER_ENDPOINT: 'https://0123456789ABCDEF0123456789ABCDEF.gr7.us-west-2.eks.amazonaws.com',
      HWAI_CLUSTER_CA: Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64'),
    };
    const envOf = (name: string) => {
      const fn = Object.values(control.findResources('AWS::Lambda::Function', { Properties: { FunctionName: name } }) as Resources)[0]!;
      const vars = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      return Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, typeof v === 'string' ? v : deployed[k] ?? `unresolved ${k}`]));
    };
    expect(controllerConfig(envOf('hwai-controller'))).toMatchObject({
      specFile: '/var/task/fleet.yaml',
      stateTable: deployed.HWAI_STATE_TABLE,
      listenerArn: deployed.HWAI_LISTENER_ARN,
      dryRun: false,
      cluster: { kind: 'eks', name: 'hwai', endpoint: deployed.HWAI_CLUSTER_ENDPOINT },
    });
    expect(overrideConfig(envOf('hwai-override'))).toMatchObject({ specFile: '/var/task/fleet.yaml', alertTopicArn: deployed.HWAI_ALERT_TOPIC_ARN, dryRun: false });
  });

  it('copies the fleet spec, calibrations applied, beside each bundle, where it loads as the same fleet', () => {
    const bundles = readdirSync(outdir, { withFileTypes: true }).filter((d) => d.isDirectory() && readdirSync(join(outdir, d.name)).includes('index.mjs')).map((d) => d.name);
    expect(bundles).toHaveLength(2);
    for (const b of bundles) expect(loadFleetSpec(join(outdir, b, 'fleet.yaml'))).toEqual({ ...spec, calibrationFiles: [] });
  });

  it('gives the controller exactly its IAM statements: every action named, writes scoped to its rules, table and topic', () => {
    const ids = {
      role: logicalId(hwai.control, hwai.control.controller.role),
      logs: logicalId(hwai.control, hwai.control.controller.logGroup),
      table: control.findResources('AWS::DynamoDB::Table'),
      topic: control.findResources('AWS::SNS::Topic'),
      key: control.findResources('AWS::KMS::Key'),
    };
    const [table, topic, key] = [ids.table, ids.topic, ids.key].map((r) => Object.keys(r)[0]!);
    const statements = statementsOf(control, ids.role);
    expect(statements.map(({ Sid, Action, Resource }) => ({ Sid, Action, Resource: Sid === 'WriteWeights' ? '(rules)' : Resource }))).toEqual([
      { Sid: 'WriteLogs', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::GetAtt': [ids.logs, 'Arn'] } },
      { Sid: 'ReadRouting', Action: ['elasticloadbalancing:DescribeRules', 'elasticloadbalancing:DescribeListeners', 'elasticloadbalancing:DescribeTargetGroups', 'elasticloadbalancing:DescribeTargetHealth', 'elasticloadbalancing:DescribeTags'], Resource: '*' },
      { Sid: 'WriteWeights', Action: 'elasticloadbalancing:ModifyRule', Resource: '(rules)' },
      { Sid: 'ReadMetrics', Action: 'cloudwatch:GetMetricData', Resource: '*' },
      { Sid: 'ReadCapacity', Action: ['ec2:DescribeCapacityReservations', 'ec2:DescribeInstances', 'ec2:GetSpotPlacementScores', 'ec2:DescribeInstanceTypeOfferings'], Resource: '*' },
      { Sid: 'KeepState', Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'], Resource: { 'Fn::GetAtt': [table, 'Arn'] } },
      { Sid: 'PublishAlerts', Action: 'sns:Publish', Resource: { Ref: topic } },
      { Sid: 'EncryptAlerts', Action: ['kms:GenerateDataKey', 'kms:Decrypt'], Resource: { 'Fn::GetAtt': [key, 'Arn'] } },
    ]);
    // ModifyRule: the fleet's listener rules, one per service, imported from the cluster stack.
    const rules = statements.find((s) => s.Sid === 'WriteWeights')!.Resource as Array<Record<string, string>>;
    expect(rules).toHaveLength(Object.keys(spec.services).length);
    const imported = rules.map((r) => r['Fn::ImportValue']!).join('\n');
    for (const service of Object.keys(spec.services)) expect(imported).toContain(`IngressService${service.replaceAll('-', '')}`);
    expect(statements.every((s) => s.Effect === 'Allow')).toBe(true);
  });

  it('gives the override function exactly its IAM statements', () => {
    const role = logicalId(hwai.control, hwai.control.override.role);
    const logs = logicalId(hwai.control, hwai.control.override.logGroup);
    const [table, topic, key] = ['AWS::DynamoDB::Table', 'AWS::SNS::Topic', 'AWS::KMS::Key'].map((t) => Object.keys(control.findResources(t))[0]!);
    expect(statementsOf(control, role).map(({ Sid, Action, Resource }) => ({ Sid, Action, Resource }))).toEqual([
      { Sid: 'WriteLogs', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::GetAtt': [logs, 'Arn'] } },
      { Sid: 'KeepState', Action: ['dynamodb:GetItem', 'dynamodb:PutItem'], Resource: { 'Fn::GetAtt': [table, 'Arn'] } },
      { Sid: 'PublishAlerts', Action: 'sns:Publish', Resource: { Ref: topic } },
      { Sid: 'EncryptAlerts', Action: ['kms:GenerateDataKey', 'kms:Decrypt'], Resource: { 'Fn::GetAtt': [key, 'Arn'] } },
    ]);
  });

  it('names every IAM action in both stacks: no wildcard action anywhere', () => {
    for (const template of [cluster, control]) {
      const policies = Object.values(template.findResources('AWS::IAM::Policy') as Resources);
      const actions = policies.flatMap((p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement.flatMap((s) => [s.Action].flat()));
      expect(actions.length).toBeGreaterThan(0);
      expect(actions.filter((a) => a.includes('*'))).toEqual([]);
    }
  });

  it('keeps the state in one encrypted table keyed by pk, with TTL on expiresAt and point-in-time recovery', () => {
    control.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      SSESpecification: { SSEEnabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
    control.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    control.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('subscribes the alert e-mail when one is given', () => {
    const stack = new Stack(new App(), 'AlertsOnly');
    new Alerts(stack, 'Alerts', { email: 'oncall@example.com' });
    Template.fromStack(stack).hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com' });
  });

  it('ticks every service once a minute, one schedule per shard, and at once on each capacity event the controller parses', () => {
    const schedules = Object.values(control.findResources('AWS::Scheduler::Schedule') as Resources);
    const inputs = schedules.map((s) => JSON.parse((s.Properties.Target as { Input: string }).Input) as { kind: string; services: string[] });
    expect(schedules.map((s) => s.Properties.ScheduleExpression)).toEqual(schedules.map(() => 'rate(1 minute)'));
    expect(inputs.every((i) => i.kind === 'scheduled-tick')).toBe(true);
    expect(inputs.flatMap((i) => i.services)).toEqual(Object.keys(spec.services));
    expect(inputs.map((i) => i.services.length)).toEqual([3, 3]);
    control.hasResourceProperties('AWS::Events::Rule', { EventPattern: { source: ['aws.ec2'], 'detail-type': [...CAPACITY_DETAIL_TYPES] } });
  });

  it('alarms to the alerts topic on no successful tick for 5 minutes, actuation failures and controller errors', () => {
    const topic = { Ref: Object.keys(control.findResources('AWS::SNS::Topic'))[0] };
    control.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'hwai',
      MetricName: 'TickSucceeded',
      Dimensions: [{ Name: 'service', Value: 'hwai-controller' }],
      Period: 300,
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
      AlarmActions: [topic],
    });
    control.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'hwai', MetricName: 'ActuationErrors', AlarmActions: [topic] });
    control.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'AWS/Lambda', MetricName: 'Errors', AlarmActions: [topic] });
    control.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it("maps the controller's role to the Kubernetes group that manifests/rbac binds, and nothing more", () => {
    control.hasResourceProperties('AWS::EKS::AccessEntry', {
      PrincipalArn: { 'Fn::GetAtt': [logicalId(hwai.control, hwai.control.controller.role), 'Arn'] },
      KubernetesGroups: [CONTROLLER_GROUP],
      Type: 'STANDARD',
      AccessPolicies: Match.absent(),
    });
    const binding = readRbacManifest().objects.find((o) => o.kind === 'ClusterRoleBinding') as unknown as { subjects: Array<{ kind: string; name: string }> };
    expect(binding.subjects).toContainEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: CONTROLLER_GROUP });
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('leaves no unacknowledged finding', () => {
    const report = new AwsSolutionsChecks(hwai.app).validateScope(hwai.app);
    expect(report.violations.map((v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath ?? r.resourceLogicalId).join(', ')}`)).toEqual([]);
  });

  it('gives every acknowledgement a written reason', () => {
    for (const ack of NAG_ACKNOWLEDGEMENTS) expect(ack.reason.length, ack.ids.join(', ')).toBeGreaterThan(40);
  });
});

describe('a spec or context the stack cannot deploy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hwai-bad-spec-'));
  const refusal = (name: string, edit: (s: Record<string, unknown>) => void): string => {
    const raw = structuredClone(JSON.parse(JSON.stringify({ ...spec, calibrationFiles: [] }))) as Record<string, unknown>;
    edit(raw);
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, stringify(raw));
    try {
      buildApp({ app: new App(), context: parseDeployContext({ spec: file }, INFRA_DIR) });
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('expected the stack to refuse the spec');
  };
  const units = (s: Record<string, unknown>) => s.units as Array<Record<string, unknown>>;

  it('fails with more than 5 units on one rule', () => {
    expect(refusal('six-units', (s) => void units(s).push({ ...units(s)[0]!, name: 'sd21-inf2-neuron-b', targetGroup: { name: 'hwai-sd21-inf2-neuron-b' } }))).toContain(
      'services.sd21: an ALB forward action takes at most 5 target groups; this service has 6 units',
    );
  });

  it('fails with a unit without an instance type its family offers', () => {
    expect(refusal('bad-type', (s) => void (units(s)[2]!.instanceType = 'g6.xlarge'))).toContain('units[2].instanceType: "g6.xlarge" is not an instance type of family g5');
  });

  it('fails with a unit of a missing service', () => {
    expect(refusal('no-service', (s) => void delete (s.services as Record<string, unknown>).yolos)).toContain('units[13].service: unknown service "yolos"');
  });

  it('fails with a service the stack cannot make a rule for', () => {
    expect(refusal('no-lookup', (s) => void ((s.services as Record<string, Record<string, unknown>>).vit!.listenerRule = { ruleArn: 'arn:aws:elasticloadbalancing:us-west-2:123456789012:listener-rule/app/x/1/2/3' }))).toContain(
      'services.vit.listenerRule.lookup: required',
    );
  });

  it('fails with a context value it cannot use, naming the key', () => {
    expect(() => parseDeployContext({ natGateways: 'two' }, INFRA_DIR)).toThrow(InputValidationError);
    expect(() => parseDeployContext({ natGateways: 'two' }, INFRA_DIR)).toThrow(/natGateways: expected number/);
    expect(() => parseDeployContext({ alertEmail: 'oncall' }, INFRA_DIR)).toThrow(/alertEmail: Invalid email/);
  });
});
