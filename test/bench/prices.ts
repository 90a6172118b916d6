/**
 * The list prices the bench computes every dollar figure from, for the two regions it prices: us-east-1
 * (AWS's reference region) and sa-east-1 (São Paulo, where this project's users run). Inputs, like the
 * template and the measurements: never a result. On-demand, without the free tier.
 *
 * Where each sa-east-1 price came from, and when it was read: BENCHMARKS.md, "Prices".
 */

export const PRICE_REGIONS = ['us-east-1', 'sa-east-1'] as const;
export type PriceRegion = (typeof PRICE_REGIONS)[number];

export interface ListPrices {
  readonly region: PriceRegion;
  /** API Gateway HTTP API, $ per million requests (first 300 million a month). */
  readonly httpApiPerMillion: number;
  /** EventBridge custom events (PutEvents), $ per million (64 KB chunks). */
  readonly eventBridgePerMillion: number;
  /** EventBridge archive, $ per GB archived. */
  readonly archivePerGb: number;
  /** Lambda requests, $ per million. */
  readonly lambdaRequestsPerMillion: number;
  /** Lambda duration on arm64, $ per GB-second (first tier). */
  readonly lambdaArmGbSecond: number;
  /** CloudWatch Logs ingestion, standard class, $ per GB. */
  readonly logsPerGb: number;
  /** CloudWatch custom metric, $ per metric-month (first 10,000). */
  readonly metricPerMonth: number;
  /** CloudWatch standard-resolution alarm, $ per alarm metric a month. */
  readonly alarmPerMonth: number;
  /** CloudWatch high-resolution alarm, $ per alarm metric a month. */
  readonly highResolutionAlarmPerMonth: number;
  /** CloudWatch dashboard, $ a month (beyond an account's first three). */
  readonly dashboardPerMonth: number;
  /** KMS customer-managed key, $ a month. */
  readonly kmsKeyPerMonth: number;
  /** SQS standard queue requests, $ per million. */
  readonly sqsPerMillion: number;
  /** DynamoDB on-demand read request units, $ per million. */
  readonly dynamoReadPerMillion: number;
  /** DynamoDB on-demand write request units, $ per million. */
  readonly dynamoWritePerMillion: number;
}

export const LIST_PRICES: Readonly<Record<PriceRegion, ListPrices>> = {
  'us-east-1': {
    region: 'us-east-1',
    httpApiPerMillion: 1.0,
    eventBridgePerMillion: 1.0,
    archivePerGb: 0.1,
    lambdaRequestsPerMillion: 0.2,
    lambdaArmGbSecond: 0.0000133334,
    logsPerGb: 0.5,
    metricPerMonth: 0.3,
    alarmPerMonth: 0.1,
    highResolutionAlarmPerMonth: 0.3,
    dashboardPerMonth: 3.0,
    kmsKeyPerMonth: 1.0,
    sqsPerMillion: 0.4,
    dynamoReadPerMillion: 0.125,
    dynamoWritePerMillion: 0.625,
  },
  'sa-east-1': {
    region: 'sa-east-1',
    httpApiPerMillion: 1.9,
    eventBridgePerMillion: 1.0,
    archivePerGb: 0.1,
    lambdaRequestsPerMillion: 0.2,
    lambdaArmGbSecond: 0.0000133334,
    logsPerGb: 0.9,
    metricPerMonth: 0.45,
    alarmPerMonth: 0.15,
    highResolutionAlarmPerMonth: 0.45,
    dashboardPerMonth: 3.0,
    kmsKeyPerMonth: 1.0,
    sqsPerMillion: 0.5,
    dynamoReadPerMillion: 0.1875,
    dynamoWritePerMillion: 0.9375,
  },
};

/** us-east-1: the region the bench's single-region figures (warm path, flood) are priced in. */
export const US_EAST_1 = LIST_PRICES['us-east-1'];
