/**
 * The name of an error, for a message or a log line. The AWS SDK names a service error after the
 * answer's own error type (`__type`, or the XML `Code`): text from a remote answer. So only names from
 * this list are shown as they are (the SDK's, Node's and the AWS services' this project calls); any
 * other is shown as `UnexpectedError`. The same list covers PutEvents' per-entry `ErrorCode`.
 */
const KNOWN = new Set([
  // Node, the SDK and this project
  'Error',
  'TypeError',
  'RangeError',
  'SyntaxError',
  'AbortError',
  'TimeoutError',
  'DeadlineExceeded',
  'ParameterError',
  'DependencyError',
  'ZapiError',
  'CredentialsProviderError',
  'ProviderError',
  'RequestTimeout',
  'RequestTimeoutException',
  'NoEventId',
  'ValiError',
  // Any AWS service
  'AccessDenied',
  'AccessDeniedException',
  'ExpiredToken',
  'ExpiredTokenException',
  'IncompleteSignature',
  'InternalFailure',
  'InternalServerError',
  'InternalServiceError',
  'InternalException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'RequestExpired',
  'RequestLimitExceeded',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'UnrecognizedClientException',
  'ValidationException',
  'ResourceNotFoundException',
  // SSM Parameter Store
  'ParameterNotFound',
  'ParameterVersionNotFound',
  'InvalidKeyId',
  'InvalidNextToken',
  'InvalidFilterKey',
  'InvalidFilterOption',
  'InvalidFilterValue',
  'TooManyUpdates',
  'KMSAccessDeniedException',
  'KMSDisabledException',
  'KMSInvalidStateException',
  'KMSNotFoundException',
  'KMSOptInRequired',
  'KMSThrottlingException',
  'KMSInvalidKeyUsageException',
  'KMSInternalException',
  // EventBridge (the call, and an entry's ErrorCode)
  'ConcurrentModificationException',
  'LimitExceededException',
  'OperationDisabledException',
  'InvalidArgument',
  'MalformedDetail',
  'NotAuthorizedForSourceException',
  'NotAuthorizedForDetailTypeException',
  'InvalidAccountIdException',
  'RedactionFailure',
  // DynamoDB and SQS
  'ConditionalCheckFailedException',
  'ProvisionedThroughputExceededException',
  'TransactionConflictException',
  'ItemCollectionSizeLimitExceededException',
  'QueueDoesNotExist',
  'InvalidMessageContents',
  'RequestThrottled',
  'OverLimit',
  'KmsThrottled',
  'InvalidAddress',
  'InvalidSecurity',
  'UnsupportedOperation',
  'ReceiptHandleIsInvalid',
  'MessageNotInflight',
]);

/** `name` when it is a known error name, else `UnexpectedError`. */
export function knownName(name: string | undefined): string {
  return name !== undefined && KNOWN.has(name) ? name : 'UnexpectedError';
}

/** The error's name when it is a known one, else `UnexpectedError`. */
export function errorName(error: unknown): string {
  return knownName(error instanceof Error ? error.name : undefined);
}
