import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { stringify } from 'yaml';
import { main } from '../../shared/src/cli/main.ts';
import { describe, expect, it } from 'vitest';
import { DEFAULT_FLEET_PATH, loadFleetSpec, parseFleetSpec } from '../../shared/src/spec/load.ts';
import type { FleetSpecInput } from '../../shared/src/spec/schema.ts';
import { InputValidationError } from '../../shared/src/spec/validation.ts';
import { renderSpecFile } from '../../shared/src/render/command.ts';
import { DEFAULT_RENDER_OPTIONS, listFiles, renderFleet, type KubernetesObject } from '../../shared/src/render/index.ts';

const MANIFESTS = join(import.meta.dirname, '../../manifests');

/** A small valid fleet; `edit` changes it into the case under test. */
function fleet(edit: (spec: FleetSpecInput) => void = () => {}): FleetSpecInput {
  const spec: FleetSpecInput = {
    apiVersion: 'hwai/v1',
    kind: 'Fleet',
    metadata: { name: 'test' },
    services: { sd21: { listenerRule: { lookup: 'hwai-sd21-rule' } } },
    units: [
      { name: 'sd21-inf2-neuron', service: 'sd21', model: 'stabilityai/stable-diffusion-2-1', family: 'inf2', instanceType: 'inf2.xlarge', framework: 'neuron', pricePerHour: 0.7582, maxRpm: 105, latencySeconds: 0.67 },
      { name: 'sd21-g5-triton', service: 'sd21', model: 'stabilityai/stable-diffusion-2-1', family: 'g5', instanceType: 'g5.xlarge', framework: 'triton', pricePerHour: 1.006, maxRpm: 90, latencySeconds: 0.68, maxReplicas: 6 },
    ],
  };
  edit(spec);
  return spec;
}

function render(input: FleetSpecInput) {
  return renderFleet(parseFleetSpec(input, 'test.yaml'), DEFAULT_RENDER_OPTIONS, 'test.yaml');
}

/** The problems a spec is refused with, as `path: message` lines. */
function refusal(input: FleetSpecInput): string[] {
  try {
    render(input);
  } catch (e) {
    if (e instanceof InputValidationError) return e.problems.map((p) => `${p.path}: ${p.message}`);
    throw e;
  }
  throw new Error('expected the spec to be refused');
}

const unitOf = (objects: KubernetesObject[], kind: string) => objects.find((o) => o.kind === kind)!;

