/**
 * `pgkeel ctl <command>`: patronictl's commands for a pgkeel (or Patroni) cluster — argv → src/ctl/, printing
 * tables and JSON. Exit codes: 0 ok, 1 refused or failed (a CtlError, printed with its code), 2 invalid usage.
 */
import { createInterface } from 'node:readline/promises';
import { DEFAULT_DIR } from '../local/layout.js';
import { CtlClient } from '../ctl/client.js';
import {
  editConfig,
  failover,
  reinit,
  restart,
  setPause,
  showConfig,
  switchover,
  type CtlIo,
} from '../ctl/commands.js';
import { patchFromSets } from '../ctl/edit.js';
import { events } from '../ctl/events.js';
import { parseSince } from '../observe/events/since.js';
import { CtlError } from '../ctl/errors.js';
import { targetFromDir, targetFromFile, targetFromFlags, type CtlTarget } from '../ctl/target.js';
import { historyText, listJson, listText, topologyText } from '../ctl/view.js';
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { ETCD_FLAGS, etcdSectionFromFlags } from './etcd-flags.js';
import { sleep } from '../lib/proc.js';

const out = (s: string) => process.stdout.write(s + '\n');
const err = (s: string) => process.stderr.write(s + '\n');

/** The flags that say which cluster (shared with `pgkeel drill`). */
export const common: Record<string, FlagSpec> = {
  config: {
    type: 'string',
    short: 'c',
    doc: 'node config, or a ctl config with only scope, namespace, etcd3 (+ restapi.authentication, ctl for unsafe calls)',
    placeholder: 'FILE',
  },
  dir: { type: 'string', doc: `local cluster made by \`pgkeel up\` (default ./${DEFAULT_DIR})`, placeholder: 'DIR' },
  ...ETCD_FLAGS,
  scope: { type: 'string', doc: 'with --etcd: the cluster name', placeholder: 'S' },
  namespace: { type: 'string', doc: 'with --etcd: the DCS prefix (default service)', placeholder: 'NS' },
  help: { type: 'boolean', short: 'h', doc: 'show this help' },
};
const force: FlagSpec = { type: 'boolean', doc: 'do not ask for confirmation (needed when stdin is not a terminal)' };
const watch: FlagSpec = {
  type: 'string',
  short: 'W',
  doc: 'refresh every S seconds (default 2) until Ctrl-C',
  placeholder: '[S]',
};

const COMMANDS: Record<string, { args: string; doc: string; flags: Record<string, FlagSpec> }> = {
  list: {
    args: '',
    doc: 'the members: role, state, timeline, lag',
    flags: { json: { type: 'boolean', doc: 'print the stable JSON form' }, watch },
  },
  topology: { args: '', doc: 'the members as a replication tree', flags: { watch } },
  history: {
    args: '',
    doc: 'timeline history (failovers and switchovers)',
    flags: { json: { type: 'boolean', doc: 'print the /history key as JSON' } },
  },
  switchover: {
    args: '',
    doc: 'hand leadership to a healthy replica (graceful)',
    flags: {
      leader: { type: 'string', doc: 'the current leader (default: whoever holds the key)', placeholder: 'NAME' },
      candidate: { type: 'string', doc: 'the member to promote (default: any healthy replica)', placeholder: 'NAME' },
      scheduled: { type: 'string', doc: 'ISO 8601 time, e.g. 2026-01-14T10:00+01:00, or "now"', placeholder: 'TIME' },
      force,
    },
  },
  failover: {
    args: '',
    doc: 'make a named replica the leader, also when there is no leader',
    flags: { candidate: { type: 'string', doc: 'the member to promote (required)', placeholder: 'NAME' }, force },
  },
  restart: { args: '[MEMBER...]', doc: 'restart PostgreSQL on the members (default: all)', flags: { force } },
  reinit: { args: 'MEMBER', doc: "replace a replica's data with a fresh copy of the leader", flags: { force } },
  pause: {
    args: '',
    doc: 'maintenance mode: the agents stop acting (no failover)',
    flags: { wait: { type: 'boolean', doc: 'wait until every member reports it' } },
  },
  resume: {
    args: '',
    doc: 'end maintenance mode',
    flags: { wait: { type: 'boolean', doc: 'wait until every member reports it' } },
  },
  events: {
    args: '',
    doc: "every member's recent events (failovers, restarts, …) merged in time order",
    flags: {
      since: {
        type: 'string',
        doc: 'only events since: a duration back from now (90s, 15m, 1h), an ISO-8601 time or epoch ms',
        placeholder: 'WHEN',
      },
      json: { type: 'boolean', doc: 'a JSON array (with --follow: one JSON object per line)' },
      follow: { type: 'boolean', short: 'f', doc: 'keep printing new events (polls every 2 s) until Ctrl-C' },
    },
  },
  'show-config': { args: '', doc: 'the dynamic configuration in the DCS, as YAML', flags: {} },
  'edit-config': {
    args: '',
    doc: 'change the dynamic configuration (validated by the members)',
    flags: {
      set: {
        type: 'list',
        doc: 'key=value, dotted keys, YAML scalar values (null deletes); repeatable',
        placeholder: 'K=V',
      },
      force,
    },
  },
};

