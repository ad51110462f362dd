/**
 * Prometheus metrics of endpoint graphs, registered in a server's own registry: step latency by
 * endpoint, step and kind; step failures by code and what the error policy did; shadow answers.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { GraphObserver } from './run.js';

const STEP_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];

/**
 * @example const observer = graphMetrics(metrics.registry); await ServedEndpoint.create({ ..., observer });
 */
export function graphMetrics(registry: Registry): GraphObserver {
  const duration = new Histogram({
    name: 'ferry_step_duration_seconds',
    help: 'Duration of endpoint graph steps, seconds, by endpoint, step and kind.',
    labelNames: ['endpoint', 'step', 'kind'] as const,
    buckets: STEP_BUCKETS,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'ferry_step_errors_total',
    help: 'Endpoint graph steps that failed, by endpoint, step, error code and what the error policy did (fail, skip, default).',
    labelNames: ['endpoint', 'step', 'code', 'policy'] as const,
    registers: [registry],
  });
  const shadows = new Counter({
    name: 'ferry_shadow_predictions_total',
    help: 'Rows predicted by shadow models (logged, never returned), by endpoint, model and version.',
    labelNames: ['endpoint', 'model', 'version'] as const,
    registers: [registry],
  });
  return {
    onStep(event) {
      duration.observe(
        { endpoint: event.endpoint, step: event.step, kind: event.kind },
        event.seconds,
      );
      if (event.error) {
        errors.inc({
          endpoint: event.endpoint,
          step: event.step,
          code: event.error.code,
          policy: event.policy ?? 'fail',
        });
      }
    },
    onShadow(endpoint, shadow) {
      shadows.inc(
        { endpoint, model: shadow.model.model, version: shadow.model.version },
        shadow.prediction.predict.length,
      );
    },
  };
}
