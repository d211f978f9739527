import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { RequestOptions } from 'node:https';
import { DEFAULT_REFRESH_AFTER_MS, EksTokenProvider, eksToken, TOKEN_PREFIX } from '../../shared/src/adapters/aws/eks-token.ts';
import { eksAccess, eksKubeConfig } from '../../shared/src/adapters/kubernetes/kubeconfig.ts';

// The EKS bearer token against its published format (aws-iam-authenticator's pkg/token, which
// the EKS apiserver runs): what the verifier checks before it calls STS, and the SigV4
// signature recomputed from the SigV4 specification, independently of the signer under test.

const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const SIGNED_AT = new Date(Date.UTC(2030, 0, 2, 3, 4, 5));
/** The query parameters the authenticator accepts; any other fails the token. */
const ALLOWED = new Set(['action', 'version', 'x-amz-algorithm', 'x-amz-credential', 'x-amz-date', 'x-amz-expires', 'x-amz-security-token', 'x-amz-signature', 'x-amz-signedheaders']);

function decode(token: string): URL {
  expect(token.startsWith(TOKEN_PREFIX)).toBe(true);
  const body = token.slice(TOKEN_PREFIX.length);
  // base64url without padding (Go's base64.RawURLEncoding).
  expect(body).toMatch(/^[A-Za-z0-9_-]+$/);
  return new URL(Buffer.from(body, 'base64url').toString('utf8'));
}

