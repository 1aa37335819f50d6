/**
 * Where each member's PostgreSQL log is and which log_line_prefix wrote it, for `pgkeel report`. The agent starts
 * PostgreSQL with `pg_ctl -l <data_dir>/../postgresql.log` (postgres/instance.ts, serverLogFile) and writes the
 * prefix into <data_dir>/postgresql.pgkeel.conf (postgres/conf.ts), so both are read from there.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../config/load.js';
import type { LocalCluster } from '../../local/layout.js';
import { paths } from '../../local/layout.js';
import { DEFAULT_PARAMETERS, MANAGED_CONF } from '../../postgres/conf.js';
import { serverLogFile } from '../../postgres/instance.js';

export interface MemberLog {
  readonly member: string;
  readonly file: string;
  readonly dataDir: string;
}

/** Every node of a local cluster made by `pgkeel up`: DIR/<node>/postgresql.log (local/layout.ts). */
export function localClusterLogs(lc: LocalCluster): MemberLog[] {
  return lc.nodes.map((n) => {
    const dataDir = join(paths.nodeDir(lc.dir, n.name), 'data');
    return { member: n.name, file: serverLogFile(dataDir), dataDir };
  });
}

/** This node only (a node config holds no other member's paths; run the report on each host for the others). */
export function nodeLogs(configFile: string): MemberLog[] {
  const cfg = loadConfig(configFile);
  return [{ member: cfg.name, file: serverLogFile(cfg.postgresql.data_dir), dataDir: cfg.postgresql.data_dir }];
}

/** A value as postgresql.conf quotes it ('…' with '' and \\ escapes), unquoted; bare values as they are. */
export function unquoteConfValue(raw: string): string {
  const v = raw.trim();
  if (!v.startsWith("'")) return v.replace(/\s*#.*$/, '');
  let out = '';
  for (let i = 1; i < v.length; i++) {
    const c = v[i] as string;
    if (c === '\\' && i + 1 < v.length) out += v[++i];
    else if (c === "'" && v[i + 1] === "'") {
      out += "'";
      i++;
    } else if (c === "'") break;
    else out += c;
  }
  return out;
}

/**
 * The log_line_prefix in effect: the last `log_line_prefix = …` line of the managed file pgkeel wrote, or pgkeel's
 * default when that file cannot be read (another user than the data directory's owner, or no cluster yet).
 */
export function logLinePrefix(dataDir: string): string {
  const fallback = String(DEFAULT_PARAMETERS['log_line_prefix']);
  const file = join(dataDir, MANAGED_CONF);
  let text: string;
  try {
    if (!existsSync(file)) return fallback;
    text = readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
  const lines = text.split('\n').filter((l) => /^\s*log_line_prefix\s*=/.test(l));
  const last = lines.at(-1);
  return last === undefined ? fallback : unquoteConfValue(last.slice(last.indexOf('=') + 1));
}
