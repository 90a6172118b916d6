/**
 * The presence table as the stack creates it (keys from the shared settings), for DynamoDB emulators in
 * tests and benches.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
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

export interface DynaliteTable {
  /** `http://127.0.0.1:PORT` (AWS_ENDPOINT_URL_DYNAMODB for a bundle). */
  readonly url: string;
  readonly client: DynamoDBClient;
  close(): Promise<void>;
}

/** dynalite on 127.0.0.1 with the presence table created and active, and a client for it. */
export async function startPresenceTable(tableName: string): Promise<DynaliteTable> {
  const server: Server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new DynamoDBClient({
    endpoint: url,
    region: 'sa-east-1',
    credentials: { accessKeyId: 'AKIDDYNALITE', secretAccessKey: 'dynalite-secret' },
  });
  await createPresenceTable(client, tableName);
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return {
    url,
    client,
    close: async () => {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