/** SigV4 of a presigned GET, from the specification: the signature the URL must carry. */
function expectedSignature(url: URL, headers: Record<string, string>, secret: string): string {
  const q = url.searchParams;
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const canonicalQuery = [...q.entries()].filter(([k]) => k !== 'X-Amz-Signature').map(([k, v]) => `${enc(k)}=${enc(v)}`).sort().join('&');
  const signed = q.get('X-Amz-SignedHeaders')!.split(';');
  const canonicalHeaders = signed.map((h) => `${h}:${headers[h]!.trim()}\n`).join('');
  const emptyPayload = createHash('sha256').update('').digest('hex');
  const canonicalRequest = ['GET', url.pathname, canonicalQuery, canonicalHeaders, signed.join(';'), emptyPayload].join('\n');
  const [, date, region, service, terminator] = q.get('X-Amz-Credential')!.split('/');
  const stringToSign = ['AWS4-HMAC-SHA256', q.get('X-Amz-Date'), [date, region, service, terminator].join('/'), createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
  const key = [date!, region!, service!, terminator!].reduce<Buffer | string>((k, part) => hmac(k, part), `AWS4${secret}`);
  return createHmac('sha256', key).update(stringToSign).digest('hex');
}

describe('eksToken', () => {
  it('is a presigned STS GetCallerIdentity URL in the form the EKS authenticator accepts', async () => {
    // Act
    const token = await eksToken({ clusterName: 'hwai-prod', region: 'eu-west-1', credentials: CREDENTIALS, signingDate: SIGNED_AT });

    // Assess: what aws-iam-authenticator's Verify checks, in its order.
    expect(token.length).toBeLessThanOrEqual(4096);
    const url = decode(token);
    expect(url.protocol).toBe('https:');
    expect(url.host).toBe('sts.eu-west-1.amazonaws.com');
    expect(url.pathname).toBe('/');
    const q = url.searchParams;
    for (const key of q.keys()) expect(ALLOWED.has(key.toLowerCase()), `query parameter ${key}`).toBe(true);
    expect(new Set(q.keys()).size).toBe([...q.keys()].length);
    expect(q.get('Action')).toBe('GetCallerIdentity');
    expect(q.get('Version')).toBe('2011-06-15');
    expect(q.get('X-Amz-SignedHeaders')!.split(';')).toEqual(['host', 'x-k8s-aws-id']);
    expect(q.get('X-Amz-Expires')).toBe('60');
    expect(q.get('X-Amz-Date')).toBe('20300102T030405Z');
    expect(q.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(q.get('X-Amz-Credential')).toBe('AKIDEXAMPLE/20300102/eu-west-1/sts/aws4_request');
    expect(q.get('X-Amz-Security-Token')).toBeNull();
    // The signature covers the cluster's name: a token for another cluster does not verify.
    const headers = { host: 'sts.eu-west-1.amazonaws.com', 'x-k8s-aws-id': 'hwai-prod' };
    expect(q.get('X-Amz-Signature')).toBe(expectedSignature(url, headers, CREDENTIALS.secretAccessKey));
    expect(q.get('X-Amz-Signature')).not.toBe(expectedSignature(url, { ...headers, 'x-k8s-aws-id': 'other' }, CREDENTIALS.secretAccessKey));
  });

  it('carries the session token of temporary credentials (a Lambda role’s)', async () => {
    const sessionToken = 'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+x/y=z';

    const url = decode(await eksToken({ clusterName: 'c', region: 'us-east-1', credentials: { ...CREDENTIALS, sessionToken }, signingDate: SIGNED_AT }));

    expect(url.searchParams.get('X-Amz-Security-Token')).toBe(sessionToken);
    expect(url.searchParams.get('X-Amz-Signature')).toBe(expectedSignature(url, { host: 'sts.us-east-1.amazonaws.com', 'x-k8s-aws-id': 'c' }, CREDENTIALS.secretAccessKey));
  });

  it('is the same for the same clock and credentials, and differs by cluster and time', async () => {
    const make = (clusterName: string, signingDate: Date) => eksToken({ clusterName, region: 'us-east-1', credentials: CREDENTIALS, signingDate });

    const [a, b, otherCluster, later] = await Promise.all([make('hwai', SIGNED_AT), make('hwai', SIGNED_AT), make('hwai-2', SIGNED_AT), make('hwai', new Date(SIGNED_AT.getTime() + 1000))]);

    expect(a).toBe(b);
    expect(new Set([a, otherCluster, later]).size).toBe(3);
  });
});

describe('EksTokenProvider', () => {
  function provider() {
    let now = SIGNED_AT.getTime();
    let credentialReads = 0;
    const tokens = new EksTokenProvider({
      clusterName: 'hwai',
      region: 'us-east-1',
      credentials: async () => (credentialReads++, CREDENTIALS),
      clock: { now: () => now },
    });
    return { tokens, advance: (ms: number) => (now += ms), reads: () => credentialReads };
  }
  const signedAt = (token: string) => decode(token).searchParams.get('X-Amz-Date');

  it('hands out one cached token until it is 10 minutes old, then a freshly signed one', async () => {
    // Prepare
    const { tokens, advance, reads } = provider();

    // Act: two requests at once, one 9 minutes later, one at 10 minutes.
    const [first, concurrent] = await Promise.all([tokens.token(), tokens.token()]);
    advance(DEFAULT_REFRESH_AFTER_MS - 60_000);
    const cached = await tokens.token();
    advance(60_000);
    const refreshed = await tokens.token();

    // Assess: one signing for the first three, a new X-Amz-Date after, well inside 15 minutes.
    expect(concurrent).toBe(first);
    expect(cached).toBe(first);
    expect(reads()).toBe(2);
    expect(signedAt(first)).toBe('20300102T030405Z');
    expect(signedAt(refreshed)).toBe('20300102T031405Z');
  });

  it('does not keep a failed signing: the next request tries again', async () => {
    let fail = true;
    const tokens = new EksTokenProvider({
      clusterName: 'hwai',
      region: 'us-east-1',
      credentials: async () => {
        if (fail) throw new Error('CredentialsProviderError: no credentials in the environment');
        return CREDENTIALS;
      },
      clock: { now: () => SIGNED_AT.getTime() },
    });

    await expect(tokens.token()).rejects.toThrow(/no credentials/);
    fail = false;
    expect(decode(await tokens.token()).searchParams.get('Action')).toBe('GetCallerIdentity');
  });

  it.each([
    [{ clusterName: '', region: 'us-east-1' }, /cluster name ""/],
    [{ clusterName: 'hwai', region: 'us-east-1', refreshAfterMs: 15 * 60_000 }, /refreshAfterMs 900000/],
  ])('refuses a configuration it cannot serve: %j', (options, message) => {
    expect(() => new EksTokenProvider({ ...options, credentials: CREDENTIALS })).toThrow(message);
  });
});

describe('eksKubeConfig(eksAccess(...))', () => {
  it('sends the cluster’s EKS token as the bearer of every request to the stack’s endpoint', async () => {
    // Prepare: the cluster as the stack passes it (HWAI_CLUSTER_*), fixed credentials and clock.
    const ca = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');
    const access = eksAccess({ name: 'hwai-prod', endpoint: 'https://ABC.gr7.eu-west-1.eks.amazonaws.com', certificateAuthorityData: ca }, 'eu-west-1', {
      credentials: CREDENTIALS,
      clock: { now: () => SIGNED_AT.getTime() },
    });
    const kubeConfig = eksKubeConfig(access);

    // Act
    const request: RequestOptions = {};
    await kubeConfig.applyToHTTPSOptions(request);

    // Assess
    expect(kubeConfig.getCurrentCluster()).toMatchObject({ server: 'https://ABC.gr7.eu-west-1.eks.amazonaws.com', caData: ca, skipTLSVerify: false });
    const bearer = String((request.headers as Record<string, string>)['Authorization']);
    expect(bearer.startsWith(`Bearer ${TOKEN_PREFIX}`)).toBe(true);
    const url = decode(bearer.slice('Bearer '.length));
    expect(url.host).toBe('sts.eu-west-1.amazonaws.com');
    expect(url.searchParams.get('X-Amz-Signature')).toBe(expectedSignature(url, { host: 'sts.eu-west-1.amazonaws.com', 'x-k8s-aws-id': 'hwai-prod' }, CREDENTIALS.secretAccessKey));
  });
});
