import { AwsQueryProtocol } from '@aws-sdk/core/protocols';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { SNSClient } from '@aws-sdk/client-sns';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { HarnessContext } from '../../../test/harness/contract.ts';
import { kubeConfigFor as kubeConfig } from '../../../test/harness/kube.ts';

/**
 * The twin's two sides of the harness. The world writes as the things it stands for (the
 * model servers' metrics, the kubelet, the scheduler, Karpenter, the Load Balancer Controller's
 * target registration): straight to moto and to the apiserver as cluster admin. The controller
 * reads and writes as in production: its own SDK clients from its environment, through the
 * fault injector (which also answers the EC2 calls moto lacks), and the apiserver as the
 * restricted identity of manifests/rbac.
 */

export type TwinEndpoints = HarnessContext;

/** moto takes any key; these are not secrets. */
const EMULATOR_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

export interface TwinClients {
  endpoints: TwinEndpoints;
  aws: { elbv2: ElasticLoadBalancingV2Client; cloudwatch: CloudWatchClient; ec2: EC2Client; dynamodb: DynamoDBClient; sns: SNSClient };
  kube: { core: CoreV1Api; apps: AppsV1Api; custom: CustomObjectsApi };
  controllerKubeConfig: KubeConfig;
}

export function twinClients(endpoints: TwinEndpoints): TwinClients {
  const config = { endpoint: endpoints.motoUrl, region: endpoints.region, credentials: EMULATOR_CREDENTIALS };
  const admin = kubeConfig(endpoints.apiserverUrl, endpoints.kubeCaPem, endpoints.adminToken, 'twin-world');
  return {
    endpoints,
    aws: {
      elbv2: new ElasticLoadBalancingV2Client(config),
      // moto speaks CloudWatch's awsQuery protocol for sure (see test/harness/clients.ts).
      cloudwatch: new CloudWatchClient({ ...config, protocol: AwsQueryProtocol }),
      ec2: new EC2Client(config),
      dynamodb: new DynamoDBClient(config),
      sns: new SNSClient(config),
    },
    kube: { core: admin.makeApiClient(CoreV1Api), apps: admin.makeApiClient(AppsV1Api), custom: admin.makeApiClient(CustomObjectsApi) },
    controllerKubeConfig: kubeConfig(endpoints.kubeEndpoint, endpoints.kubeCaPem, endpoints.controllerToken, 'hwai-controller'),
  };
}

/**
 * What Lambda puts in a function's process environment and the controller's SDK clients read
 * there: the region and the credentials, here the harness's region and the emulator's keys.
 * Whatever else was there (a profile, a session) is not sent to the emulator.
 */
export function lambdaProcessEnvironment(region: string, env: NodeJS.ProcessEnv = process.env): void {
  env.AWS_REGION = region;
  env.AWS_ACCESS_KEY_ID = EMULATOR_CREDENTIALS.accessKeyId;
  env.AWS_SECRET_ACCESS_KEY = EMULATOR_CREDENTIALS.secretAccessKey;
  delete env.AWS_SESSION_TOKEN;
  delete env.AWS_PROFILE;
}