describe('hwai render', () => {
  it('manifests/ is what `hwai render` writes for the default fleet (run `./bin/hwai.mjs render` when this fails)', () => {
    const files = renderSpecFile(DEFAULT_FLEET_PATH);
    expect(listFiles(MANIFESTS)).toEqual(files.map((f) => f.path).sort());
    for (const file of files) expect(readFileSync(join(MANIFESTS, file.path), 'utf8'), file.path).toBe(file.text);
  });

  it('gives every unit of the default fleet a Deployment asking for one device of its accelerator, on its own instance type', () => {
    const spec = loadFleetSpec();
    const manifests = renderFleet(spec, DEFAULT_RENDER_OPTIONS);
    expect(manifests.units.map((u) => u.unit.name)).toEqual(spec.units.map((u) => u.name));
    for (const { unit, deployment } of manifests.units) {
      const pod = (deployment.spec as { template: { spec: { nodeSelector: Record<string, string>; containers: Array<{ resources: { requests: Record<string, string> } }> } } }).template.spec;
      const resource = unit.family === 'inf2' || unit.family === 'trn1' ? 'aws.amazon.com/neuron' : 'nvidia.com/gpu';
      expect(pod.containers[0]!.resources.requests[resource]).toBe('1');
      expect(pod.nodeSelector['node.kubernetes.io/instance-type']).toBe(unit.instanceType);
    }
  });

  it('makes one NodePool per family, limited to the devices the units can use at their maximum', () => {
    const manifests = render(fleet());
    const pools = Object.fromEntries(manifests.nodePools.map((p) => [p.metadata.name, p.spec as { limits: Record<string, string>; template: { spec: { taints: unknown[] } } }]));
    expect(Object.keys(pools)).toEqual(['hwai-g5', 'hwai-inf2']);
    expect(pools['hwai-g5']!.limits).toEqual({ 'nvidia.com/gpu': '6' });
    expect(pools['hwai-inf2']!.limits).toEqual({ 'aws.amazon.com/neuron': '40' });
    expect(pools['hwai-inf2']!.template.spec.taints).toEqual([{ key: 'aws.amazon.com/neuron', value: 'true', effect: 'NoSchedule' }]);
    expect(manifests.nodeClasses.map((c) => c.metadata.name)).toEqual(['hwai-neuron', 'hwai-nvidia']);
  });

  it('lets a reserved unit launch into the capacity reservations tagged for the cluster', () => {
    const manifests = render(fleet((s) => void (s.units[1]!.capacityType = 'reserved')));
    const nvidia = manifests.nodeClasses.find((c) => c.metadata.name === 'hwai-nvidia')!.spec as Record<string, unknown>;
    const neuron = manifests.nodeClasses.find((c) => c.metadata.name === 'hwai-neuron')!.spec as Record<string, unknown>;
    expect(nvidia.capacityReservationSelectorTerms).toEqual([{ tags: { 'karpenter.sh/discovery': 'hwai' } }]);
    expect(neuron.capacityReservationSelectorTerms).toBeUndefined();
    const g5 = manifests.nodePools.find((p) => p.metadata.name === 'hwai-g5')!.spec as { template: { spec: { requirements: Array<{ key: string; values: string[] }> } } };
    expect(g5.template.spec.requirements.find((r) => r.key === 'karpenter.sh/capacity-type')!.values).toEqual(['reserved']);
  });

  it('scales each unit on its own RequestCount in CloudWatch, with missing data read as 0 and a fallback', () => {
    const { scaledObject } = render(fleet()).units[1]!;
    const spec = scaledObject.spec as { fallback: unknown; triggers: Array<{ type: string; metadata: Record<string, string> }> };
    expect(spec.fallback).toEqual({ failureThreshold: 3, replicas: 1 });
    expect(spec.triggers[0]!.metadata).toMatchObject({
      namespace: 'hw-agnostic-infer',
      metricName: 'RequestCount',
      dimensionName: 'service;unit',
      dimensionValue: 'sd21;sd21-g5-triton',
      metricStatPeriod: '60',
      ignoreNullValues: 'true',
      targetMetricValue: '90',
    });
  });

  it('binds a unit by target group name on disk, and by the ARN the stack resolves', () => {
    const input = fleet();
    expect(unitOf([render(input).units[0]!.targetGroupBinding], 'TargetGroupBinding').spec).toMatchObject({ targetGroupName: 'sd21-inf2-neuron', targetType: 'ip' });
    const resolved = renderFleet(parseFleetSpec(input, 'test.yaml'), { ...DEFAULT_RENDER_OPTIONS, targetGroupArn: (u) => `arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/${u.name}/abc` });
    expect(resolved.units[0]!.targetGroupBinding.spec).toEqual({
      targetGroupARN: 'arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/sd21-inf2-neuron/abc',
      targetType: 'ip',
      serviceRef: { name: 'sd21-inf2-neuron', port: 80 },
    });
  });
});

async function hwai(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const [out, err] = [new PassThrough(), new PassThrough()];
  const text = { out: '', err: '' };
  out.on('data', (c: Buffer) => (text.out += c.toString()));
  err.on('data', (c: Buffer) => (text.err += c.toString()));
  const code = await main(argv, { out, err });
  return { code, ...text };
}

