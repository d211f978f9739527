// The fault injector fails calls the way the real services fail them, so the unchanged SDK and
// Kubernetes client raise (and retry) exactly what production code will see; and it counts calls.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ListMetricsCommand } from '@aws-sdk/client-cloudwatch';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { DescribeLoadBalancersCommand, DescribeTargetGroupsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import { ListTopicsCommand } from '@aws-sdk/client-sns';
import { AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { awsClients, faults, freshNamespace, kubeConfig, kubeFailure, type AwsClientOptions } from '../harness/clients.ts';

beforeEach(() => faults.reset());

interface SdkError {
  name: string;
  code?: string;
  $fault?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

async function sdkFailure(call: Promise<unknown>): Promise<SdkError> {
  try {
    await call;
  } catch (error) {
    return error as SdkError;
  }
  throw new Error('expected the AWS call to fail, but it succeeded');
}

/** One read per service, through a client built with `options`. */
const reads: Record<string, { service: string; operation: string; send: (o: AwsClientOptions) => Promise<unknown> }> = {
  ELBv2: { service: 'elasticloadbalancing', operation: 'DescribeLoadBalancers', send: (o) => awsClients(o).elbv2.send(new DescribeLoadBalancersCommand({})) },
  EC2: { service: 'ec2', operation: 'DescribeInstances', send: (o) => awsClients(o).ec2.send(new DescribeInstancesCommand({})) },
  CloudWatch: { service: 'monitoring', operation: 'ListMetrics', send: (o) => awsClients(o).cloudwatch.send(new ListMetricsCommand({})) },
  SNS: { service: 'sns', operation: 'ListTopics', send: (o) => awsClients(o).sns.send(new ListTopicsCommand({})) },
  DynamoDB: { service: 'dynamodb', operation: 'ListTables', send: (o) => awsClients(o).dynamodb.send(new ListTablesCommand({})) },
};

describe('AWS faults reach the SDK as the real service would send them', () => {
  it.each([
    ['ELBv2', 'Throttling', 400],
    ['EC2', 'RequestLimitExceeded', 503],
    ['CloudWatch', 'Throttling', 400],
    ['SNS', 'Throttling', 400],
    ['DynamoDB', 'ThrottlingException', 400],
  ] as const)('%s throttling surfaces as %s once the SDK retries are spent', async (name, errorName, status) => {
    // Prepare: the service throttles more calls than the client will attempt.
    const read = reads[name]!;
    await faults.aws({ operation: read.operation, fault: { kind: 'throttle' }, times: 5 });

    // Act
    const error = await sdkFailure(read.send({ maxAttempts: 2 }));

    // Assess: the SDK retried (it only retries a 400 it classifies as a throttle), then gave up
    // with the service's own error code.
    expect(error).toMatchObject({ name: errorName, $metadata: { httpStatusCode: status, attempts: 2 } });
    expect((await faults.counts())[`${read.service}:${read.operation}`]).toBe(2);
  });

  it('a throttle shorter than the retry budget is absorbed by the SDK', async () => {
    await faults.aws({ operation: 'DescribeLoadBalancers', fault: { kind: 'throttle' }, times: 1 });

    const result = (await reads.ELBv2!.send({})) as { $metadata: { attempts?: number } };

    expect(result.$metadata.attempts).toBe(2);
  });

  it.each([
    ['ELBv2', 503, 'ServiceUnavailable'],
    ['ELBv2', 500, 'InternalFailure'],
    ['EC2', 500, 'InternalError'],
    ['DynamoDB', 500, 'InternalServerError'],
  ] as const)('%s answering %i surfaces as a server fault %s', async (name, status, errorName) => {
    const read = reads[name]!;
    await faults.aws({ operation: read.operation, fault: { kind: 'server-error', status } });

    const error = await sdkFailure(read.send({ maxAttempts: 1 }));

    expect(error).toMatchObject({ name: errorName, $fault: 'server', $metadata: { httpStatusCode: status } });
  });

  it('a call delayed past the client timeout fails with TimeoutError', async () => {
    // Prepare: ELBv2 would answer after 10 minutes, longer than this test may run; the client
    // waits 300 ms. The caller gets its time back if the test ends at all, however busy the machine.
    await faults.aws({ operation: 'DescribeTargetGroups', fault: { kind: 'delay', ms: 600_000 } });

    // Act
    const error = await sdkFailure(awsClients({ maxAttempts: 1, requestTimeoutMs: 300 }).elbv2.send(new DescribeTargetGroupsCommand({})));

    // Assess
    expect(error.name).toBe('TimeoutError');
  });

  it('a dropped connection fails as a network error, and the SDK retries it as transient', async () => {
    await faults.aws({ operation: 'DescribeLoadBalancers', fault: { kind: 'drop' }, times: 1 });
    const error = await sdkFailure(reads.ELBv2!.send({ maxAttempts: 1 }));
    expect(error.code).toBe('ECONNRESET');

    await faults.aws({ operation: 'DescribeLoadBalancers', fault: { kind: 'drop' }, times: 1 });
    const result = (await reads.ELBv2!.send({})) as { $metadata: { attempts?: number } };
    expect(result.$metadata.attempts).toBe(2);
  });
});

describe('Kubernetes faults reach the client as the apiserver would send them', () => {
  let namespace: string;
  beforeAll(async () => {
    namespace = await freshNamespace('faults');
    await kubeConfig('admin').makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace,
      body: { metadata: { name: 'sd21-g5-cuda' }, spec: { selector: { matchLabels: { app: 'x' } }, template: { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'x', image: 'x' }] } } } },
    });
  });

  it('throttles with 429 TooManyRequests', async () => {
    await faults.kube({ method: 'GET', path: /\/pods$/, fault: { kind: 'throttle' } });

    const status = await kubeFailure(kubeConfig('controller').makeApiClient(CoreV1Api).listNamespacedPod({ namespace }));

    expect(status).toMatchObject({ code: 429, reason: 'TooManyRequests' });
  });

  it('answers 503 ServiceUnavailable', async () => {
    await faults.kube({ path: /\/apis\/karpenter\.sh\/v1\/nodeclaims$/, fault: { kind: 'server-error', status: 503 } });

    const status = await kubeFailure(kubeConfig('controller').makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: 'karpenter.sh', version: 'v1', plural: 'nodeclaims' }));

    expect(status).toMatchObject({ code: 503, reason: 'ServiceUnavailable' });
  });

  it('drops the connection', async () => {
    await faults.kube({ method: 'GET', path: /\/deployments\/sd21-g5-cuda$/, fault: { kind: 'drop' } });

    const call = kubeConfig('controller').makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace, name: 'sd21-g5-cuda' });

    await expect(call).rejects.toThrow(/fetch failed|socket hang up|other side closed/);
  });

  it('delays a call, which then succeeds', async () => {
    await faults.kube({ method: 'GET', path: /\/deployments\/sd21-g5-cuda$/, fault: { kind: 'delay', ms: 700 } });

    const started = Date.now();
    const deployment = await kubeConfig('controller').makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace, name: 'sd21-g5-cuda' });

    expect(deployment.metadata?.name).toBe('sd21-g5-cuda');
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
  });
});

