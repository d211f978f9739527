// The fault injector: proxies in front of moto and kube-apiserver that count every call per
// operation and, when a test asks, fail chosen calls the way the real service fails them
// (throttle, 5xx, delay past a timeout, dropped connection). The AWS side also hosts the stub
// of the EC2 operations moto lacks, so one endpoint serves every SDK client.
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ec2Response, identifyAwsCall, serverErrorResponse, throttleResponse, type AwsCall, type AwsErrorResponse } from './aws-protocol.ts';
import type { Fault, FaultRule, RecordedCall } from './contract.ts';
import type { Tls } from './kube.ts';

/** The EC2 operations moto lacks, answered by the stub, with their empty answers. */
const EC2_STUB_DEFAULTS: Record<string, Record<string, unknown>> = {
  GetSpotPlacementScores: { SpotPlacementScores: [] },
  DescribeCapacityReservations: { CapacityReservations: [] },
};

interface ActiveRule {
  readonly rule: FaultRule;
  readonly pathPattern?: RegExp;
  remaining: number;
}

export interface FaultInjectorEndpoints {
  readonly awsEndpoint: string;
  readonly kubeEndpoint: string;
  readonly controlUrl: string;
  stop(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, answer: AwsErrorResponse): void {
  res.writeHead(answer.status, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) });
  res.end(answer.body);
}

