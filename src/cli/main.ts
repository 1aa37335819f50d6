#!/usr/bin/env node
/**
 * pgkeel's command line: argv → command. Policy lives in the components; this file parses, calls and prints.
 * Exit codes: 0 ok, 1 failure, 2 invalid usage or configuration.
 */
import { ConfigError } from '../config/schema.js';
import { checkConfigFile } from './config-check.js';
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { runAgent } from './agent-cmd.js';
import { runCtl } from './ctl-cmd.js';
import { runDrillCommand } from './drill-cmd.js';
import { runInit } from './init-cmd.js';
import { runReady } from './ready-cmd.js';
import { runFence } from './fence-cmd.js';
import { runBackupCommand } from './backup-cmd.js';
import { runDumpCommand } from './dump-cmd.js';
import { runProxyCommand } from './proxy-cmd.js';
import { runWalCommand } from './wal-cmd.js';
import { runRestoreCommand } from './restore-cmd.js';
import { runReportCommand } from './report-cmd.js';
import { runMeshCommand } from './mesh-cmd.js';
import { downMesh, localMeshStatus, readLocalMesh, upMesh } from '../mesh/local.js';
import { DEFAULT_DIR, LocalClusterError, readLocalCluster } from '../local/layout.js';
import { up } from '../local/up.js';
import type { RestoreFromOptions } from '../local/up-restore.js';
import { tlsFiles } from '../local/tls.js';
import { down } from '../local/down.js';
import { localStatus } from '../local/status.js';
import { backupLine, connectionStrings, statusTable } from './status-text.js';
import { PGKEEL_VERSION } from '../ha/agent.js';
import { checkText } from '../mesh/compare.js';
import { meshStatusText, type MeshStatus } from '../mesh/status.js';

const out = (s: string) => process.stdout.write(s + '\n');
const err = (s: string) => process.stderr.write(s + '\n');

const HELP = `pgkeel ${PGKEEL_VERSION} — PostgreSQL high availability in one system

Usage: pgkeel <command> [options]

Local cluster:
  up       start (or resume) a local cluster: etcd + one agent per node   [--nodes N] [--dir DIR] [--port-base P] [--detach] [--tls]
           a new cluster from another's backup, as it was at T:  --dir NEW --restore-from OLD/backup [--target-time T | --target-lsn L] [--key-file F]
  down     stop a local cluster started with up (data stays)               [--dir DIR]
  status   show the cluster's members and backups                           [--dir DIR] [--json]

Node:
  agent    run one node's agent in the foreground                          -c node.yml
  config   check a node or proxy config and print every problem               check -c node.yml | check -c proxy.yml [--proxy]
  init     print a node config for this host (docs/deploy.md)   --scope S --name N --etcd HOST:PORT[,…] [--listen IP] [--secrets-from DIR]
  ready    wait until this node's agent answers /liveness (systemd ExecStartPost)   -c node.yml [--timeout S]
  fence    stop this node's PostgreSQL immediately (systemd ExecStop when the agent died)   -c node.yml

Proxy (a leader-following pooler, like pgBouncer + HAProxy):
  proxy    run a proxy in the foreground     -c proxy.yml | --listen HOST:PORT (--primary HOST:PORT | --etcd HOST:PORT --scope NAME)
           [--replica HOST:PORT ...] [--pool-mode session|transaction] [--pool-size N] [--max-client-conn N]
           [--auth scram-sha-256|md5|trust] [--auth-file userlist.txt]; \`pgkeel proxy --help\`

Backup and point-in-time recovery (like pgBackRest; docs/backup.md):
  backup   take a backup and wait                [--dir DIR | -c node.yml] [--type full|incr|diff] [--from auto|leader|replica|NAME] [--json]
           backup list [--json] | backup verify [ID] [--restore] | backup expire [--dry-run]
  dump     pg_dumpall --globals-only + pg_dump -Fd of every database   [--dir DIR | -c node.yml] [--from WHO] [--jobs N]; dump list | dump expire
  restore  fill an empty data directory from the backups, to a point in time   --to DATADIR [--dir DIR | -c node.yml | --repo R]
           [--target-time T | --target-lsn L | --target-xid X | --target-name N | --target immediate]
           [--target-action promote|pause|shutdown] [--start --port P]; \`pgkeel restore --help\`

Observe (docs/observe.md):
  report   pgBadger's HTML report of the PostgreSQL logs (slow queries, locks, checkpoints)   [--dir DIR | -c node.yml]
           [--since 24h] [--out report.html]

Multi-master (pglogical; docs/multi-master.md):
  up       --mesh 2|3 [--nodes N]: that many local clusters (sites) joined into a mesh   --dir DIR [--port-base P]
  mesh     create | check [--table T] | status [--json] | conflicts [--since 1h] | preflight | sequences [--apply]
           | ddl "SQL" | add-site | remove-site --remove S   (--dir DIR | --site DIR|node.yml --site …)

Cluster management (like patronictl):
  ctl      list, topology, history, switchover, failover, restart, reinit,   [-c node.yml | --dir DIR]
           pause, resume, show-config, edit-config; \`pgkeel ctl help\`
  drill    fault drill on a staging cluster: RTO, RPO, healed?   --scenario kill-leader|switchover|partition-leader
           [--rounds N] [-c node.yml | --dir DIR] [--dsn URL] [--json]; docs/drill.md

  version  print the version
  help     this text; \`pgkeel <command> --help\` for a command's options

Docs: README.md, docs/config.md, docs/architecture.md, docs/deploy.md`;

