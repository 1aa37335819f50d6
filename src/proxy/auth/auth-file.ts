/**
 * pgBouncer's auth_file (userlist.txt): one `"user" "secret"` per line, a `"` inside a field doubled; the secret is
 * a plaintext password, an md5 hash ("md5" + 32 hex digits) or a SCRAM-SHA-256 verifier. Lines that do not start
 * with `"` (comments, blank lines) are skipped, as pgBouncer's loader does (src/loader.c).
 */
import { readFileSync } from 'node:fs';
import { isMd5Secret, isScramVerifier } from '../../protocol/index.js';

export type SecretKind = 'plain' | 'md5' | 'scram';

export interface UserSecret {
  readonly user: string;
  readonly secret: string;
  readonly kind: SecretKind;
}

export interface AuthFileProblem {
  readonly line: number;
  readonly message: string;
}

export function secretKind(secret: string): SecretKind {
  if (isMd5Secret(secret)) return 'md5';
  if (isScramVerifier(secret)) return 'scram';
  return 'plain';
}

/** Reads one quoted field starting at `i` (which must be a `"`); returns the value and the index after it. */
function quoted(line: string, i: number): { value: string; next: number } | null {
  if (line[i] !== '"') return null;
  let value = '';
  for (let j = i + 1; j < line.length; j++) {
    const ch = line[j] as string;
    if (ch !== '"') {
      value += ch;
      continue;
    }
    if (line[j + 1] === '"') {
      value += '"';
      j++;
      continue;
    }
    return { value, next: j + 1 };
  }
  return null;
}

export function parseAuthFile(text: string): { users: Map<string, UserSecret>; problems: AuthFileProblem[] } {
  const users = new Map<string, UserSecret>();
  const problems: AuthFileProblem[] = [];
  for (const [idx, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trimStart();
    if (!line.startsWith('"')) continue;
    const u = quoted(line, 0);
    if (!u) {
      problems.push({ line: idx + 1, message: 'unterminated user name' });
      continue;
    }
    let i = u.next;
    while (line[i] === ' ' || line[i] === '\t') i++;
    const p = quoted(line, i);
    if (!p) {
      problems.push({ line: idx + 1, message: `expected a quoted secret after "${u.value}"` });
      continue;
    }
    users.set(u.value, { user: u.value, secret: p.value, kind: secretKind(p.value) });
  }
  return { users, problems };
}

/** The user table the proxy authenticates against; `reload()` re-reads the file (RELOAD). */
export class AuthFile {
  private users = new Map<string, UserSecret>();

  constructor(private readonly path: string | undefined) {
    this.reload();
  }

  reload(): AuthFileProblem[] {
    if (!this.path) return [];
    const { users, problems } = parseAuthFile(readFileSync(this.path, 'utf8'));
    this.users = users;
    return problems;
  }

  get(user: string): UserSecret | undefined {
    return this.users.get(user);
  }

  get size(): number {
    return this.users.size;
  }
}
