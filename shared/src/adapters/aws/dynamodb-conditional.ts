import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';

/**
 * A conditional DynamoDB write: true when it happened, false when its condition refused it (a
 * lost race, an expectation not met); every other failure is thrown as it came.
 */
export async function conditionalWrite(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (e) {
    if (e instanceof ConditionalCheckFailedException || (e as Error).name === 'ConditionalCheckFailedException') return false;
    throw e;
  }
}
