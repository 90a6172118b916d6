/**
 * The presence store's work per raw callback, counted (not timed) by running the real state core
 * (functions/presence-store/process.ts) against DynamoDB's emulator (dynalite) on a realistic stream:
 * chats that come online, type with PAUSED flapping, sometimes record audio, sometimes go quiet (the
 * expiry fires), and leave. The counts feed the cost per million callbacks.
 */

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { processExpiry, processPresence, type StateDeps } from '../../functions/presence-store/process.ts';
import { dynamoStore } from '../../functions/presence-store/store.ts';
import { deadlineAt } from '../../functions/shared/aws/deadline.ts';
import type { PresenceStatus } from '../../functions/shared/contract/presence-contract.ts';
import { createPresenceTable } from '../support/presence-table.ts';
import { type ListPrices, US_EAST_1 } from './prices.ts';

/** What the presence store's work is priced by, from a region's list prices (./prices.ts, on-demand). */
export function storePrices(prices: ListPrices = US_EAST_1) {
  return {
    dynamoReadPerMillion: prices.dynamoReadPerMillion, // strongly consistent read of an item under 4 KB: 1 RRU
    dynamoWritePerMillion: prices.dynamoWritePerMillion, // write of an item under 1 KB: 1 WRU
    sqsPerMillion: prices.sqsPerMillion, // standard queue requests (send; receive and delete come in batches of 10)
    eventBridgePerMillion: prices.eventBridgePerMillion,
    lambdaRequestsPerMillion: prices.lambdaRequestsPerMillion,
    lambdaArmGbSecond: prices.lambdaArmGbSecond,
  } as const;
}
/** Assumed duration of one state-function batch (10 records), which cannot be measured here. */
export const ASSUMED_BATCH_MS = 60;

export interface StoreCounts {
  readonly callbacks: number;
  readonly reads: number;
  readonly writes: number;
  readonly derived: number;
  readonly expiryMessages: number;
  readonly expired: number;
  /** COMPOSING and RECORDING callbacks (each one a news message on the live feed). */
  readonly activityCallbacks: number;
}

/** A repeatable random number in [0, 1) (a linear congruential generator): the same stream every run. */
export function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/** One chat's session: online, bursts of typing or recording with pauses, mostly offline at the end. */
export function session(random: () => number): PresenceStatus[] {
  const events: PresenceStatus[] = ['AVAILABLE'];
  const bursts = 1 + Math.floor(random() * 4);
  for (let b = 0; b < bursts; b++) {
    const kind: PresenceStatus = random() < 0.2 ? 'RECORDING' : 'COMPOSING';
    const flaps = 1 + Math.floor(random() * 6);
    for (let f = 0; f < flaps; f++) events.push(kind, ...(random() < 0.7 ? (['PAUSED'] as const) : []));
  }
  if (random() < 0.8) events.push('UNAVAILABLE');
  return events;
}

