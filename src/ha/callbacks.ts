/**
 * User callbacks (postgresql.callbacks), called as Patroni calls them: `<command> <action> <role> <scope>`, so VIP
 * and notification scripts written for Patroni work unchanged. Fire and forget: a slow or failing script is logged
 * and never blocks the HA loop. As root they run as the `postgres` OS user (as under Patroni, which runs as
 * postgres) unless the node's local file sets postgresql.callbacks_as_root.
 */
import { spawn } from 'node:child_process';
import { postgresIdentity } from '../lib/proc.js';
import type { CallbackName } from '../config/node.js';
import type { AgentContext } from './state.js';

const CALLBACK_TIMEOUT_MS = 60_000;

export function runCallback(ctx: Pick<AgentContext, 'cfg' | 'log'>, name: CallbackName, role: string): void {
  const cmd = ctx.cfg.postgresql.callbacks[name];
  if (!cmd) return;
  // Patroni passes the command through shlex and appends the arguments; a shell gives the same word splitting.
  const patroniRole = role === 'primary' ? 'master' : role;
  const id = ctx.cfg.postgresql.callbacks_as_root ? null : postgresIdentity();
  // PGKEEL_* variables may carry the agent's secrets (PGKEEL_RESTAPI_PASSWORD): not for a script running as postgres.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PGKEEL_')));
  const as = id
    ? { uid: id.uid, gid: id.gid, cwd: '/', env: { ...env, HOME: id.home, USER: 'postgres', LOGNAME: 'postgres' } }
    : {};
  const child = spawn('/bin/sh', ['-c', `${cmd} "$@"`, 'callback', name, patroniRole, ctx.cfg.scope], {
    stdio: 'ignore',
    detached: false,
    ...as,
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), CALLBACK_TIMEOUT_MS);
  child.on('error', (err) => ctx.log.warn(`callback ${name} could not run`, { err }));
  child.on('exit', (code) => {
    clearTimeout(timer);
    if (code !== 0) ctx.log.warn(`callback ${name} exited with ${code}`, { command: cmd });
  });
}
