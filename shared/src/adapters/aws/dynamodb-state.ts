import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { initialControllerState } from '../../core/state.ts';
import type { ControllerState } from '../../core/types.ts';
import type { CallOptions, StateStore, StoredState } from '../../reconcile/ports.ts';
import { conditionalWrite } from './dynamodb-conditional.ts';

/**
 * The controller's state as one DynamoDB item: the state as a JSON string (DynamoDB maps would
 * reject empty keys and reshape numbers) and a numeric `version` that each save moves on by one,
 * guarded by a condition so two concurrent ticks cannot both win.
 */

export interface DynamoDbStateOptions {
  tableName: string;
  /** Partition key attribute (default `pk`) and the item's key value (default `controller-state`). */
  keyName?: string;
  keyValue?: string;
}

export class DynamoDbStateStore implements StateStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly key: Record<string, string>;

  constructor(
    client: DynamoDBClient,
    private readonly options: DynamoDbStateOptions,
  ) {
    this.doc = DynamoDBDocumentClient.from(client);
    this.key = { [options.keyName ?? 'pk']: options.keyValue ?? 'controller-state' };
  }

  async load(options: CallOptions = {}): Promise<StoredState> {
    const out = await this.doc.send(new GetCommand({ TableName: this.options.tableName, Key: this.key, ConsistentRead: true }), { abortSignal: options.signal });
    if (!out.Item) return { state: initialControllerState(), version: null };
    return { state: JSON.parse(out.Item.state as string) as ControllerState, version: Number(out.Item.version) };
  }

  async save(state: ControllerState, expectedVersion: number | null, options: CallOptions = {}): Promise<boolean> {
    const first = expectedVersion === null;
    return conditionalWrite(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.options.tableName,
          Item: { ...this.key, state: JSON.stringify(state), version: first ? 1 : expectedVersion + 1 },
          ConditionExpression: first ? 'attribute_not_exists(#version)' : '#version = :expected',
          ExpressionAttributeNames: { '#version': 'version' },
          ...(first ? {} : { ExpressionAttributeValues: { ':expected': expectedVersion } }),
        }),
        { abortSignal: options.signal },
      ),
    );
  }
}
