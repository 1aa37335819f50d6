/**
 * Turning on etcd authentication for a cluster pgkeel runs itself (`pgkeel up --tls`, tests), through the JSON
 * gateway — the same calls as `etcdctl user add` / `role add` / `role grant-permission` / `user grant-role` /
 * `auth enable`:
 *   - `root` (etcd requires it, with the `root` role, before auth can be enabled) with its own password;
 *   - one user for pgkeel (agents, proxy, ctl) whose role may read and write only the given key prefixes;
 *   - then `auth enable`.
 * Idempotent: when the pgkeel user can already log in, nothing is done (a resumed cluster); before `auth enable`
 * every step tolerates "already exists" and resets the passwords, so an interrupted setup simply runs again.
 * The passwords travel only in request bodies; no error message contains them.
 */
import { b64, rangeEnd, text, type Json } from './etcd-codec.js';
import { attempt, endpointsOf, EtcdTransport, type EtcdProtocol, type EtcdTlsMaterial } from './etcd-transport.js';
import { StoreError } from './store.js';
import { authRefusal, isAuthDisabled } from './etcd-auth.js';

export interface EtcdAuthPlan {
  readonly rootPassword: string;
  readonly username: string;
  readonly password: string;
  /** Key prefixes the user may read and write, e.g. ["/service/"]. */
  readonly prefixes: readonly string[];
}

export interface EtcdAdminTarget {
  /** "host:port" of the member to set up (one is enough: users and roles are replicated). */
  readonly endpoint: string;
  readonly protocol: EtcdProtocol;
  readonly tls?: EtcdTlsMaterial;
  readonly timeoutMs: number;
}

/** Resolves 'enabled' when this call turned authentication on, 'already' when the user could already log in. */
export async function ensureEtcdAuth(target: EtcdAdminTarget, plan: EtcdAuthPlan): Promise<'enabled' | 'already'> {
  if (plan.username === 'root') throw new Error('ensureEtcdAuth: the pgkeel user must not be root');
  const transport = new EtcdTransport(target.protocol, target.tls);
  const ep = endpointsOf([target.endpoint])[0] as ReturnType<typeof endpointsOf>[number];
  const closing = new AbortController();
  const call = async (
    path: string,
    body: Json,
    tolerate?: RegExp,
  ): Promise<{ ok: true } | { ok: false; reason: string }> => {
    const out = await attempt(transport, ep, path, JSON.stringify(body), {}, target.timeoutMs, closing.signal);
    if (out.kind === 'ok') return { ok: true };
    if (tolerate?.test(out.reason)) return { ok: false, reason: out.reason };
    throw new StoreError(
      out.kind === 'unavailable' ? 'DCS_UNAVAILABLE' : 'DCS_REQUEST',
      `etcd ${ep.text} ${path}: ${out.reason}`,
      ep.text,
    );
  };
  try {
    const login = await attempt(
      transport,
      ep,
      '/v3/auth/authenticate',
      JSON.stringify({ name: plan.username, password: plan.password }),
      {},
      target.timeoutMs,
      closing.signal,
    );
    if (login.kind === 'ok' && text(login.json, 'token') !== '') return 'already';
    if (login.kind === 'unavailable')
      throw new StoreError('DCS_UNAVAILABLE', `etcd ${ep.text} /v3/auth/authenticate: ${login.reason}`, ep.text);
    if (login.kind === 'refused' && !isAuthDisabled(login.reason)) {
      throw (
        authRefusal(ep.text, '/v3/auth/authenticate', login.reason, plan.username) ??
        new StoreError('DCS_REQUEST', `etcd ${ep.text} /v3/auth/authenticate: ${login.reason}`, ep.text)
      );
    }
    const exists = /already exists/;
    for (const [name, password] of [
      ['root', plan.rootPassword],
      [plan.username, plan.password],
    ] as const) {
      const added = await call('/v3/auth/user/add', { name, password }, exists);
      if (!added.ok) await call('/v3/auth/user/changepw', { name, password });
    }
    await call('/v3/auth/role/add', { name: 'root' }, exists);
    await call('/v3/auth/user/grant', { user: 'root', role: 'root' });
    const role = plan.username;
    await call('/v3/auth/role/add', { name: role }, exists);
    for (const prefix of plan.prefixes) {
      await call('/v3/auth/role/grant', {
        name: role,
        perm: { permType: 'READWRITE', key: b64(prefix), range_end: rangeEnd(prefix) },
      });
    }
    await call('/v3/auth/user/grant', { user: plan.username, role });
    await call('/v3/auth/enable', {});
    return 'enabled';
  } finally {
    closing.abort();
    transport.destroy();
  }
}
