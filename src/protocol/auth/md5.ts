/**
 * PostgreSQL's md5 password authentication (https://www.postgresql.org/docs/15/auth-password.html):
 * the stored secret is "md5" + md5(password + username), and the client answers AuthenticationMD5Password
 * with "md5" + md5(md5(password + username) + salt) — the inner hash in hex, the 4-byte salt raw.
 *
 * Like PostgreSQL and pgBouncer's userlist.txt, a stored value that looks like "md5" + 32 hex digits is taken to be
 * the hash, not a password (so a password that happens to have that shape cannot be used as plaintext).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const MD5_SECRET = /^md5[0-9a-f]{32}$/;

export function isMd5Secret(stored: string): boolean {
  return MD5_SECRET.test(stored);
}

/** The secret pg_authid / userlist.txt stores: "md5" + md5(password + username). */
export function md5Secret(username: string, password: string): string {
  return (
    'md5' +
    createHash('md5')
      .update(password + username, 'utf8')
      .digest('hex')
  );
}

/**
 * The PasswordMessage for AuthenticationMD5Password(salt), from a plaintext password or a stored "md5…" secret
 * (which is all a pooler needs to log in to a server as that user).
 */
export function md5Response(username: string, passwordOrSecret: string, salt: Buffer): string {
  const secret = isMd5Secret(passwordOrSecret) ? passwordOrSecret : md5Secret(username, passwordOrSecret);
  const outer = createHash('md5').update(secret.slice(3), 'latin1').update(salt).digest('hex');
  return 'md5' + outer;
}

/** Checks a client's md5 PasswordMessage against what the proxy stores for the user, in constant time. */
export function verifyMd5Response(response: string, username: string, passwordOrSecret: string, salt: Buffer): boolean {
  const expected = Buffer.from(md5Response(username, passwordOrSecret, salt), 'latin1');
  const got = Buffer.from(response, 'utf8');
  return got.length === expected.length && timingSafeEqual(got, expected);
}
