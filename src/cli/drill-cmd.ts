/**
 * `pgkeel drill --scenario kill-leader|switchover|partition-leader [--rounds N]`: a fault drill on a running
 * (staging) cluster — argv → src/drill/, printing one line per round and a summary, or JSON. Exit codes: 0 every
 * round healed (and, under synchronous_mode, lost no acknowledged write); 1 otherwise, or a ctl/drill failure;
 * 2 invalid usage or config. Docs: docs/drill.md.
 */
import { hostname } from 'node:os';
import { loadConfig } from '../config/load.js';
import { readYamlFile } from '../config/yaml.js';
import { CtlClient } from '../ctl/client.js';
import { isNodeConfigDoc } from '../ctl/ctl-config.js';
import { CtlError } from '../ctl/errors.js';
import { leaderEndpoints, parseDsn } from '../drill/connect.js';
import { DrillError } from '../drill/errors.js';
import { exitCode, summarize, type RoundResult } from '../drill/measure.js';
import { Probe, type ProbeLogin } from '../drill/probe.js';
import { runDrill, SCENARIOS, type DrillOptions, type DrillRun, type Scenario } from '../drill/run.js';
import { DEFAULT_DIR, LocalClusterError, readLocalCluster } from '../local/layout.js';
import { sleep } from '../lib/proc.js';
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { common, target } from './ctl-cmd.js';

const out = (s: string) => process.stdout.write(s + '\n');
const err = (s: string) => process.stderr.write(s + '\n');

export const DRILL_FLAGS: Record<string, FlagSpec> = {
  scenario: { type: 'string', doc: SCENARIOS.join(' | ') + ' (required)', placeholder: 'S' },
  rounds: { type: 'number', doc: 'how many rounds (default 1); each waits until the cluster healed', placeholder: 'N' },
  'heal-timeout': {
    type: 'number',
    doc: 'seconds after the fault ends within which the cluster must heal (default 120)',
    placeholder: 'S',
  },
  'fault-seconds': {
    type: 'number',
    doc: 'kill-leader, partition-leader: how long the leader stays down (default ttl + 10)',
    placeholder: 'S',
  },
  dsn: {
    type: 'string',
    doc: "where the probe writes: postgres://user:pw@host:port[,host:port…]/db (default: the DCS's leader, as the node config's superuser)",
    placeholder: 'URL',
  },
  json: { type: 'boolean', doc: 'print the result as JSON' },
  ...common,
};

export const DRILL_HELP = `Usage: pgkeel drill --scenario ${SCENARIOS.join('|')} [--rounds N] [-c node.yml | --dir DIR | --etcd HOST:PORT --scope S --dsn URL] [options]

Runs a probe client, injects the fault, and reports the measured RTO and RPO and whether the cluster healed by
itself. For staging clusters: the members must set restapi.allow_drills (docs/drill.md).

${usage(DRILL_FLAGS)}`;

function positiveInt(flags: Record<string, unknown>, name: string, dflt: number | null, max: number): number | null {
  const v = flags[name] as number | undefined;
  if (v === undefined) return dflt;
  if (v < 1 || v > max) throw new DrillError('DRILL_USAGE', `--${name} must be from 1 to ${max}, got ${v}`);
  return v;
}

export function drillOptions(flags: Record<string, unknown>): DrillOptions {
  const s = flags['scenario'] as string | undefined;
  if (s === undefined) throw new DrillError('DRILL_USAGE', `--scenario is required: one of ${SCENARIOS.join(', ')}`);
  if (!(SCENARIOS as readonly string[]).includes(s))
    throw new DrillError('DRILL_USAGE', `--scenario must be one of ${SCENARIOS.join(', ')}, got "${s}"`);
  const faultSeconds = positiveInt(flags, 'fault-seconds', null, 600);
  if (s === 'switchover' && faultSeconds !== null)
    throw new DrillError('DRILL_USAGE', '--fault-seconds is for kill-leader and partition-leader');
  return {
    scenario: s as Scenario,
    rounds: positiveInt(flags, 'rounds', 1, 100) as number,
    healTimeoutMs: (positiveInt(flags, 'heal-timeout', 120, 3600) as number) * 1000,
    faultSeconds,
  };
}

const sslOn = (v: unknown) => v === true || v === 'on' || v === 'true';

/** The superuser of the node config or of the local cluster, for following the DCS's leader. */
export function leaderLogin(flags: Record<string, unknown>): ProbeLogin {
  const file = flags['config'] as string | undefined;
  if (flags['etcd'] !== undefined)
    throw new DrillError('DRILL_NO_CREDENTIALS', '--etcd names no database password: give --dsn URL for the probe');
  if (file) {
    if (!isNodeConfigDoc(readYamlFile(file)))
      throw new DrillError(
        'DRILL_NO_CREDENTIALS',
        `-c ${file} is a ctl config (no database password): give --dsn URL for the probe, or -c a node config`,
      );
    const pgc = loadConfig(file).postgresql;
    const su = pgc.authentication.superuser;
    return {
      user: su.username,
      password: su.password,
      database: 'postgres',
      ssl: sslOn(pgc.parameters['ssl']) ? { rejectUnauthorized: false } : false,
    };
  }
  const dir = (flags['dir'] as string | undefined) ?? DEFAULT_DIR;
  const lc = readLocalCluster(dir);
  if (!lc) throw new DrillError('DRILL_USAGE', `--dir ${dir}: no pgkeel cluster there (no cluster.json)`);
  return {
    user: lc.superuser.username,
    password: lc.superuser.password,
    database: 'postgres',
    ssl: lc.tls ? { rejectUnauthorized: false } : false,
  };
}

