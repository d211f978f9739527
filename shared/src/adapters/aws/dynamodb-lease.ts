import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { CallOptions, Clock, LeasePort } from '../../reconcile/ports.ts';
import { conditionalWrite } from './dynamodb-conditional.ts';

/**
 * The tick lease as one item of the state table (pk `controller-lease`): a conditional PutItem
 * takes it when nobody holds it, its holder's time is up, or the holder is taking it again; a
 * conditional DeleteItem gives it back only if this holder still has it. `expiresAtMs` decides;
 * `expiresAt` (epoch seconds) is the table's TTL attribute, so a lease nobody released is also
 * swept away eventually. Clocks of two Lambdas differ by milliseconds, far below a tick.
 */

export interface DynamoDbLeaseOptions {
  tableName: string;
  /** Partition key attribute (default `pk`) and the item's key value (default `controller-lease`). */
  keyName?: string;
  keyValue?: string;
}

export class DynamoDbLease implements LeasePort {
  private readonly doc: DynamoDBDocumentClient;
  private readonly key: Record<string, string>;
  private readonly keyName: string;

  constructor(
    client: DynamoDBClient,
    private readonly clock: Clock,
    private readonly options: DynamoDbLeaseOptions,
  ) {
    this.doc = DynamoDBDocumentClient.from(client);
    this.keyName = options.keyName ?? 'pk';
    this.key = { [this.keyName]: options.keyValue ?? 'controller-lease' };
  }

  async acquire(holder: string, ttlMs: number, options: CallOptions = {}): Promise<boolean> {
    if (!holder || !(ttlMs > 0)) throw new RangeError(`lease: holder ${JSON.stringify(holder)} and ttlMs ${ttlMs}: expected a holder and a positive ttl`);
    const now = this.clock.now();
    const expiresAtMs = now + ttlMs;
    return conditionalWrite(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.options.tableName,
          Item: { ...this.key, holder, expiresAtMs, expiresAt: Math.ceil(expiresAtMs / 1000) },
          ConditionExpression: 'attribute_not_exists(#pk) OR #expiresAtMs <= :now OR #holder = :holder',
          ExpressionAttributeNames: { '#pk': this.keyName, '#expiresAtMs': 'expiresAtMs', '#holder': 'holder' },
          ExpressionAttributeValues: { ':now': now, ':holder': holder },
        }),
        { abortSignal: options.signal },
      ),
    );
  }

  async release(holder: string, options: CallOptions = {}): Promise<void> {
    await conditionalWrite(() =>
      this.doc.send(
        new DeleteCommand({
          TableName: this.options.tableName,
          Key: this.key,
          ConditionExpression: '#holder = :holder',
          ExpressionAttributeNames: { '#holder': 'holder' },
          ExpressionAttributeValues: { ':holder': holder },
        }),
        { abortSignal: options.signal },
      ),
    );
  }
}
