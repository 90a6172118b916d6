/**
 * The CloudWatch namespace every function writes its metrics to unless the deployment names another
 * (`metricsNamespace`). A leaf: no imports; lib/ and every capability's settings read it.
 */
export const DEFAULT_METRICS_NAMESPACE = 'ZapiPresence';