const ms = (x: number | null) => (x === null ? 'none' : `${x} ms`);

export function roundLine(r: RoundResult, of: number): string {
  const who = r.newLeader && r.newLeader !== r.oldLeader ? `${r.oldLeader} -> ${r.newLeader}` : `${r.oldLeader} kept`;
  const rto = r.rtoMs === null ? 'no write after the fault' : `RTO ${r.rtoMs} ms`;
  const heal = r.healed ? `healed ${((r.healMs ?? 0) / 1000).toFixed(1)} s after the fault` : `NOT healed: ${r.note}`;
  return `round ${r.round}/${of} ${r.scenario}: leader ${who}; ${rto}; lost ${r.lost} of ${r.acked} acknowledged writes (RPO ${r.rpoMs} ms); ${heal}`;
}

export function summaryText(run: DrillRun, scenario: Scenario, code: number): string {
  const s = summarize(run.rounds);
  const rows: [string, string][] = [
    ['scenario', scenario + (run.faultSeconds !== null ? ` (leader down ${run.faultSeconds} s)` : '')],
    ['members', run.members.join(', ')],
    ['replication', run.synchronous ? 'synchronous_mode' : 'asynchronous'],
    ['healed', `${s.healed}/${s.rounds} rounds`],
    ['RTO median', ms(s.medianRtoMs)],
    ['RTO max', ms(s.maxRtoMs)],
    ['writes lost', `${s.lost} acknowledged (largest RPO window ${s.maxRpoMs} ms)`],
    ['result', code === 0 ? 'PASS' : 'FAIL'],
  ];
  return rows.map(([k, v]) => `  ${k.padEnd(12)} ${v}`).join('\n');
}

export function drillJson(run: DrillRun, scenario: Scenario, code: number): Record<string, unknown> {
  const s = summarize(run.rounds);
  return {
    scenario,
    members: run.members,
    synchronous_mode: run.synchronous,
    fault_seconds: run.faultSeconds,
    rounds: run.rounds.map((r) => ({
      round: r.round,
      old_leader: r.oldLeader,
      new_leader: r.newLeader,
      healed: r.healed,
      heal_ms: r.healMs,
      rto_ms: r.rtoMs,
      acked: r.acked,
      lost: r.lost,
      rpo_ms: r.rpoMs,
      lost_ids: r.lostIds,
      note: r.note,
    })),
    summary: {
      rounds: s.rounds,
      healed: s.healed,
      median_rto_ms: s.medianRtoMs,
      max_rto_ms: s.maxRtoMs,
      lost: s.lost,
      max_rpo_ms: s.maxRpoMs,
    },
    exit_code: code,
  };
}

async function run(flags: Record<string, unknown>): Promise<number> {
  const o = drillOptions(flags);
  const dsn = flags['dsn'] as string | undefined;
  const tgt = target(flags);
  const fromDsn = dsn !== undefined ? parseDsn(dsn) : null;
  const login = fromDsn?.login ?? leaderLogin(flags);
  await using client = new CtlClient(tgt);
  const endpoints = fromDsn ? async () => fromDsn.endpoints : leaderEndpoints(client);
  const drillId = `${hostname()}-${process.pid}-${new Date().toISOString()}`;
  const probe = new Probe(login, endpoints, drillId);
  const json = flags['json'] === true;
  const result = await runDrill(client, probe, o, {
    round: (r, of) => (json ? err(roundLine(r, of)) : out(roundLine(r, of))),
    progress: (l) => err(`drill: ${l}`),
    now: Date.now,
    sleep: (x) => sleep(x),
  });
  const code = exitCode(result.rounds, result.synchronous);
  if (json) out(JSON.stringify(drillJson(result, o.scenario, code), null, 2));
  else out(`\nSummary\n${summaryText(result, o.scenario, code)}`);
  return code;
}

export async function runDrillCommand(argv: readonly string[]): Promise<number> {
  try {
    const { flags, positional } = parseArgs(argv, DRILL_FLAGS);
    if (flags['help']) {
      out(DRILL_HELP);
      return 0;
    }
    if (positional.length) throw new UsageError(`pgkeel drill takes no arguments, got "${positional.join(' ')}"`);
    return await run(flags);
  } catch (e) {
    if (e instanceof UsageError || e instanceof LocalClusterError) {
      err(`pgkeel drill: ${e.message} (${e.code})`);
      return 2;
    }
    if (e instanceof DrillError || e instanceof CtlError) {
      err(`pgkeel drill: ${e.message} (${e.code})`);
      return e instanceof DrillError ? e.exit : 1;
    }
    throw e;
  }
}