export async function measureStore(chats: number): Promise<StoreCounts> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  const counts = {
    callbacks: 0,
    reads: 0,
    writes: 0,
    derived: 0,
    expiryMessages: 0,
    expired: 0,
    activityCallbacks: 0,
  };
  const client = new DynamoDBClient({
    region: 'sa-east-1',
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  });
  const counting = {
    send: (command: { constructor: { name: string } }, options?: unknown) => {
      if (command.constructor.name === 'GetItemCommand') counts.reads++;
      else counts.writes++;
      return client.send(command as never, options as never);
    },
  } as unknown as DynamoDBClient;
  try {
    await createPresenceTable(client, 'bench');
    const random = seededRandom(42);
    let clock = Date.parse('2026-11-25T12:00:00Z');
    const pendingChecks: Array<{ phone: string; at: number; news?: number }> = [];
    const deps: StateDeps = {
      store: dynamoStore(counting, 'bench', { ttlSeconds: 30 * 86_400, now: () => clock }),
      expiryMs: 25_000,
      now: () => clock,
      publish: async (events) => {
        counts.derived += events.length;
      },
      scheduleExpiry: async ({ phone }, delaySeconds, _deadline, news) => {
        counts.expiryMessages++;
        pendingChecks.push({ phone, at: clock + delaySeconds * 1_000, news });
      },
    };
    const deadline = deadlineAt(Date.now() + 600_000);
    let id = 0;
    for (let c = 0; c < chats; c++) {
      const phone = `55119${String(c).padStart(8, '0')}`;
      for (const status of session(random)) {
        clock += 1_000 + Math.floor(random() * 4_000);
        // Due expiry checks run first, as the delay queue would deliver them.
        const due = pendingChecks.filter((p) => p.at <= clock);
        pendingChecks.splice(0, pendingChecks.length, ...pendingChecks.filter((p) => p.at > clock));
        for (const check of due) {
          if (
            (await processExpiry({ instanceId: 'BENCH', phone: check.phone }, deps, deadline, check.news)) ===
            'expired'
          )
            counts.expired++;
        }
        counts.callbacks++;
        if (status === 'COMPOSING' || status === 'RECORDING') counts.activityCallbacks++;
        await processPresence(
          { id: `e${id++}`, time: clock, instanceId: 'BENCH', phone, status },
          deps,
          deadline,
        );
      }
      // A quiet gap: a typing contact who closed the app expires here.
      clock += 30_000;
      for (const check of pendingChecks.splice(0)) {
        if (
          (await processExpiry({ instanceId: 'BENCH', phone: check.phone }, deps, deadline, check.news)) ===
          'expired'
        )
          counts.expired++;
      }
    }
    return counts;
  } finally {
    client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Dollars per million raw callbacks for the presence store, from the counts. */
export function storeCost(counts: StoreCounts, memoryMb = 256, prices: ListPrices = US_EAST_1) {
  const per = (n: number) => n / counts.callbacks;
  const P = storePrices(prices);
  // SQS: the rule's send, and a receive and a delete per batch of 10; the same for expiry messages.
  const sqsRequests = 1 + 0.2 + per(counts.expiryMessages) * 1.2;
  const batches = (1 + per(counts.expiryMessages)) / 10;
  const lines = {
    sqs: sqsRequests * P.sqsPerMillion,
    dynamoReads: per(counts.reads) * P.dynamoReadPerMillion,
    dynamoWrites: per(counts.writes) * P.dynamoWritePerMillion,
    derivedEvents: per(counts.derived) * P.eventBridgePerMillion,
    lambdaRequests: batches * P.lambdaRequestsPerMillion,
    lambdaDuration: batches * 1e6 * (memoryMb / 1024) * (ASSUMED_BATCH_MS / 1000) * P.lambdaArmGbSecond,
  };
  // The delay queue: a send, and a receive and a delete per batch of 10, plus the check's read of the
  // chat. What an expiry writes and publishes is the stop itself, counted with the other derived events.
  const expiryMechanism = per(counts.expiryMessages) * (1.2 * P.sqsPerMillion + P.dynamoReadPerMillion);
  // At low volume a check may come alone: a receive, a delete and a Lambda invocation of its own.
  const expiryMechanismAlone =
    per(counts.expiryMessages) *
    (3 * P.sqsPerMillion +
      P.dynamoReadPerMillion +
      P.lambdaRequestsPerMillion +
      1e6 * (memoryMb / 1024) * (ASSUMED_BATCH_MS / 10_000) * P.lambdaArmGbSecond);
  return {
    region: prices.region,
    perCallback: {
      reads: per(counts.reads),
      writes: per(counts.writes),
      derived: per(counts.derived),
      expiryMessages: per(counts.expiryMessages),
    },
    perMillion: { ...lines, total: Object.values(lines).reduce((a, b) => a + b, 0) },
    expiryMechanismPerMillion: expiryMechanism,
    expiryMechanismAlonePerMillion: expiryMechanismAlone,
  };
}