describe('hwai render (the command)', () => {
  it('writes the manifests of a spec into --out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hwai-render-'));
    writeFileSync(join(dir, 'fleet.yaml'), stringify(fleet()));
    const { code, out } = await hwai('render', '--spec', join(dir, 'fleet.yaml'), '--out', join(dir, 'manifests'));
    expect(code).toBe(0);
    expect(out).toContain('6 files');
    expect(listFiles(join(dir, 'manifests'))).toEqual(['karpenter.yaml', 'keda.yaml', 'namespaces.yaml', 'rbac/hwai-controller.yaml', 'units/sd21-g5-triton.yaml', 'units/sd21-inf2-neuron.yaml']);
  });

  it('refuses a spec the stack cannot deploy with exit 2, naming the field, and writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hwai-render-'));
    writeFileSync(join(dir, 'fleet.yaml'), stringify(fleet((s) => void (s.units[1]!.instanceType = 'g5.huge'))));
    const { code, err } = await hwai('render', '--spec', join(dir, 'fleet.yaml'), '--out', join(dir, 'manifests'));
    expect(code).toBe(2);
    expect(err).toContain('units[1].instanceType: "g5.huge" is not an instance type of family g5');
    expect(existsSync(join(dir, 'manifests'))).toBe(false);
  });
});

describe('a spec the stack cannot deploy', () => {
  const sixUnits = (spec: FleetSpecInput) => {
    const base = spec.units[1]!;
    spec.units = [spec.units[0]!, ...[1, 2, 3, 4, 5].map((n) => ({ ...base, name: `sd21-g5-${n}` }))];
  };
  const cases: Array<{ name: string; edit: (spec: FleetSpecInput) => void; problem: string }> = [
    { name: 'fails with more than 5 units on one rule', edit: sixUnits, problem: 'services.sd21: an ALB forward action takes at most 5 target groups; this service has 6 units' },
    {
      name: 'fails with an instance type its family does not offer',
      edit: (s) => void (s.units[1]!.instanceType = 'inf2.xlarge'),
      problem: 'units[1].instanceType: "inf2.xlarge" is not an instance type of family g5; expected one of g5.xlarge, g5.2xlarge, g5.4xlarge, g5.8xlarge, g5.12xlarge, g5.16xlarge, g5.24xlarge, g5.48xlarge',
    },
    { name: 'fails with a family the stack has no node pool for', edit: (s) => void (s.units[1]!.family = 'p5'), problem: 'units[1].family: the stack deploys g5, g6, inf2, trn1; received "p5"' },
    { name: 'fails with a unit of a missing service', edit: (s) => void (s.units[1]!.service = 'sdxl'), problem: 'units[1].service: unknown service "sdxl"; expected one of: sd21' },
    { name: 'fails with a service no unit serves', edit: (s) => void (s.services.vit = { listenerRule: { lookup: 'hwai-vit-rule' } }), problem: 'services.vit: expected at least one unit for this service' },
    { name: 'fails with a service without a rule lookup', edit: (s) => void (s.services.sd21 = {}), problem: "services.sd21.listenerRule.lookup: required: the stack creates the service's rule and tags it hwai:rule = this value" },
    { name: 'fails with a framework its accelerator cannot run', edit: (s) => void (s.units[0]!.framework = 'cuda'), problem: 'units[0].framework: inf2 (aws.amazon.com/neuron) runs neuron; received "cuda"' },
    {
      name: 'fails with a target group name longer than ALB allows',
      edit: (s) => void (s.units[1]!.name = 'sd21-g5-triton-with-a-very-long-name'),
      problem: 'units[1].name: target group name "sd21-g5-triton-with-a-very-long-name" has 36 characters; ALB allows 32 (set units[1].targetGroup.name)',
    },
    { name: 'fails with a model no model-server task serves', edit: (s) => void (s.units[0]!.model = 'acme/unknown'), problem: 'units[0].model: no model-server task is known for "acme/unknown"' },
  ];
  it.each(cases)('$name', ({ edit, problem }) => {
    const problems = refusal(fleet(edit));
    expect(problems.some((p) => p.startsWith(problem)), problems.join('\n')).toBe(true);
  });
});