export const CTL_HELP = `Usage: pgkeel ctl <command> [-c node.yml|ctl.yml | --dir DIR | --etcd HOST:PORT[,…] --scope S] [options]

${Object.entries(COMMANDS)
  .map(([k, c]) => `  ${`${k} ${c.args}`.padEnd(22)} ${c.doc}`)
  .join('\n')}

\`pgkeel ctl <command> --help\` lists a command's options. Docs: docs/ctl.md`;

/** `-W` / `--watch` take an optional number: normalise to `--watch=S` before the strict parser sees it. */
function normaliseWatch(argv: readonly string[]): string[] {
  const outv: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '-W' || a === '--watch') {
      const next = argv[i + 1];
      if (next !== undefined && /^\d+(\.\d+)?$/.test(next)) {
        outv.push(`--watch=${next}`);
        i++;
      } else outv.push('--watch=2');
    } else outv.push(a);
  }
  return outv;
}

/** The cluster the flags name: -c FILE, --dir DIR or --etcd … --scope S (shared with `pgkeel drill`). */
export function target(flags: Record<string, unknown>): CtlTarget {
  const file = flags['config'] as string | undefined;
  const dir = flags['dir'] as string | undefined;
  const scope = flags['scope'] as string | undefined;
  const etcd = flags['etcd'] !== undefined;
  if ([file, dir, etcd || undefined].filter((x) => x !== undefined).length > 1)
    throw new UsageError('give one of -c FILE, --dir DIR or --etcd HOST:PORT --scope S');
  if (etcd) {
    if (!scope) throw new UsageError('--etcd needs --scope S (the cluster name)');
    return targetFromFlags(etcdSectionFromFlags(flags), scope, flags['namespace'] as string | undefined);
  }
  const stray = ['scope', 'namespace', ...Object.keys(ETCD_FLAGS)].find((k) => flags[k] !== undefined);
  if (stray) throw new UsageError(`--${stray} is for --etcd HOST:PORT --scope S`);
  return file ? targetFromFile(file) : targetFromDir(dir ?? DEFAULT_DIR);
}

function io(cmd: string): CtlIo {
  return {
    out,
    async confirm(question) {
      if (!process.stdin.isTTY)
        throw new CtlError(
          'CTL_CONFIRM_NEEDED',
          `${cmd} needs a confirmation and stdin is not a terminal: add --force`,
        );
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
      } finally {
        rl.close();
      }
    },
    now: Date.now,
    sleep: (ms) => sleep(ms),
  };
}

async function watchLoop(seconds: number, render: () => Promise<string>): Promise<void> {
  let stop = false;
  let wake: (() => void) | null = null;
  const onSig = () => {
    stop = true;
    wake?.();
  };
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  try {
    while (!stop) {
      let text: string;
      try {
        text = await render();
      } catch (e) {
        text = `pgkeel ctl: ${(e as Error).message}`;
      }
      if (process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
      out(`${new Date().toISOString()}  (every ${seconds} s, Ctrl-C to stop)\n${text}\n`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, seconds * 1000);
      });
    }
  } finally {
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
}

