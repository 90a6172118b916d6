/**
 * The presence table as the stack creates it (keys from the shared settings), for DynamoDB emulators in
 * tests and benches.
 */
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { TABLE_ATTRIBUTES } from '../../functions/presence-store/settings.ts';

export function presenceTableInput(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    KeySchema: [
      { AttributeName: TABLE_ATTRIBUTES.partitionKey, KeyType: 'HASH' },
      { AttributeName: TABLE_ATTRIBUTES.sortKey, KeyType: 'RANGE' },
    ],
    AttributeDefinitions: [
      { AttributeName: TABLE_ATTRIBUTES.partitionKey, AttributeType: 'S' },
      { AttributeName: TABLE_ATTRIBUTES.sortKey, AttributeType: 'S' },
    ],
    BillingMode: 'PAY_PER_REQUEST',
  };
}

/** Creates the presence table on an emulator (dynalite creates tables at once when told so). */
export async function createPresenceTable(client: DynamoDBClient, tableName: string): Promise<void> {
  await client.send(new CreateTableCommand(presenceTableInput(tableName)));
}
