import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4, type SignatureV4Init } from '@smithy/signature-v4';
import type { Clock } from '../../reconcile/ports.ts';

/**
 * The bearer token EKS accepts from an IAM principal (the format of aws-iam-authenticator, which
 * EKS runs): `k8s-aws-v1.` + base64url without padding of an STS GetCallerIdentity URL,
 * presigned with SigV4 over the header `x-k8s-aws-id: <cluster name>`. The apiserver's
 * authenticator checks the host is STS, Action=GetCallerIdentity, the cluster header is among
 * the signed headers, X-Amz-Expires is 0–900 and only the presign parameters are present, then
 * calls the URL itself to learn who signed it. STS honours such a URL for 15 minutes from its
 * X-Amz-Date whatever X-Amz-Expires says; 60 is what aws-iam-authenticator and `aws eks
 * get-token` send.
 *
 * Signed with the SDK's own SigV4 signer and the SDK's credential chain (in Lambda: the
 * function role's keys from the environment), never a hand-rolled signature.
 */

export const TOKEN_PREFIX = 'k8s-aws-v1.';
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
export const PRESIGN_EXPIRES_SECONDS = 60;
/** STS honours the URL 15 minutes from its X-Amz-Date. */
export const TOKEN_LIFETIME_MS = 15 * 60_000;
/** Refreshed well inside its life, so a token handed out is never about to expire. */
export const DEFAULT_REFRESH_AFTER_MS = 10 * 60_000;

export type Credentials = SignatureV4Init['credentials'];

export interface EksTokenRequest {
  clusterName: string;
  region: string;
  credentials: Credentials;
  signingDate: Date;
}

/** One token for `clusterName`, signed at `signingDate` (same inputs, same token). */
export async function eksToken(request: EksTokenRequest): Promise<string> {
  const hostname = `sts.${request.region}.amazonaws.com`;
  const signer = new SignatureV4({ service: 'sts', region: request.region, credentials: request.credentials, sha256: Sha256 });
  const presigned = await signer.presign(
    new HttpRequest({
      method: 'GET',
      protocol: 'https:',
      hostname,
      path: '/',
      query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
      // x-k8s-aws-id is not an x-amz- header, so the presigner keeps it a header and signs it.
      headers: { host: hostname, [CLUSTER_ID_HEADER]: request.clusterName },
    }),
    { expiresIn: PRESIGN_EXPIRES_SECONDS, signingDate: request.signingDate },
  );
  const query = Object.entries(presigned.query ?? {})
    .flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x] as const) : v === null ? [] : [[k, v] as const]))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`)
    .join('&');
  const url = `https://${hostname}${presigned.path}?${query}`;
  return TOKEN_PREFIX + Buffer.from(url, 'utf8').toString('base64url');
}

function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export interface EksTokenProviderOptions {
  clusterName: string;
  region: string;
  /** Default: the SDK's credential chain (in Lambda, the function role). */
  credentials?: Credentials;
  clock?: Clock;
  refreshAfterMs?: number;
}

/**
 * A cached token, made again once it is `refreshAfterMs` old (default 10 minutes of its 15), so
 * the kubeconfig can ask for it on every request. Concurrent first requests share one signing.
 */
export class EksTokenProvider {
  private cached: { token: string; at: number } | null = null;
  private pending: Promise<string> | null = null;
  private readonly credentials: Credentials;
  private readonly clock: Clock;
  private readonly refreshAfterMs: number;

  constructor(private readonly options: EksTokenProviderOptions) {
    if (!options.clusterName || !options.region) {
      throw new Error(`EKS token: cluster name ${JSON.stringify(options.clusterName)} and region ${JSON.stringify(options.region)}: expected both`);
    }
    this.credentials = options.credentials ?? defaultProvider();
    this.clock = options.clock ?? { now: () => Date.now() };
    this.refreshAfterMs = options.refreshAfterMs ?? DEFAULT_REFRESH_AFTER_MS;
    if (!(this.refreshAfterMs > 0 && this.refreshAfterMs < TOKEN_LIFETIME_MS)) {
      throw new RangeError(`EKS token: refreshAfterMs ${this.refreshAfterMs}: expected more than 0 and less than the token's ${TOKEN_LIFETIME_MS} ms`);
    }
  }

  token(): Promise<string> {
    const now = this.clock.now();
    if (this.cached && now - this.cached.at < this.refreshAfterMs && now >= this.cached.at) return Promise.resolve(this.cached.token);
    this.pending ??= eksToken({ clusterName: this.options.clusterName, region: this.options.region, credentials: this.credentials, signingDate: new Date(now) })
      .then((token) => {
        this.cached = { token, at: now };
        return token;
      })
      .finally(() => {
        this.pending = null;
      });
    return this.pending;
  }
}
