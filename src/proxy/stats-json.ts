/**
 * GET /stats on metrics_listen: the pools at a glance as JSON, for the dashboard (src/observe/dashboard/) and
 * scripts. The same numbers as SHOW POOLS and SHOW STATS: tps and qps are per-second averages since the last stats
 * roll (every 15 s), avg_wait_ms the average wait per server assignment in that window, p99_wait_ms the 99th
 * percentile of the waits in that window (wait-histogram.ts). The shape is a contract (docs/proxy.md, "/stats").
 */
import type { AdminData, PoolPeriodInfo } from './admin/admin.js';
import { emptyWaits, waitQuantileMs } from './pool/wait-histogram.js';
import { zeroStats } from './pool/stats.js';

export interface PoolStatsJson {
  readonly database: string;
  readonly user: string;
  readonly cl_active: number;
  readonly cl_waiting: number;
  readonly sv_active: number;
  readonly sv_idle: number;
  readonly sv_used: number;
  readonly maxwait_ms: number;
  readonly tps: number;
  readonly qps: number;
  readonly avg_wait_ms: number;
  readonly p99_wait_ms: number;
}

export interface ProxyStatsJson {
  /** ISO-8601 UTC. */
  readonly time: string;
  readonly pools: PoolStatsJson[];
  readonly totals: { cl_active: number; cl_waiting: number; sv_active: number; tps: number };
}

const round3 = (n: number): number => Math.round(n * 1000) / 1000;

export function statsJson(d: AdminData, time: Date): ProxyStatsJson {
  const period = new Map<string, PoolPeriodInfo>(d.poolStats().map((p) => [`${p.database}\0${p.user}`, p]));
  const pools = d.pools().map((p): PoolStatsJson => {
    const s = period.get(`${p.database}\0${p.user}`);
    const avg = s?.averages ?? zeroStats();
    return {
      database: p.database,
      user: p.user,
      cl_active: p.clActive,
      cl_waiting: p.clWaiting,
      sv_active: p.svActive,
      sv_idle: p.svIdle,
      sv_used: p.svUsed,
      maxwait_ms: round3(p.maxWaitUs / 1000),
      tps: avg.xact_count,
      qps: avg.query_count,
      avg_wait_ms: round3(avg.wait_time / 1000),
      p99_wait_ms: round3(waitQuantileMs(s?.recentWaits ?? emptyWaits(), 0.99)),
    };
  });
  const totals = { cl_active: 0, cl_waiting: 0, sv_active: 0, tps: 0 };
  for (const p of pools) {
    totals.cl_active += p.cl_active;
    totals.cl_waiting += p.cl_waiting;
    totals.sv_active += p.sv_active;
    totals.tps += p.tps;
  }
  return { time: time.toISOString(), pools, totals };
}
