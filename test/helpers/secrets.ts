/**
 * "Every log of a test run grepped for every password of the run": the secrets a local cluster made (every string
 * under a key that names a password, token or secret in DIR/**.json — cluster.json, etcd/auth.json — and DIR/**.yml) must appear in no log file
 * under DIR — agent logs, PostgreSQL logs, etcd and proxy logs.
 */
import { readdirSync, readFileSync, type Stats, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const SECRET_KEY = /password|secret|token|passphrase/i;

function collect(v: unknown, key: string, out: Set<string>): void {
  if (typeof v === 'string') {
    if (SECRET_KEY.test(key) && !/_file$/.test(key) && v.length >= 8) out.add(v);
  } else if (Array.isArray(v)) for (const x of v) collect(x, key, out);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) collect(x, k, out);
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    let st: Stats;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) {
      if (name === 'data' || name.endsWith('-ssl') || name === 'tls') continue; // PostgreSQL's and the CA's own files
      walk(p, out);
    } else out.push(p);
  }
  return out;
}

/** The secrets of the cluster in `dir`, from its cluster.json and config files. */
export function clusterSecrets(dir: string): string[] {
  const out = new Set<string>();
  for (const f of walk(dir)) {
    if (f.endsWith('.json')) collect(JSON.parse(readFileSync(f, 'utf8')), '', out);
    else if (f.endsWith('.yml')) collect(parse(readFileSync(f, 'utf8')), '', out);
  }
  return [...out];
}

/** Log files under `dir` that contain one of `secrets`: [file, the secret's first 4 characters]. */
export function leakedSecrets(dir: string, secrets: readonly string[]): Array<[string, string]> {
  const leaks: Array<[string, string]> = [];
  for (const f of walk(dir).filter((p) => p.endsWith('.log'))) {
    const text = readFileSync(f, 'utf8');
    for (const s of secrets) if (text.includes(s)) leaks.push([f, `${s.slice(0, 4)}…`]);
  }
  return leaks;
}
