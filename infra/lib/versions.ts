/**
 * What the stack installs into the cluster, pinned. Upgrade one at a time: the CRDs in
 * ../shared/crds (that the tests validate the manifests against) must match these charts.
 */
export const KUBERNETES_VERSION = '1.35';

export const CHARTS = {
  karpenter: { chart: 'karpenter', repository: 'oci://public.ecr.aws/karpenter/karpenter', version: '1.8.1', namespace: 'kube-system' },
  keda: { chart: 'keda', repository: 'https://kedacore.github.io/charts', version: '2.18.1', namespace: 'keda' },
  loadBalancerController: { chart: 'aws-load-balancer-controller', repository: 'https://aws.github.io/eks-charts', version: '3.2.2', namespace: 'kube-system' },
  nvidiaDevicePlugin: { chart: 'nvidia-device-plugin', repository: 'https://nvidia.github.io/k8s-device-plugin', version: '0.17.1', namespace: 'kube-system' },
  neuron: { chart: 'neuron-helm-chart', repository: 'oci://public.ecr.aws/neuron/neuron-helm-chart', version: '1.1.2', namespace: 'kube-system' },
} as const;

/** Service accounts the charts create, which EKS Pod Identity associates with IAM roles. */
export const SERVICE_ACCOUNTS = {
  karpenter: { namespace: CHARTS.karpenter.namespace, name: 'karpenter' },
  keda: { namespace: CHARTS.keda.namespace, name: 'keda-operator' },
  loadBalancerController: { namespace: CHARTS.loadBalancerController.namespace, name: 'aws-load-balancer-controller' },
} as const;
