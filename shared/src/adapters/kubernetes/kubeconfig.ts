import { KubeConfig, type User } from '@kubernetes/client-node';
import { EksTokenProvider, type EksTokenProviderOptions } from '../aws/eks-token.ts';

/**
 * A KubeConfig for an EKS cluster reached from outside it (the controller Lambda): the API
 * endpoint and CA as the stack passes them (DescribeCluster's values), and a bearer token asked
 * of `token` on every request, so a provider that caches and refreshes (EKS tokens live 15
 * minutes; see ../aws/eks-token.ts) is never outrun.
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

/**
 * Access to `cluster` (name, endpoint and CA as the stack passes them in HWAI_CLUSTER_NAME,
 * HWAI_CLUSTER_ENDPOINT, HWAI_CLUSTER_CA) with a cached, self-refreshing EKS token signed by the
 * SDK's credential chain in `region` (Lambda's AWS_REGION).
 */
export function eksAccess(cluster: Omit<EksAccess, 'token'>, region: string, token: Partial<Pick<EksTokenProviderOptions, 'credentials' | 'clock' | 'refreshAfterMs'>> = {}): EksAccess {
  const provider = new EksTokenProvider({ clusterName: cluster.name, region, ...token });
  return { ...cluster, token: () => provider.token() };
}
