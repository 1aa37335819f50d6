/**
 * Entry of the VIP guard process (guard.ts explains it): `node guard-main.js <address> <prefix> <dev> [json|text]`, started by
 * the agent with a pipe on stdin. Removes the address with `ip addr del` when the pipe closes or a hold runs out.
 */
import { spawnSync } from 'node:child_process';
import { createLogger } from '../lib/log.js';
import { runGuard } from './guard.js';

const [address, prefix, dev, format] = process.argv.slice(2);
const log = createLogger({ format: format === 'text' ? 'text' : 'json' }, { component: 'vip-guard' });
if (!address || !prefix || !dev) {
  process.stderr.write('usage: guard-main.js <address> <prefix> <dev>\n');
  process.exit(2);
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => {});
await runGuard(process.stdin, (why) => {
  const r = spawnSync('ip', ['addr', 'del', `${address}/${prefix}`, 'dev', dev], { encoding: 'utf8', timeout: 5000 });
  if (r.status === 0) log.warn(`the VIP guard removed ${address}/${prefix} from ${dev}: ${why}`);
});
process.exit(0);
