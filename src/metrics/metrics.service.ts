import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

type Collector = () => Promise<void>;

/** The Prometheus registry and every metric vmplane exports. */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  private readonly collectors: Collector[] = [];

  /** Its `_count` series is the request count by method, route and status; no separate counter is kept. */
  readonly httpDuration = new Histogram({
    name: 'vmplane_http_request_duration_seconds',
    help: 'HTTP request latency (and, as _count, the number of requests), by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly hypervisorLatency = new Histogram({
    name: 'vmplane_hypervisor_call_duration_seconds',
    help: 'Hypervisor SDK call latency, by call and outcome',
    labelNames: ['call', 'outcome'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly hypervisorErrors = new Counter({
    name: 'vmplane_hypervisor_errors_total',
    help: 'Hypervisor SDK call failures, by call and error kind',
    labelNames: ['call', 'kind'] as const,
    registers: [this.registry],
  });

  readonly vmsByStatus = new Gauge({
    name: 'vmplane_vms',
    help: 'VM records by status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  readonly gpus = new Gauge({
    name: 'vmplane_gpus',
    help: 'GPUs by model and state: allocated, free (unbound on an active host that answers) or unavailable (unbound on a draining, down or unreachable host)',
    labelNames: ['model', 'state'] as const,
    registers: [this.registry],
  });

  readonly hostsUnreachable = new Gauge({
    name: 'vmplane_hosts_unreachable',
    help: 'Hosts whose hypervisor did not answer (unreachable_since set); placement leaves them out',
    registers: [this.registry],
  });

  readonly operationQueue = new Gauge({
    name: 'vmplane_operation_queue_depth',
    help: 'Operations not yet finished, by status: pending, running, or waiting_for_capacity (in the capacity queue)',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  readonly placementDuration = new Histogram({
    name: 'vmplane_placement_duration_seconds',
    help: 'Time to plan a placement, on PostgreSQL including the wait for the per-model placement lock, by outcome (placed, no_fit) and by where the fleet came from (snapshot: the kept fleet snapshot decided; database: the fleet was read)',
    labelNames: ['outcome', 'fleet'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly placementConflicts = new Counter({
    name: 'vmplane_placement_conflicts_total',
    help: 'Claims that found their plan stale (another request took the room first) and sent the request to plan again, by what was taken: host, gpu or slot',
    labelNames: ['resource'] as const,
    registers: [this.registry],
  });

  readonly reconcilerFindings = new Counter({
    name: 'vmplane_reconciler_findings_total',
    help: 'Drift found by the reconciler, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'vmplane_' });
  }

  /** Registers a function that refreshes gauges from the database before each scrape. */
  addCollector(collector: Collector): void {
    this.collectors.push(collector);
  }

  async render(): Promise<string> {
    await Promise.all(this.collectors.map((collect) => collect()));
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
