import { describe, expect, it, vi } from 'vitest';
import {
  createInternalErrorLogger,
  createMetricsLogger,
  emfRecord,
  METRIC_NAMES,
} from '../../../functions/presence-webhook/metrics.ts';
import type { Outcome } from '../../../functions/presence-webhook/receive.ts';
import { CANARY_INSTANCE_ID } from '../../../functions/shared/contract/presence-contract.ts';

const ctx = { requestId: 'Xy12AbCdEfGhIjk=', durationMs: 12.345 };
const NS = 'ZapiPresence';

function metricsOf(record: Record<string, unknown>) {
  const aws = record._aws as {
    Timestamp: number;
    CloudWatchMetrics: Array<{
      Namespace: string;
      Dimensions: string[][];
      Metrics: Array<{ Name: string; Unit: string }>;
    }>;
  };
  return aws.CloudWatchMetrics[0];
}

describe('EMF metrics', () => {
  it.each([true, false])(
    'writes the accepted line exactly as emfRecord describes it, detailed %s (the fast path is the same document)',
    (detailed) => {
      const lines: string[] = [];
      const log = createMetricsLogger(
        'Team/Presence "x"',
        (line) => lines.push(line),
        () => 1_764_072_000_000,
        detailed,
      );
      const outcome: Outcome = {
        kind: 'accepted',
        statusCode: 200,
        instanceId: 'I',
        status: 'PAUSED',
        eventId: 'e',
        publishMs: 3.04159,
      };
      log(outcome, { requestId: 'a"b\\c', durationMs: 1 });
      const line = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
      expect(line).toEqual(
        emfRecord(
          outcome,
          { requestId: 'a"b\\c', durationMs: 1 },
          'Team/Presence "x"',
          1_764_072_000_000,
          detailed,
        ),
      );
      // Without detailed metrics: the same fields, and nothing CloudWatch would extract.
      expect('_aws' in line).toBe(detailed);
      expect(line).toMatchObject({ Status: 'PAUSED', Accepted: 1, PublishLatency: 3 });
    },
  );

  it('extracts no traffic metric without detailed metrics: accepted and rejected lines are plain logs, failures stay metrics', () => {
    const lines: string[] = [];
    const log = createMetricsLogger(
      NS,
      (line) => lines.push(line),
      () => 1,
    );
    log(
      { kind: 'rejected', statusCode: 401, reason: 'unauthorized', message: 'm', instanceId: 'I' },
      { requestId: 'r', durationMs: 1 },
    );
    log(
      { kind: 'failed', statusCode: 503, reason: 'bus-unavailable', message: 'm', cause: 'c' },
      { requestId: 'r', durationMs: 1 },
    );
    const [rejected, failed] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rejected).toMatchObject({ Reason: 'unauthorized', Rejected: 1, level: 'WARN' });
    expect(rejected && '_aws' in rejected).toBe(false);
    expect(metricsOf(failed as Record<string, unknown>)?.Metrics).toEqual([
      { Name: METRIC_NAMES.publishFailures, Unit: 'Count' },
    ]);
  });

  it('counts an accepted event per status with its publish latency', () => {
    const outcome: Outcome = {
      kind: 'accepted',
      statusCode: 200,
      instanceId: 'I',
      status: 'RECORDING',
      eventId: 'e',
      publishMs: 7.26,
    };
    const record = emfRecord(outcome, ctx, NS, 1_700_000_000_000);
    expect(metricsOf(record)).toEqual({
      Namespace: NS,
      Dimensions: [['Status']],
      Metrics: [{ Name: METRIC_NAMES.accepted }, { Name: METRIC_NAMES.publishLatency, Unit: 'Milliseconds' }],
    });
    expect(record).toEqual({
      _aws: expect.anything(),
      Status: 'RECORDING',
      Accepted: 1,
      PublishLatency: 7.3,
      requestId: ctx.requestId,
    });
    expect((record._aws as { Timestamp: number }).Timestamp).toBe(1_700_000_000_000);
  });

  it('counts a rejection per reason and names the failing fields', () => {
    const outcome: Outcome = {
      kind: 'rejected',
      statusCode: 400,
      reason: 'invalid-body',
      message: 'invalid field(s): status',
      instanceId: 'I',
      issues: [
        { field: 'status', message: 'x' },
        { field: 'status', message: 'y' },
      ],
    };
    const record = emfRecord(outcome, ctx, NS, 1);
    expect(metricsOf(record)?.Dimensions).toEqual([['Reason']]);
    expect(record).toMatchObject({
      Reason: 'invalid-body',
      Rejected: 1,
      code: 400,
      fields: ['status'],
      level: 'WARN',
    });
  });

  it.each([
    ['invalid-body', 400, true],
    ['malformed-json', 400, true],
    ['payload-too-large', 413, true],
    ['unsupported-media-type', 415, true],
    ['unauthorized', 401, false],
    ['unknown-instance', 404, false],
  ] as const)(
    'a %s refusal is a RefusedCallbacks metric (with or without detailed metrics) when the caller proved its secret: %s',
    (reason, statusCode, refused) => {
      const outcome: Outcome = { kind: 'rejected', statusCode, reason, message: 'm', instanceId: 'I' };
      for (const detailed of [false, true]) {
        const record = emfRecord(outcome, ctx, NS, 1, detailed);
        const names = (
          (record._aws as { CloudWatchMetrics?: Array<{ Metrics: Array<{ Name: string }> }> })
            ?.CloudWatchMetrics ?? []
        ).flatMap((d) => d.Metrics.map((m) => m.Name));
        expect(names.includes(METRIC_NAMES.refusedCallbacks)).toBe(refused);
        expect(names.includes(METRIC_NAMES.rejected)).toBe(detailed);
        expect(record[METRIC_NAMES.refusedCallbacks]).toBe(refused ? 1 : undefined);
      }
    },
  );

  it.each([
    ['bus-unavailable', METRIC_NAMES.publishFailures],
    ['secret-unavailable', METRIC_NAMES.secretFailures],
  ] as const)('counts a %s failure as %s', (reason, metric) => {
    const outcome: Outcome = {
      kind: 'failed',
      statusCode: 503,
      reason,
      message: 'm',
      cause: 'PutEvents entry failed: ThrottlingException',
    };
    const record = emfRecord(outcome, ctx, NS, 1);
    expect(metricsOf(record)).toEqual({
      Namespace: NS,
      Dimensions: [[]],
      Metrics: [{ Name: metric, Unit: 'Count' }],
    });
    expect(record).toMatchObject({
      [metric]: 1,
      level: 'ERROR',
      cause: 'PutEvents entry failed: ThrottlingException',
    });
  });

  it('writes one newline-terminated JSON line well under 300 bytes for an accepted webhook', () => {
    const lines: string[] = [];
    const log = createMetricsLogger(
      NS,
      (line) => lines.push(line),
      () => 1_764_072_000_000,
    );
    log(
      {
        kind: 'accepted',
        statusCode: 200,
        instanceId: '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5',
        status: 'UNAVAILABLE',
        eventId: '6f1c8a2e-1b2c-4d5e-8f90-a1b2c3d4e5f6',
        publishMs: 12.34,
      },
      { requestId: 'Xy12AbCdEfGhIjk=', durationMs: 15 },
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]?.endsWith('\n')).toBe(true);
    expect(Buffer.byteLength(lines[0] ?? '')).toBeLessThanOrEqual(300);
  });

  it('names exactly the directives of a refusal: RefusedCallbacks alone, Rejected by Reason only when detailed', () => {
    const outcome: Outcome = { kind: 'rejected', statusCode: 400, reason: 'invalid-body', message: 'm' };
    const refused = {
      Namespace: NS,
      Dimensions: [[]],
      Metrics: [{ Name: METRIC_NAMES.refusedCallbacks, Unit: 'Count' }],
    };
    const byReason = {
      Namespace: NS,
      Dimensions: [['Reason']],
      Metrics: [{ Name: METRIC_NAMES.rejected, Unit: 'Count' }],
    };
    expect(emfRecord(outcome, ctx, NS, 5, false)._aws).toEqual({
      Timestamp: 5,
      CloudWatchMetrics: [refused],
    });
    expect(emfRecord(outcome, ctx, NS, 5, true)._aws).toEqual({
      Timestamp: 5,
      CloudWatchMetrics: [byReason, refused],
    });
    // Without an instance (a URL that names none) the line has no instanceId.
    expect(emfRecord(outcome, ctx, NS, 5)).not.toHaveProperty('instanceId');
    expect(emfRecord({ ...outcome, instanceId: 'I' }, ctx, NS, 5)).toMatchObject({ instanceId: 'I' });
  });

  it('a failure names the instance and the publish time only when it has them', () => {
    const failed: Outcome = {
      kind: 'failed',
      statusCode: 503,
      reason: 'bus-unavailable',
      message: 'm',
      cause: 'c',
    };
    const bare = emfRecord(failed, ctx, NS, 1);
    expect(bare).not.toHaveProperty('instanceId');
    expect(bare).not.toHaveProperty('ms');
    expect(emfRecord({ ...failed, instanceId: 'I', publishMs: 12.345 }, ctx, NS, 1)).toMatchObject({
      instanceId: 'I',
      ms: 12.3,
    });
  });

  it('logs a refusal of the canary instance as a refusal, not as an accepted canary callback', () => {
    const lines: string[] = [];
    createMetricsLogger(
      NS,
      (line) => lines.push(line),
      () => 1,
    )(
      {
        kind: 'rejected',
        statusCode: 401,
        reason: 'unauthorized',
        message: 'm',
        instanceId: CANARY_INSTANCE_ID,
      },
      { requestId: 'r', durationMs: 1 },
    );
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      Reason: 'unauthorized',
      instanceId: CANARY_INSTANCE_ID,
    });
    expect(lines[0]).not.toContain('canary callback accepted');
  });

  it('writes an internal error as one InternalErrors metric line, to stdout by default', () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      createInternalErrorLogger(NS, undefined, () => 9)({ requestId: 'r', error: 'TypeError' });
      const line = String(write.mock.calls[0]?.[0]);
      expect(line.endsWith('\n')).toBe(true);
      expect(JSON.parse(line)).toEqual({
        _aws: {
          Timestamp: 9,
          CloudWatchMetrics: [
            {
              Namespace: NS,
              Dimensions: [[]],
              Metrics: [{ Name: METRIC_NAMES.internalErrors, Unit: 'Count' }],
            },
          ],
        },
        level: 'ERROR',
        [METRIC_NAMES.internalErrors]: 1,
        error: 'TypeError',
        requestId: 'r',
      });
    } finally {
      write.mockRestore();
    }
  });
});
