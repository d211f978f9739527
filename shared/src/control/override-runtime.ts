import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDbStateStore } from '../adapters/aws/dynamodb-state.ts';
import { SnsNotifier } from '../adapters/aws/sns-notifier.ts';
import type { Clock } from '../reconcile/ports.ts';
import { loadFleetSpec } from '../spec/load.ts';
import type { FleetSpec } from '../spec/schema.ts';
import type { OverrideConfig } from './config.ts';
import type { OverrideDeps } from './override-service.ts';

/**
 * The override function's composition root: the state table and the alert topic, nothing else.
 * It builds its two clients itself rather than through awsClientsFromEnv, which would pull the
 * ELBv2, CloudWatch and EC2 clients (and half a megabyte) into a bundle that never calls them.
 */

export const systemClock: Clock = { now: () => Date.now() };

export interface OverrideParts {
  dynamodb?: DynamoDBClient;
  sns?: SNSClient;
  clock?: Clock;
  spec?: FleetSpec;
}

export function overrideRuntime(config: OverrideConfig, parts: OverrideParts = {}, env: NodeJS.ProcessEnv = process.env): OverrideDeps {
  // As the controller's clients: bounded attempts and a per-attempt timeout that throws.
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  const common = {
    ...(region ? { region } : {}),
    maxAttempts: 3,
    requestHandler: { requestTimeout: 5_000, throwOnRequestTimeout: true },
    ...(config.awsEndpoint ? { endpoint: config.awsEndpoint } : {}),
  };
  return {
    spec: parts.spec ?? loadFleetSpec(config.specFile),
    store: new DynamoDbStateStore(parts.dynamodb ?? new DynamoDBClient(common), { tableName: config.stateTable }),
    notifier: new SnsNotifier(parts.sns ?? new SNSClient(common), config.alertTopicArn),
    clock: parts.clock ?? systemClock,
    dryRun: config.dryRun,
  };
}