function kubeStatus(res: ServerResponse, code: number, reason: string, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  res.writeHead(code, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Holds a call for `ms`, or until its client hangs up (the caller then forwards nothing). A hold
 * that outlived its client would keep the test process alive after the harness stopped.
 */
function hold(res: ServerResponse, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const release = () => {
      clearTimeout(timer);
      res.off('close', release);
      resolve();
    };
    const timer = setTimeout(release, ms);
    res.once('close', release);
  });
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

export class FaultInjector {
  private rules: ActiveRule[] = [];
  private calls: RecordedCall[] = [];
  private ec2StubAnswers: Record<string, Record<string, unknown>> = { ...EC2_STUB_DEFAULTS };

  constructor(
    private readonly motoUrl: string,
    private readonly apiserverUrl: string,
    private readonly tls: Tls,
  ) {}

  addRule(rule: FaultRule): void {
    this.rules.push({ rule, remaining: rule.times ?? 1, ...(rule.target === 'kube' ? { pathPattern: new RegExp(rule.path) } : {}) });
  }

  reset(): void {
    this.rules = [];
    this.calls = [];
    this.ec2StubAnswers = { ...EC2_STUB_DEFAULTS };
  }

  /** The first live rule matching the call, consumed by one. */
  private takeFault(match: (rule: ActiveRule) => boolean): Fault | undefined {
    const active = this.rules.find((r) => r.remaining > 0 && match(r));
    if (!active) return undefined;
    active.remaining -= 1;
    return active.rule.fault;
  }

  async start(): Promise<FaultInjectorEndpoints> {
    const aws = createHttpServer((req, res) => void this.handleAws(req, res).catch((e) => this.fail(res, e)));
    const kube = createHttpsServer({ cert: this.tls.certPem, key: this.tls.keyPem }, (req, res) => void this.handleKube(req, res).catch((e) => this.fail(res, e)));
    const control = createHttpServer((req, res) => void this.handleControl(req, res).catch((e) => this.fail(res, e)));
    const [awsPort, kubePort, controlPort] = [await listen(aws), await listen(kube), await listen(control)];
    const close = (s: Server) => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); });
    return {
      awsEndpoint: `http://127.0.0.1:${awsPort}`,
      kubeEndpoint: `https://127.0.0.1:${kubePort}`,
      controlUrl: `http://127.0.0.1:${controlPort}`,
      stop: async () => { await Promise.all([close(aws), close(kube), close(control)]); },
    };
  }

  private fail(res: ServerResponse, error: unknown): void {
    process.stderr.write(`[harness] fault injector: ${String(error)}\n`);
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`fault injector: ${String(error)}`);
  }

  private async handleAws(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const call = identifyAwsCall(req.method ?? 'GET', req.url ?? '/', req.headers, body);
    const fault = this.takeFault(({ rule }) => rule.target === 'aws' && rule.operation === call.operation && (rule.service === undefined || rule.service === call.service));
    this.calls.push({ target: 'aws', service: call.service, operation: call.operation, protocol: call.protocol, ...(fault ? { fault: fault.kind } : {}) });
    if (fault) {
      switch (fault.kind) {
        case 'throttle': return send(res, throttleResponse(call));
        case 'server-error': return send(res, serverErrorResponse(call, fault.status ?? 500));
        case 'drop': req.socket.destroy(); return;
        case 'delay': await hold(res, fault.ms); break;
      }
    }
    if (res.destroyed) return;
    const stubbed = this.ec2Stub(call);
    if (stubbed) return send(res, stubbed);
    this.forward(req, res, body, new URL(req.url ?? '/', this.motoUrl), httpRequest, {});
  }

  private ec2Stub(call: AwsCall): AwsErrorResponse | undefined {
    if (call.service !== 'ec2') return undefined;
    const answer = this.ec2StubAnswers[call.operation];
    if (!answer) return undefined;
    if (call.operation === 'DescribeCapacityReservations') {
      const ids = [...call.params.entries()].filter(([k]) => k.startsWith('CapacityReservationId.')).map(([, v]) => v);
      if (ids.length > 0) {
        const all = (answer.CapacityReservations ?? []) as Array<{ CapacityReservationId?: string }>;
        return ec2Response(call.operation, { CapacityReservations: all.filter((c) => ids.includes(c.CapacityReservationId ?? '')) });
      }
    }
    return ec2Response(call.operation, answer);
  }

  private async handleKube(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.apiserverUrl);
    const watch = ['true', '1'].includes(url.searchParams.get('watch') ?? '');
    const method = watch ? 'WATCH' : (req.method ?? 'GET');
    const operation = `${method} ${url.pathname}`;
    const fault = this.takeFault(({ rule, pathPattern }) =>
      rule.target === 'kube' && (rule.method === undefined || rule.method.toUpperCase() === method) && pathPattern !== undefined && pathPattern.test(url.pathname));
    this.calls.push({ target: 'kube', service: 'kube', operation, ...(fault ? { fault: fault.kind } : {}) });
    const body = await readBody(req);
    if (fault) {
      switch (fault.kind) {
        case 'throttle': return kubeStatus(res, 429, 'TooManyRequests', 'Too many requests, please try again later.', { 'retry-after': '1' });
        case 'server-error': {
          const status = fault.status ?? 500;
          return kubeStatus(res, status, status === 503 ? 'ServiceUnavailable' : 'InternalError', 'Internal error occurred: injected by the hwai fault injector');
        }
        case 'drop': req.socket.destroy(); return;
        case 'delay': await hold(res, fault.ms); break;
      }
    }
    if (res.destroyed) return;
    this.forward(req, res, body, url, httpsRequest, { ca: this.tls.caPem });
  }

  private forward(req: IncomingMessage, res: ServerResponse, body: Buffer, target: URL, send: typeof httpRequest, tls: { ca?: string }): void {
    const headers = { ...req.headers, host: target.host, 'content-length': String(body.length) };
    delete headers['transfer-encoding'];
    const upstream = send(target, { method: req.method, headers, ...tls }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', (error) => this.fail(res, error));
    // A watch ends when the client goes away.
    res.on('close', () => upstream.destroy());
    upstream.end(body);
  }

  private async handleControl(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = (await readBody(req)).toString('utf8');
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'POST' && path === '/faults') {
      this.addRule(JSON.parse(body) as FaultRule);
      return json(200, { ok: true });
    }
    if (req.method === 'GET' && path === '/calls') return json(200, this.calls);
    if (req.method === 'POST' && path === '/reset') {
      this.reset();
      return json(200, { ok: true });
    }
    const stub = /^\/ec2-stub\/(\w+)$/.exec(path);
    if (req.method === 'PUT' && stub?.[1] && stub[1] in EC2_STUB_DEFAULTS) {
      this.ec2StubAnswers[stub[1]] = JSON.parse(body) as Record<string, unknown>;
      return json(200, { ok: true });
    }
    json(404, { error: `no control route ${req.method} ${path}` });
  }
}