describe('call counts', () => {
  it('counts reads and writes per operation, so a test can assert what a tick cost', async () => {
    // Act: two AWS reads and one Kubernetes list, as a tick's observe step might.
    const { elbv2 } = awsClients();
    await elbv2.send(new DescribeLoadBalancersCommand({}));
    await elbv2.send(new DescribeTargetGroupsCommand({}));
    await kubeConfig('controller').makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: 'karpenter.sh', version: 'v1', plural: 'nodepools' });

    // Assess
    expect(await faults.counts()).toEqual({
      'elasticloadbalancing:DescribeLoadBalancers': 1,
      'elasticloadbalancing:DescribeTargetGroups': 1,
      'kube:GET /apis/karpenter.sh/v1/nodepools': 1,
    });
  });
});

describe('stopping the fault injector', () => {
  it('leaves nothing running once a held call’s client has hung up, so its process exits', async () => {
    // Prepare: a process of its own runs an injector that holds a call for 10 minutes (longer
    // than this test may take); the client gives up; the injector is stopped.
    const dir = await mkdtemp(join(tmpdir(), 'hwai-injector-'));
    const script = `
      const { FaultInjector } = await import(${JSON.stringify(pathToFileURL(join(process.cwd(), 'test/harness/fault-injector.ts')).href)});
      const { makePki } = await import(${JSON.stringify(pathToFileURL(join(process.cwd(), 'test/harness/kube.ts')).href)});
      const injector = await new FaultInjector('http://127.0.0.1:9', 'https://127.0.0.1:9', await makePki(${JSON.stringify(dir)})).start();
      await fetch(injector.controlUrl + '/faults', { method: 'POST', body: JSON.stringify({ target: 'aws', operation: 'GET /held', fault: { kind: 'delay', ms: 600000 } }) });
      const client = new AbortController();
      const call = fetch(injector.awsEndpoint + '/held', { signal: client.signal }).then(() => 'answered', () => 'hung up');
      while ((await (await fetch(injector.controlUrl + '/calls')).json()).length === 0) await new Promise((r) => setTimeout(r, 50));
      client.abort();
      console.log(await call);
      await injector.stop();
      console.log('stopped');
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Also when the test times out: the child must not outlive it.
    onTestFinished(async () => {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));

    // Act: the process ends by itself (a hold outliving its client would keep it for 10 minutes,
    // and this test would time out).
    const code = await new Promise((resolve) => child.once('exit', resolve));

    // Assess
    expect(code, output).toBe(0);
    expect(output).toBe('hung up\nstopped\n');
  });
});
