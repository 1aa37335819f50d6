/**
 * Per-login work shared between clients: cancel-key secrets drawn from the CSPRNG in batches, and the
 * ParameterStatus block of the login reply built once per (server parameters, client's tracked values).
 * `pgbench -C` and connection storms spend most of their proxy time in login; this keeps it off the hot path.
 */
import { randomFillSync } from 'node:crypto';
import { buildParameterStatus } from '../../protocol/index.js';
import { type ParamSet, trackedName } from './params.js';

/** One CSPRNG call per 1,024 secrets instead of one per client. */
const SECRETS = Buffer.alloc(4096);
let secretsAt = SECRETS.length;

/** A random 32-bit cancel-key secret (as a signed integer: no Buffer per client). */
export function nextCancelSecret(): number {
  if (secretsAt >= SECRETS.length) {
    randomFillSync(SECRETS);
    secretsAt = 0;
  }
  const v = SECRETS.readInt32BE(secretsAt);
  secretsAt += 4;
  return v;
}

/** Bound per server-parameter map: clients with unique values (application_name) must not grow it forever. */
const MAX_BLOCKS = 256;
const BLOCKS = new WeakMap<ReadonlyMap<string, string>, Map<string, Buffer>>();

/**
 * The ParameterStatus messages a client is sent at login: every server parameter, with the client's own value for
 * tracked ones. `params.key` fixes every tracked value, so equal keys get the same (shared, read-only) buffer.
 */
export function parameterStatusBlock(serverParams: ReadonlyMap<string, string>, params: ParamSet): Buffer {
  let byKey = BLOCKS.get(serverParams);
  if (byKey === undefined) BLOCKS.set(serverParams, (byKey = new Map()));
  const key = params.key;
  let block = byKey.get(key);
  if (block === undefined) {
    const msgs: Buffer[] = [];
    for (const [name, value] of serverParams) {
      const tracked = trackedName(name);
      msgs.push(buildParameterStatus(name, (tracked && params.get(tracked)) ?? value));
    }
    block = Buffer.concat(msgs);
    if (byKey.size >= MAX_BLOCKS) byKey.clear();
    byKey.set(key, block);
  }
  return block;
}