async function run(cmd: string, flags: Record<string, unknown>, positional: string[]): Promise<number> {
  const noPositional = cmd !== 'restart' && cmd !== 'reinit';
  if (noPositional && positional.length)
    throw new UsageError(`pgkeel ctl ${cmd} takes no arguments, got "${positional.join(' ')}"`);
  if (cmd === 'reinit' && positional.length !== 1) throw new UsageError('usage: pgkeel ctl reinit MEMBER [--force]');
  if (cmd === 'failover' && !flags['candidate']) throw new UsageError('pgkeel ctl failover needs --candidate NAME');
  let patch: Record<string, unknown> = {};
  if (cmd === 'edit-config') {
    const sets = (flags['set'] as string[] | undefined) ?? [];
    if (!sets.length)
      throw new UsageError('pgkeel ctl edit-config needs at least one --set key=value (no editor mode yet)');
    const p = patchFromSets(sets);
    if ('error' in p) throw new UsageError(p.error);
    patch = p.patch;
  }
  const sinceText = flags['since'] as string | undefined;
  const since = sinceText === undefined ? undefined : parseSince(sinceText, Date.now());
  if (since === null)
    throw new UsageError(`--since expects a duration (15m, 1h), an ISO-8601 time or epoch ms, got "${sinceText}"`);
  const w = flags['watch'] as string | undefined;
  const every = w === undefined ? null : Number(w);
  if (every !== null && !(every > 0)) throw new UsageError(`--watch expects a number of seconds > 0, got "${w}"`);

  await using client = new CtlClient(target(flags));
  const scope = client.target.scope;
  const force = flags['force'] === true;
  switch (cmd) {
    case 'list':
    case 'topology': {
      const render = async () => {
        const j = listJson(scope, await client.cluster());
        return flags['json'] ? JSON.stringify(j, null, 2) : cmd === 'list' ? listText(j) : topologyText(j);
      };
      if (every !== null) await watchLoop(every, render);
      else out(await render());
      return 0;
    }
    case 'history': {
      const c = await client.cluster();
      out(flags['json'] ? JSON.stringify(c.history) : historyText(c));
      return 0;
    }
    case 'switchover':
      await switchover(client, io(cmd), {
        leader: flags['leader'] as string | undefined,
        candidate: flags['candidate'] as string | undefined,
        scheduled: flags['scheduled'] as string | undefined,
        force,
      });
      return 0;
    case 'failover':
      await failover(client, io(cmd), { candidate: flags['candidate'] as string, force });
      return 0;
    case 'restart':
      return (await restart(client, io(cmd), { members: positional, force })) > 0 ? 1 : 0;
    case 'reinit':
      await reinit(client, io(cmd), { member: positional[0] as string, force });
      return 0;
    case 'pause':
    case 'resume':
      await setPause(client, io(cmd), { pause: cmd === 'pause', wait: flags['wait'] === true });
      return 0;
    case 'events': {
      const stop = new AbortController();
      const onSig = () => stop.abort();
      process.once('SIGINT', onSig);
      process.once('SIGTERM', onSig);
      try {
        await events(
          client,
          { out, warn: err, now: Date.now, sleep: (ms) => sleep(ms, stop.signal).catch(() => {}) },
          { since, json: flags['json'] === true, follow: flags['follow'] === true, signal: stop.signal },
        );
      } finally {
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
      }
      return 0;
    }
    case 'show-config':
      out(await showConfig(client));
      return 0;
    case 'edit-config':
      await editConfig(client, io(cmd), { patch, force });
      return 0;
  }
  return 0;
}

/** The flags that say which cluster, with a value: they may come before the command too, as patronictl's `-c`. */
const TARGET_FLAGS = [
  '-c',
  '--config',
  '--dir',
  '--scope',
  '--namespace',
  ...Object.keys(ETCD_FLAGS).map((k) => `--${k}`),
];

export function commandFirst(argv: readonly string[]): string[] {
  const lead: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i] as string;
    if (TARGET_FLAGS.includes(a.split('=')[0] as string) && a.includes('=')) {
      lead.push(a);
      i += 1;
    } else if (TARGET_FLAGS.includes(a) && i + 1 < argv.length) {
      lead.push(a, argv[i + 1] as string);
      i += 2;
    } else break;
  }
  return [...argv.slice(i, i + 1), ...lead, ...argv.slice(i + 1)];
}

export async function runCtl(argvIn: readonly string[]): Promise<number> {
  const argv = commandFirst(argvIn);
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    out(CTL_HELP);
    return 0;
  }
  const spec = COMMANDS[cmd];
  if (!spec) throw new UsageError(`unknown ctl command "${cmd}"; run \`pgkeel ctl help\``);
  const flagsSpec = { ...common, ...spec.flags };
  const { flags, positional } = parseArgs(normaliseWatch(rest), flagsSpec);
  if (flags['help']) {
    out(`Usage: pgkeel ctl ${cmd} ${spec.args ? spec.args + ' ' : ''}[options]\n\n${spec.doc}\n\n${usage(flagsSpec)}`);
    return 0;
  }
  try {
    return await run(cmd, flags, positional);
  } catch (e) {
    if (!(e instanceof CtlError)) throw e;
    err(`pgkeel ctl: ${e.message} (${e.code})`);
    for (const l of e.detail) err(l);
    return 1;
  }
}