const dirFlag: FlagSpec = { type: 'string', doc: `cluster directory (default ./${DEFAULT_DIR})`, placeholder: 'DIR' };
const SPECS: Record<string, Record<string, FlagSpec>> = {
  up: {
    nodes: { type: 'number', doc: 'number of nodes (default 3; only when creating)', placeholder: 'N' },
    dir: dirFlag,
    'port-base': {
      type: 'number',
      doc: 'first port: etcd P, proxy P+2/P+3, PostgreSQL P+11.., REST P+21.. (default 25400)',
      placeholder: 'P',
    },
    detach: { type: 'boolean', doc: 'return once the cluster is healthy; stop it later with `pgkeel down`' },
    tls: {
      type: 'boolean',
      doc: 'create the cluster with TLS: a CA and certificates in DIR/tls, etcd over https with client certificates and a user, PostgreSQL ssl with hostssl and verify-full replication (only when creating; kept by later `up`s)',
    },
    timeout: { type: 'number', doc: 'seconds to wait for a healthy cluster (default 120)', placeholder: 'S' },
    mesh: {
      type: 'number',
      doc: 'start that many sites (2 or 3; local clusters in DIR/siteK, --nodes each, default 1) and join them into a multi-master mesh (docs/multi-master.md)',
      placeholder: 'N',
    },
    'restore-from': {
      type: 'string',
      doc: "create the cluster from another cluster's backup repository (e.g. OLD/backup): the first node restores a backup and the archived WAL to the target and promotes, the others clone from it; the new cluster archives into DIR/backup (only when creating)",
      placeholder: 'REPO',
    },
    'target-time': {
      type: 'string',
      doc: 'with --restore-from: recover to this time (ISO 8601 with a zone); default: all archived WAL',
      placeholder: 'T',
    },
    'target-lsn': { type: 'string', doc: 'with --restore-from: recover to this WAL position', placeholder: 'LSN' },
    'key-file': {
      type: 'string',
      doc: "with --restore-from: the repository's encryption key file",
      placeholder: 'FILE',
    },
    help: { type: 'boolean', short: 'h', doc: 'show this help' },
  },
  down: { dir: dirFlag, help: { type: 'boolean', short: 'h', doc: 'show this help' } },
  status: {
    dir: dirFlag,
    json: { type: 'boolean', doc: 'print the stable JSON form' },
    help: { type: 'boolean', short: 'h', doc: 'show this help' },
  },
  agent: {
    config: { type: 'string', short: 'c', doc: 'node config file (YAML)', placeholder: 'FILE' },
    'log-format': { type: 'string', doc: "json or text (default: the config's log.format)", placeholder: 'FORMAT' },
    help: { type: 'boolean', short: 'h', doc: 'show this help' },
  },
  config: {
    config: { type: 'string', short: 'c', doc: 'node or proxy config file (YAML)', placeholder: 'FILE' },
    proxy: {
      type: 'boolean',
      doc: 'check it as a proxy config (default: a top-level listen key without scope means proxy)',
    },
    help: { type: 'boolean', short: 'h', doc: 'show this help' },
  },
};

