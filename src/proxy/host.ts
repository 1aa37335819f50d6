/**
 * What a client session needs from its proxy: configuration, the auth file, pools, cancel keys and the admin
 * console. An interface so client.ts does not depend on the proxy's wiring (proxy.ts implements it).
 */
import type { ScramKeys } from '../protocol/index.js';
import type { AuthFile } from './auth/auth-file.js';
import type { SecretLookup } from './auth/auth-query.js';
import type { AuthRandom, ScramSecretCache } from './auth/client-auth.js';
import type { ClientConn } from './session/client.js';
import type { ProxyConfig } from './config.js';
import type { PoolEntry, Role } from './pool/pools.js';
import type { SecurityLog } from './security-log.js';
import type { ClientTls } from './tls.js';

export interface ProxyHost {
  readonly config: ProxyConfig;
  readonly authFile: AuthFile;
  readonly hasAuthFile: boolean;
  readonly authRandom: AuthRandom;
  readonly scramCache: ScramSecretCache;
  /** client_tls_*: how SSLRequest is answered (replaced on RELOAD). */
  readonly clientTls: ClientTls;
  /** Failed logins and protocol violations, rate-limited (security-log.ts). */
  readonly securityLog: SecurityLog;
  /** Prepared statements some server accepted (answered locally between transactions). */
  readonly knownStatements: ReadonlySet<string>;
  /** Monotonic milliseconds (the proxy's clock, clock.ts). */
  now(): number;
  /** Wall-clock milliseconds (the proxy's clock): connect and request times. */
  wallNow(): number;
  /** wallNow() refreshed by the janitor: cheap activity stamps. */
  coarseNow(): number;
  /** A fresh cancel-key process id for a new client. */
  issuePid(): number;
  /** max_client_conn and shutdown checks once a StartupMessage arrived; throws a ProxyError to refuse. */
  admit(c: ClientConn): void;
  /** The client is gone. */
  forget(c: ClientConn): void;
  /** A CancelRequest: forwarded to the server running the matching client's query, if any. */
  cancel(pid: number, secret: Buffer): void;
  rememberScramKeys(user: string, keys: ScramKeys): void;
  /** The secret a login is checked against: the auth file's now, or auth_query's later (auth-query.ts lookupSecret). */
  userSecret(user: string, database: string, admin: boolean): SecretLookup;
  /** Throws PROXY_ADMIN_DENIED when the user may not use the admin console. */
  checkAdmin(c: ClientConn): void;
  adminParams(): ReadonlyMap<string, string>;
  poolFor(role: Role, database: string, user: string): PoolEntry;
  serverParams(e: PoolEntry): Promise<ReadonlyMap<string, string>>;
  /** One admin console query → the messages answering it (without ReadyForQuery); a promise with several workers. */
  admin(c: ClientConn, sql: string): Buffer[] | Promise<Buffer[]>;
}
