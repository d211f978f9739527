import { CloudWatchClient, type CloudWatchClientConfig } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { SNSClient } from '@aws-sdk/client-sns';

/**
 * The SDK clients of the controller, built once per Lambda container. A per-attempt timeout that
 * throws (this SDK only warns unless told otherwise) and a bounded number of attempts keep one
 * slow API from eating the tick.
 */

export interface AwsClientsConfig {
  /** Default: AWS_REGION (set by Lambda), then AWS_DEFAULT_REGION. */
  region?: string;
  /** Attempts per call, retries included. */
  maxAttempts?: number;
  requestTimeoutMs?: number;
  /** An endpoint override (local emulators); production leaves it unset. */
  endpoint?: string;
  /** CloudWatch wire protocol; production keeps the SDK default. */
  cloudWatchProtocol?: CloudWatchClientConfig['protocol'];
}

export type AwsClients = ReturnType<typeof awsClientsFromEnv>;

export function awsClientsFromEnv(config: AwsClientsConfig = {}, env: NodeJS.ProcessEnv = process.env) {
  const region = config.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) throw new Error('no AWS region: expected config.region, AWS_REGION or AWS_DEFAULT_REGION');
  const common = {
    region,
    maxAttempts: config.maxAttempts ?? 3,
    requestHandler: { requestTimeout: config.requestTimeoutMs ?? 5_000, throwOnRequestTimeout: true },
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
  };
  return {
    elbv2: new ElasticLoadBalancingV2Client(common),
    cloudwatch: new CloudWatchClient({ ...common, ...(config.cloudWatchProtocol ? { protocol: config.cloudWatchProtocol } : {}) }),
    ec2: new EC2Client(common),
    sns: new SNSClient(common),
    dynamodb: new DynamoDBClient(common),
  };
}