function requireLocal(dir: string) {
  const lc = readLocalCluster(dir);
  if (!lc)
    throw new LocalClusterError(
      `no pgkeel cluster in ${dir} (no cluster.json); start one with \`pgkeel up --dir ${dir}\``,
    );
  return lc;
}

/** `up --restore-from REPO [--target-time T | --target-lsn L] [--key-file F]`; the target flags need it. */
function restoreFromFlags(flags: Record<string, unknown>): RestoreFromOptions | undefined {
  const str = (k: string) => flags[k] as string | undefined;
  const repo = str('restore-from');
  if (repo === undefined) {
    const stray = ['target-time', 'target-lsn', 'key-file'].find((k) => str(k) !== undefined);
    if (stray) throw new UsageError(`--${stray} is for --restore-from`);
    return undefined;
  }
  if (str('target-time') !== undefined && str('target-lsn') !== undefined)
    throw new UsageError('give at most one recovery target: --target-time or --target-lsn');
  return { repo, keyFile: str('key-file'), targetTime: str('target-time'), targetLsn: str('target-lsn') };
}

/** `up --mesh N`: the sites of a local mesh, then the mesh (src/mesh/local.ts); always detached. */
async function upMeshCommand(
  dir: string,
  flags: Record<string, unknown>,
  progress: (l: string) => void,
): Promise<number> {
  const stray = ['tls', 'restore-from'].find((k) => flags[k] !== undefined && flags[k] !== false);
  if (stray) throw new UsageError(`--${stray} is not available with --mesh yet`);
  const r = await upMesh({
    dir,
    sites: flags['mesh'] as number,
    nodes: flags['nodes'] as number | undefined,
    portBase: flags['port-base'] as number | undefined,
    timeoutMs: ((flags['timeout'] as number | undefined) ?? 120) * 1000,
    progress,
  });
  const n = r.created.changes.length;
  out(n ? `\nmesh of ${r.mesh.sites} sites: ${n} change(s)` : '\nmesh complete: nothing changed');
  for (const l of checkText(r.created.check)) out(l);
  out(`\nRunning in the background. Status: pgkeel status --dir ${dir}; stop with: pgkeel down --dir ${dir}`);
  return r.created.check.converged ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    out(HELP);
    return 0;
  }
  if (cmd === 'version' || cmd === '--version') {
    out(`pgkeel ${PGKEEL_VERSION}`);
    return 0;
  }
  if (cmd === 'ctl') return runCtl(rest);
  if (cmd === 'init') return runInit(rest);
  if (cmd === 'ready') return runReady(rest);
  if (cmd === 'fence') return runFence(rest);
  if (cmd === 'proxy') return runProxyCommand(rest);
  if (cmd === 'backup') return runBackupCommand(rest);
  if (cmd === 'dump') return runDumpCommand(rest);
  if (cmd === 'archive-push' || cmd === 'archive-get') return runWalCommand(cmd, rest);
  if (cmd === 'restore') return runRestoreCommand(rest);
  if (cmd === 'report') return runReportCommand(rest);
  if (cmd === 'drill') return runDrillCommand(rest);
  if (cmd === 'mesh') return runMeshCommand(rest);
  const spec = SPECS[cmd];
  if (!spec) throw new UsageError(`unknown command "${cmd}"; run \`pgkeel help\``);
  const { flags, positional } = parseArgs(rest, spec);
  if (flags['help']) {
    out(`Usage: pgkeel ${cmd} [options]\n\n${usage(spec)}`);
    return 0;
  }
  const dir = (flags['dir'] as string | undefined) ?? DEFAULT_DIR;
  switch (cmd) {
    case 'agent': {
      const file = flags['config'] as string | undefined;
      if (!file) throw new UsageError('pgkeel agent needs -c node.yml');
      const fmt = flags['log-format'] as string | undefined;
      if (fmt !== undefined && fmt !== 'json' && fmt !== 'text')
        throw new UsageError(`--log-format expects json or text, got "${fmt}"`);
      return runAgent(file, fmt);
    }
    case 'config': {
      if (positional[0] !== 'check') throw new UsageError('usage: pgkeel config check -c node.yml|proxy.yml [--proxy]');
      const file = flags['config'] as string | undefined;
      if (!file) throw new UsageError('pgkeel config check needs -c node.yml or -c proxy.yml');
      out(checkConfigFile(file, flags['proxy'] === true));
      return 0;
    }
    case 'up': {
      const progress = (l: string) => out(`  ${l}`);
      // A mesh directory resumes as a mesh (its sites, then `mesh create`, which changes nothing on a complete mesh).
      const meshDir = readLocalMesh(dir);
      if (flags['mesh'] !== undefined || meshDir)
        return upMeshCommand(dir, { ...flags, mesh: flags['mesh'] ?? meshDir?.sites }, progress);
      const res = await up({
        dir,
        nodes: flags['nodes'] as number | undefined,
        portBase: flags['port-base'] as number | undefined,
        tls: flags['tls'] === true,
        timeoutMs: ((flags['timeout'] as number | undefined) ?? 120) * 1000,
        restoreFrom: restoreFromFlags(flags),
        progress,
      });
      out('');
      out(statusTable(res.status));
      out('');
      for (const l of connectionStrings(res.status)) out(l);
      const b = backupLine(res.status);
      if (b) out(b);
      if (res.status.dashboard) out(`dashboard: ${res.status.dashboard}`);
      if (res.cluster.tls)
        out(
          `TLS: PostgreSQL accepts TCP connections only over TLS; check the server with "sslmode=verify-full sslrootcert=${tlsFiles.caCert(res.cluster.dir)}"`,
        );
      if (flags['detach']) {
        out(`\nRunning in the background. Stop with: pgkeel down --dir ${dir}`);
        return 0;
      }
      out('\nPress Ctrl-C to stop the cluster (data stays; `pgkeel up` resumes it).');
      await new Promise<void>((resolve) => {
        // A pending promise alone does not keep Node running; the interval does, until a signal arrives.
        const keepAlive = setInterval(() => {}, 60_000);
        const stop = () => {
          clearInterval(keepAlive);
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      out('\nstopping...');
      await down(res.cluster, progress);
      return 0;
    }
    case 'down': {
      const mesh = readLocalMesh(dir);
      if (mesh) await downMesh(mesh, (l) => out(`  ${l}`));
      else await down(requireLocal(dir), (l) => out(`  ${l}`));
      out('stopped');
      return 0;
    }
    case 'status': {
      const mesh = readLocalMesh(dir);
      const s = mesh ? await localMeshStatus(mesh) : await localStatus(requireLocal(dir));
      if (flags['json']) out(JSON.stringify(s, null, 2));
      else {
        const m = (s as { mesh?: MeshStatus | null }).mesh;
        if (m) for (const l of meshStatusText(m)) out(l);
        out(`Cluster ${s.scope} (etcd ${s.etcd})`);
        out(statusTable(s));
        if (s.proxy) out(`\nproxy: read-write ${s.proxy.rw}, read-only ${s.proxy.ro}`);
        const b = backupLine(s);
        if (b) out(b);
        if (s.dashboard) out(`dashboard: ${s.dashboard}`);
        if (s.error) err(`\n${s.error}`);
      }
      return s.error ? 1 : 0;
    }
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    if (e instanceof ConfigError) {
      err(e.message);
      process.exit(2);
    }
    if (e instanceof UsageError) {
      err(`pgkeel: ${e.message}`);
      process.exit(2);
    }
    err(`pgkeel: ${e.message}`);
    if ((e as { detail?: string }).detail) err((e as { detail?: string }).detail as string);
    process.exit(1);
  },
);
