/**
 * Can the PostgreSQL OS user reach a path? When pgkeel runs as root and a data directory sits below a directory
 * only root may enter (a `mktemp -d` is 0700), initdb and pg_basebackup fail as `postgres` with a bare
 * "Permission denied" — over and over. The agent checks once at start and refuses with the directory and the fix.
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export interface Identity {
  readonly uid: number;
  readonly gids: readonly number[];
}

/** The first existing directory on the way to `path` that `who` cannot traverse (no execute permission), or null. */
export function blockedAncestor(
  path: string,
  who: Identity,
  stat: (p: string) => { uid: number; gid: number; mode: number } | null = statOrNull,
): string | null {
  if (who.uid === 0) return null;
  const chain: string[] = [];
  for (let p = resolve(path); ; p = dirname(p)) {
    chain.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const dir of chain) {
    const st = stat(dir);
    if (!st) return null; // what does not exist yet is created by pgkeel with the right owner
    const bit = st.uid === who.uid ? 0o100 : who.gids.includes(st.gid) ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return dir;
  }
  return null;
}

function statOrNull(p: string): { uid: number; gid: number; mode: number } | null {
  try {
    const st = statSync(p);
    return st.isDirectory() ? { uid: st.uid, gid: st.gid, mode: st.mode } : null;
  } catch {
    return null;
  }
}

/** uid and every group of an OS user (`id`), for `blockedAncestor`. */
export function identityOf(user: string): Identity {
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
  const gids = execFileSync('id', ['-G', user], { encoding: 'utf8' }).trim().split(/\s+/).map(Number);
  return { uid, gids };
}
