import { KubeConfig, type User } from '@kubernetes/client-node';

/**
 * A KubeConfig for an EKS cluster reached from outside it (the controller Lambda): the API
 * endpoint and CA from DescribeCluster, and a bearer token asked of `token` on every request,
 * so a provider that caches and refreshes (EKS tokens live 15 minutes) is never outrun.
 *
 * TODO: the EKS token itself is `k8s-aws-v1.` + base64url of an STS GetCallerIdentity URL
 * presigned (SigV4, 60 s, header `x-k8s-aws-id: <cluster>`) with the Lambda's role. No
 * well-kept JavaScript library wraps this; build it on the AWS SDK's own presigner
 * (@smithy/signature-v4 with @aws-sdk/credential-providers) once it is a declared dependency,
 * rather than hand-rolling SigV4.
 */
export interface EksAccess {
  /** Cluster name, for the kubeconfig's names and errors. */
  name: string;
  /** `https://….eks.amazonaws.com` */
  endpoint: string;
  /** Base64 PEM, as DescribeCluster returns `certificateAuthority.data`. */
  certificateAuthorityData: string;
  token: () => Promise<string>;
}

export function eksKubeConfig(access: EksAccess): KubeConfig {
  const user = `hwai-controller@${access.name}`;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: access.name, server: access.endpoint, caData: access.certificateAuthorityData, skipTLSVerify: false }],
    users: [{ name: user }],
    contexts: [{ name: access.name, cluster: access.name, user }],
    currentContext: access.name,
  });
  kubeConfig.addAuthenticator({
    isAuthProvider: (u: User) => u.name === user,
    applyAuthentication: async (_u, opts) => {
      opts.headers = { ...opts.headers, Authorization: `Bearer ${await access.token()}` };
    },
  });
  return kubeConfig;
}
