// What the global setup hands to test files (vitest provide/inject), and the fault injector's
// control API: shared by the server side (global setup) and the test side (clients.ts).

/** A fault, applied to the next `times` calls that match (default 1). */
export type Fault =
  /** AWS: the service's own throttling error (Throttling, ThrottlingException, RequestLimitExceeded); Kubernetes: 429 TooManyRequests. */
  | { readonly kind: 'throttle' }
  /** An HTTP 5xx the service would send (500 internal error or 503 unavailable). */
  | { readonly kind: 'server-error'; readonly status?: 500 | 502 | 503 | 504 }
  /** Holds the call for `ms`, then forwards it unless the client has hung up (its timeout fired first). */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Closes the connection without an answer. */
  | { readonly kind: 'drop' };

/** Which calls a fault applies to. */
export type FaultTarget =
  /** AWS: an operation name (`ModifyRule`, `PutItem`), optionally narrowed to a signing name (`elasticloadbalancing`). */
  | { readonly target: 'aws'; readonly operation: string; readonly service?: string }
  /** Kubernetes: an HTTP method (or `WATCH`) and a regular expression on the path. */
  | { readonly target: 'kube'; readonly method?: string; readonly path: string };

export type FaultRule = FaultTarget & { readonly fault: Fault; readonly times?: number };

/** One call as the fault injector saw it, before any fault was applied. */
export interface RecordedCall {
  readonly target: 'aws' | 'kube';
  /** AWS: the signing name; Kubernetes: `kube`. */
  readonly service: string;
  /** AWS: the operation; Kubernetes: `METHOD /path` (method `WATCH` for watches). */
  readonly operation: string;
  /** AWS: the wire protocol the client spoke (`query`, `ec2`, `json`, `rpc-v2-cbor`). */
  readonly protocol?: string;
  /** The fault applied to this call, if any. */
  readonly fault?: Fault['kind'];
}

export interface HarnessContext {
  /** moto itself (tests normally go through `awsEndpoint`). */
  readonly motoUrl: string;
  /** The AWS endpoint for every SDK client: fault injector → EC2 stub → moto. */
  readonly awsEndpoint: string;
  /** kube-apiserver itself (tests normally go through `kubeEndpoint`). */
  readonly apiserverUrl: string;
  /** The Kubernetes endpoint: fault injector → kube-apiserver (same CA and tokens). */
  readonly kubeEndpoint: string;
  readonly kubeCaPem: string;
  readonly adminToken: string;
  readonly controllerToken: string;
  /** The fault injector's control API (http, loopback). */
  readonly controlUrl: string;
  readonly region: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    hwaiHarness: HarnessContext;
  }
}
