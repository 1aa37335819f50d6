/**
 * PostgreSQL TLS, both sides: whether the server has `ssl` on, libpq's TLS settings for connections to other members
 * (primary_conninfo, pg_basebackup, pg_rewind — Patroni's `postgresql.authentication.<role>.ssl*` keys), and which
 * certificate and key files the agent hands to PostgreSQL.
 *
 * Why copies: when pgkeel runs as root, PostgreSQL and its tools run as `postgres`, and both the server and libpq
 * refuse a private key that is not owned by them with mode 0600 (or root-owned 0640 with their group). So the agent
 * copies each file named in the node's LOCAL config into "<data_dir>-ssl" (beside the data directory, not in it:
 * pg_basebackup and pg_rewind copy the data directory), owned by postgres, 0600. Never a file named only in the DCS:
 * whoever can write the dynamic config would make root copy any file for postgres. And root reads a file only
 * through directories the postgres user cannot change (`rootTrustedPath`); a file postgres could swap for a symlink
 * is left for PostgreSQL to read with its own rights.
 */
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import type { NodeConfig, SslClient, SslMode } from '../config/node.js';

export type Parameters = Readonly<Record<string, string | number | boolean>>;

/** Server parameters naming files PostgreSQL reads (https://www.postgresql.org/docs/15/runtime-config-connection.html#RUNTIME-CONFIG-CONNECTION-SSL). */
export const SERVER_FILE_PARAMETERS = ['ssl_cert_file', 'ssl_key_file', 'ssl_ca_file', 'ssl_crl_file'] as const;
/** libpq connection parameters naming files (https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-PARAMKEYWORDS). */
export const CLIENT_FILE_KEYS = ['sslrootcert', 'sslcert', 'sslkey', 'sslcrl'] as const;
export type Role = 'superuser' | 'replication';

/** PostgreSQL's boolean spelling: on, true, yes, 1 and their unique prefixes (case-insensitive). */
export function isOn(v: string | number | boolean | undefined): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v === 1;
  return typeof v === 'string' && /^(on|t|tr|tru|true|y|ye|yes|1)$/i.test(v.trim());
}

/** Setting name → the path PostgreSQL is given instead (the postgres-owned copy); empty when nothing is copied. */
export type TlsFiles = Readonly<Record<string, string>>;

export interface TlsFile {
  /** 'ssl_key_file' for a server parameter, 'replication.sslkey' for a client key. */
  readonly setting: string;
  /** The configured file, absolute. */
  readonly source: string;
  readonly copy: string;
}

/** Where the agent puts the copies. */
export function tlsCopyDir(cfg: NodeConfig): string {
  return `${cfg.postgresql.data_dir}-ssl`;
}

/** The files named in the local config that PostgreSQL or its tools read (server parameters are relative to the data directory, as PostgreSQL resolves them). */
export function tlsFilePlan(cfg: NodeConfig): TlsFile[] {
  const dir = tlsCopyDir(cfg);
  const out: TlsFile[] = [];
  for (const p of SERVER_FILE_PARAMETERS) {
    const v = cfg.postgresql.parameters[p];
    if (typeof v === 'string' && v !== '')
      out.push({ setting: p, source: resolve(cfg.postgresql.data_dir, v), copy: join(dir, p) });
  }
  for (const role of ['superuser', 'replication'] as const) {
    const a = cfg.postgresql.authentication[role];
    for (const k of CLIENT_FILE_KEYS) {
      const v = a[k];
      if (v) out.push({ setting: `${role}.${k}`, source: v, copy: join(dir, `${role}.${k}`) });
    }
  }
  return out;
}

/** Patroni's rule made explicit: a CA to check against means the members' certificates are checked, host name included. */
export function sslModeOf(a: SslClient): SslMode {
  return a.sslmode ?? (a.sslrootcert ? 'verify-full' : 'prefer');
}

/** libpq TLS parameters for a connection to another member as `role`. */
export function clientSslPairs(cfg: NodeConfig, role: Role, files: TlsFiles): Array<[string, string]> {
  const a = cfg.postgresql.authentication[role];
  const pairs: Array<[string, string]> = [['sslmode', sslModeOf(a)]];
  for (const k of CLIENT_FILE_KEYS) {
    const v = a[k];
    if (v) pairs.push([k, files[`${role}.${k}`] ?? v]);
  }
  return pairs;
}

/** The server parameters with copied files substituted (local settings only ever name copied files). */
export function serverFileParameters(files: TlsFiles): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of SERVER_FILE_PARAMETERS) if (files[p]) out[p] = files[p] as string;
  return out;
}

export interface Who {
  readonly uid: number;
  readonly gids: readonly number[];
}

type Lstat = (p: string) => Stats;

/** Could `who` add, remove or rename entries in this directory? */
function canWrite(dir: Stats, who: Who): boolean {
  if (dir.uid === who.uid) return true;
  if (dir.mode & 0o020 && who.gids.includes(dir.gid)) return true;
  return (dir.mode & 0o002) !== 0;
}

/**
 * Resolves `path` one component at a time, following symlinks, and returns the real path — or null when an entry on
 * the way sits in a directory `who` could change (so `who` could have planted a symlink to a file it may not read).
 * In a sticky directory (/tmp) an entry owned by someone else cannot be renamed or removed by `who`, so it counts as
 * safe. Throws (ENOENT, ELOOP-like) when the path does not resolve.
 */
export function rootTrustedPath(
  path: string,
  who: Who,
  lstat: Lstat = lstatSync,
  readlink: (p: string) => string = readlinkSync,
): string | null {
  let parts = resolve(path).split('/').filter(Boolean);
  let cur = '/';
  let hops = 0;
  while (parts.length) {
    const name = parts.shift() as string;
    if (name === '.') continue;
    if (name === '..') {
      cur = resolve(cur, '..');
      continue;
    }
    const dir = lstat(cur);
    const next = join(cur, name);
    const st = lstat(next);
    if (canWrite(dir, who)) {
      const sticky = (dir.mode & 0o1000) !== 0;
      if (!sticky || st.uid === who.uid || dir.uid === who.uid) return null;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) throw new Error(`${path}: too many levels of symbolic links`);
      const target = readlink(next);
      parts = [...target.split('/').filter(Boolean), ...parts];
      if (target.startsWith('/')) cur = '/';
      continue;
    }
    if (parts.length && !st.isDirectory()) throw new Error(`${path}: ${next} is not a directory`);
    cur = next;
  }
  return cur;
}
