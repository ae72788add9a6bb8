/**
 * `service.dashboard` in the service config: whether the live dashboard at
 * `/_presence/dashboard` is served, who may open it, and the latency SLO its
 * latency panel draws.
 */
import { z } from 'zod';

export const DashboardSectionSchema = z
  .strictObject({
    /** Serve the dashboard (default true). */
    enabled: z.boolean().default(true),
    /**
     * Let requests from a loopback address (127.0.0.0/8, ::1) in without a
     * token (default true). Anyone else needs `service.admin_token`.
     */
    allow_loopback: z.boolean().default(true),
    /** The input→emission latency objective drawn on the latency chart, in ms (default 2, the p99 target of docs/performance.md). */
    latency_slo_ms: z.number().positive().max(60_000).default(2),
    /** The percentile the SLO applies to (default 99). */
    latency_slo_percentile: z.union([z.literal(50), z.literal(99), z.literal(99.9)]).default(99),
    /** Seconds of history kept for the charts and sent to a page when it connects (default 3600: the last hour). */
    history_seconds: z.number().int().min(60).max(86_400).default(3_600),
    /** Most pages connected at once (each is one open event stream). */
    max_clients: z.number().int().positive().max(1_000).default(16),
  })
  .default({ enabled: true, allow_loopback: true, latency_slo_ms: 2, latency_slo_percentile: 99, history_seconds: 3_600, max_clients: 16 });

export type DashboardSettings = z.output<typeof DashboardSectionSchema>;
