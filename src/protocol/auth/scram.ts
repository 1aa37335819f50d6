/**
 * SCRAM-SHA-256 as PostgreSQL speaks it (https://www.postgresql.org/docs/15/sasl-authentication.html,
 * RFC 5802 / RFC 7677), without channel binding: the client's GS2 header is "n,," (or "y,,", which we accept as a
 * server because we never offer SCRAM-SHA-256-PLUS). PostgreSQL ignores the SCRAM user name (the start-up
 * packet's `user` counts); libpq sends "n=" and node-postgres "n=*".
 *
 *   SaltedPassword = PBKDF2-HMAC-SHA-256(SASLprep(password), salt, i)
 *   ClientKey = HMAC(SaltedPassword, "Client Key")   StoredKey = SHA-256(ClientKey)
 *   ServerKey = HMAC(SaltedPassword, "Server Key")
 *   AuthMessage = client-first-bare "," server-first "," client-final-without-proof
 *   ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage)   ServerSignature = HMAC(ServerKey, AuthMessage)
 *
 * Verifier format (pg_authid.rolpassword): "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" (base64).
 *
 * Cost: PBKDF2 (4096 iterations ≈ milliseconds) blocks the event loop. The server side never runs it when built
 * from a stored verifier; the client side skips it when given keys (`ScramKeys`) — e.g. the ClientKey a
 * `ScramServer` recovered from the client's own proof (pgBouncer's "SCRAM pass-through").
 * Every failure is a ProtocolError; a wrong password is AUTH_FAILED (28P01).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { saslprep } from './saslprep.js';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
/** PostgreSQL's default `scram_iterations`. */
export const DEFAULT_SCRAM_ITERATIONS = 4096;
/** PostgreSQL's SCRAM_DEFAULT_SALT_LEN. */
export const SCRAM_SALT_BYTES = 16;
/** As node-postgres: refuse servers asking for more PBKDF2 work per login than this (event-loop protection). */
export const DEFAULT_MAX_SCRAM_ITERATIONS = 100_000;

/** Returns a fresh nonce of printable ASCII without ','; injected so tests are deterministic. */
export type NonceFn = () => string;
/** 18 random bytes in base64, as PostgreSQL's SCRAM_RAW_NONCE_LEN. */
export const randomNonce: NonceFn = () => randomBytes(18).toString('base64');

export interface ScramSecret {
  readonly iterations: number;
  readonly salt: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

/** What logging in needs besides the password: enough for a client that never saw the password. */
export interface ScramKeys {
  readonly clientKey: Buffer;
  readonly serverKey: Buffer;
}

const hmac = (key: Buffer, data: string | Buffer): Buffer => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

function fail(code: ProtocolErrorCode, message: string): ProtocolError {
  return new ProtocolError(code, message);
}
const malformed = (why: string): ProtocolError =>
  fail(ProtocolErrorCode.SaslMalformed, `malformed SCRAM message: ${why}`);
const unsupported = (why: string): ProtocolError => fail(ProtocolErrorCode.SaslUnsupported, why);
const nonceMismatch = (where: string): ProtocolError =>
  fail(ProtocolErrorCode.SaslNonceMismatch, `SCRAM nonce mismatch in ${where}`);
/** Attributes after the mandatory ones: extensions, ignored as PostgreSQL does; never a second "p". */
const EXTENSION = /^[A-Za-oq-z]=/;

export function scramKeysFromPassword(password: string, salt: Buffer, iterations: number): ScramKeys {
  const salted = pbkdf2Sync(saslprep(password), salt, iterations, 32, 'sha256');
  return { clientKey: hmac(salted, 'Client Key'), serverKey: hmac(salted, 'Server Key') };
}

export function scramSecretFromPassword(
  password: string,
  salt: Buffer,
  iterations = DEFAULT_SCRAM_ITERATIONS,
): ScramSecret {
  const { clientKey, serverKey } = scramKeysFromPassword(password, salt, iterations);
  return { iterations, salt, storedKey: sha256(clientKey), serverKey };
}

/** The string PostgreSQL stores for `password` (salt: SCRAM_SALT_BYTES random bytes, injected). */
export function makeScramVerifier(password: string, salt: Buffer, iterations = DEFAULT_SCRAM_ITERATIONS): string {
  const s = scramSecretFromPassword(password, salt, iterations);
  const b64 = (b: Buffer): string => b.toString('base64');
  return `${SCRAM_SHA_256}$${iterations}:${b64(salt)}$${b64(s.storedKey)}:${b64(s.serverKey)}`;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const VERIFIER = /^SCRAM-SHA-256\$([1-9][0-9]{0,9}):([^$:]+)\$([^$:]+):([^$:]+)$/;

export function isScramVerifier(stored: string): boolean {
  return VERIFIER.test(stored);
}

/** Parses a stored verifier; AUTH_BAD_SECRET when it is not one. */
export function parseScramVerifier(stored: string): ScramSecret {
  const m = VERIFIER.exec(stored);
  const bad = (): ProtocolError =>
    fail(ProtocolErrorCode.BadSecret, 'stored secret is not a valid SCRAM-SHA-256 verifier');
  if (!m) throw bad();
  const [, iter, salt, storedKey, serverKey] = m as unknown as [string, string, string, string, string];
  if (![salt, storedKey, serverKey].every((s) => BASE64.test(s)) || Number(iter) > 0x7fffffff) throw bad();
  const keys = { storedKey: Buffer.from(storedKey, 'base64'), serverKey: Buffer.from(serverKey, 'base64') };
  if (keys.storedKey.length !== 32 || keys.serverKey.length !== 32) throw bad();
  return { iterations: Number(iter), salt: Buffer.from(salt, 'base64'), ...keys };
}

/** Checks SASLInitialResponse's mechanism: we offer only SCRAM-SHA-256 (no -PLUS). */
export function requireScramMechanism(mechanism: string): void {
  if (mechanism !== SCRAM_SHA_256) {
    const message = 'client selected an invalid SASL authentication mechanism';
    throw new ProtocolError(ProtocolErrorCode.SaslUnsupported, message, { mechanism });
  }
}

/** RFC 5802 `printable`: %x21-2B / %x2D-7E. */
function isPrintable(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x2c) return false;
  }
  return true;
}

/** "x=value" → value; a missing or different attribute is malformed. */
function attr(part: string | undefined, name: string, where: string): string {
  if (part === undefined || part.length < 2 || part[0] !== name || part[1] !== '=') {
    throw malformed(`expected attribute "${name}" in ${where}`);
  }
  return part.slice(2);
}

function decode64(value: string, what: string): Buffer {
  if (!BASE64.test(value)) throw malformed(`${what} is not valid base64`);
  return Buffer.from(value, 'base64');
}

function text(msg: string | Buffer): string {
  return typeof msg === 'string' ? msg : msg.toString('utf8');
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function escapeSaslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

export interface ScramClientOptions {
  /** SCRAM user name; PostgreSQL ignores it (default ''). */
  readonly username?: string;
  /** Default DEFAULT_MAX_SCRAM_ITERATIONS; only applies when hashing a password. */
  readonly maxIterations?: number;
}

/** The proxy logging in to a server: clientFirst() → onServerFirst() → verifyServerFinal(). */
export class ScramClient {
  private readonly nonce: string;
  private readonly firstBare: string;
  private keys: ScramKeys | null = null;
  private expectedServerSignature: Buffer | null = null;
  private step: 'start' | 'first-sent' | 'final-sent' | 'done' = 'start';

  constructor(
    private readonly credentials: string | ScramKeys,
    nonce: NonceFn = randomNonce,
    private readonly options: ScramClientOptions = {},
  ) {
    this.nonce = nonce();
    if (!isPrintable(this.nonce)) throw new Error('ScramClient: nonce must be printable ASCII without ","');
    this.firstBare = `n=${escapeSaslName(options.username ?? '')},r=${this.nonce}`;
  }

  /** The SASLInitialResponse data. */
  clientFirst(): string {
    this.advance('start', 'first-sent');
    return `n,,${this.firstBare}`;
  }

  /** Takes AuthenticationSASLContinue data, returns the SASLResponse data (client-final-message). */
  onServerFirst(msg: string | Buffer): string {
    this.advance('first-sent', 'final-sent');
    const serverFirst = text(msg);
    const parts = serverFirst.split(',');
    if (parts[0]?.startsWith('m=')) throw unsupported('server requires an unsupported SCRAM extension');
    const nonce = attr(parts[0], 'r', 'server-first-message');
    const salt = decode64(attr(parts[1], 's', 'server-first-message'), 'salt');
    const iterText = attr(parts[2], 'i', 'server-first-message');
    if (!nonce.startsWith(this.nonce) || nonce.length === this.nonce.length || !isPrintable(nonce)) {
      throw nonceMismatch('server-first-message');
    }
    if (!/^[1-9][0-9]{0,9}$/.test(iterText)) throw malformed('invalid iteration count');
    const iterations = Number(iterText);
    if (typeof this.credentials === 'string') {
      const max = this.options.maxIterations ?? DEFAULT_MAX_SCRAM_ITERATIONS;
      if (iterations > max) {
        const message = `server asks for ${iterations} SCRAM iterations, limit ${max}`;
        throw new ProtocolError(ProtocolErrorCode.SaslIterations, message, { iterations, limit: max });
      }
      this.keys = scramKeysFromPassword(this.credentials, salt, iterations);
    } else {
      this.keys = this.credentials;
    }
    const finalWithoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.firstBare},${serverFirst},${finalWithoutProof}`;
    const proof = xor(this.keys.clientKey, hmac(sha256(this.keys.clientKey), authMessage));
    this.expectedServerSignature = hmac(this.keys.serverKey, authMessage);
    return `${finalWithoutProof},p=${proof.toString('base64')}`;
  }

  /** Takes AuthenticationSASLFinal data; returns if the server proved it knows the secret, else throws. */
  verifyServerFinal(msg: string | Buffer): void {
    this.advance('final-sent', 'done');
    const first = text(msg).split(',')[0];
    if (first?.startsWith('e=')) {
      throw fail(ProtocolErrorCode.AuthFailed, `server rejected SCRAM authentication: ${first.slice(2)}`);
    }
    const signature = decode64(attr(first, 'v', 'server-final-message'), 'server signature');
    if (!safeEqual(signature, this.expectedServerSignature as Buffer)) {
      throw fail(ProtocolErrorCode.ServerSignature, 'incorrect server signature');
    }
  }

  private advance(from: ScramClient['step'], to: ScramClient['step']): void {
    if (this.step !== from) throw new Error(`ScramClient: called in state ${this.step}, expected ${from}`);
    this.step = to;
  }
}

/** Authenticating a client: serverFirst() → verifyClientFinal(). */
export class ScramServer {
  private readonly serverNonce: string;
  private gs2Header = '';
  private firstBare = '';
  private serverFirstMsg = '';
  private combinedNonce = '';
  private recoveredClientKey: Buffer | null = null;
  private step: 'start' | 'first-sent' | 'done' = 'start';

  constructor(
    private readonly secret: ScramSecret,
    nonce: NonceFn = randomNonce,
    /** Set by `mock`: the exchange runs normally and always fails, so unknown users are indistinguishable. */
    private readonly doomed = false,
  ) {
    this.serverNonce = nonce();
    if (!isPrintable(this.serverNonce)) throw new Error('ScramServer: nonce must be printable ASCII without ","');
  }

  static fromVerifier(stored: string, nonce: NonceFn = randomNonce): ScramServer {
    return new ScramServer(parseScramVerifier(stored), nonce);
  }

  /**
   * For a user the proxy does not know (PostgreSQL's scram_mock_salt): pass a salt derived from the user name
   * and a proxy secret, so repeated probes see a stable salt, as for a real user.
   */
  static mock(salt: Buffer, iterations = DEFAULT_SCRAM_ITERATIONS, nonce: NonceFn = randomNonce): ScramServer {
    const zero = Buffer.alloc(32);
    return new ScramServer({ iterations, salt, storedKey: zero, serverKey: zero }, nonce, true);
  }

  /** Takes SASLInitialResponse data (client-first-message), returns AuthenticationSASLContinue data. */
  serverFirst(clientFirst: string | Buffer): string {
    this.advance('start', 'first-sent');
    const msg = text(clientFirst);
    // gs2-header = gs2-cbind-flag "," [authzid] ","   (rules of read_client_first_message, auth-scram.c)
    const flag = msg[0];
    if (flag === 'p') throw unsupported('client requires SCRAM channel binding, which is not offered');
    if ((flag !== 'n' && flag !== 'y') || msg[1] !== ',') throw malformed('unexpected channel-binding flag');
    if (msg[2] === 'a') throw unsupported('client uses authorization identity, which is not supported');
    if (msg[2] !== ',') throw malformed('expected "," after the channel-binding flag');
    this.gs2Header = msg.slice(0, 3);
    this.firstBare = msg.slice(3);
    const parts = this.firstBare.split(',');
    if (parts[0]?.startsWith('m=')) throw unsupported('client requires an unsupported SCRAM extension');
    attr(parts[0], 'n', 'client-first-message'); // ignored: the start-up packet's user is authoritative
    const clientNonce = attr(parts[1], 'r', 'client-first-message');
    if (!isPrintable(clientNonce)) throw malformed('invalid client nonce');
    if (!parts.slice(2).every((ext) => EXTENSION.test(ext)))
      throw malformed('invalid attribute in client-first-message');
    this.combinedNonce = clientNonce + this.serverNonce;
    this.serverFirstMsg = `r=${this.combinedNonce},s=${this.secret.salt.toString('base64')},i=${this.secret.iterations}`;
    return this.serverFirstMsg;
  }

  /** Takes SASLResponse data (client-final-message), returns AuthenticationSASLFinal data. Wrong proof: AUTH_FAILED. */
  verifyClientFinal(clientFinal: string | Buffer): string {
    this.advance('first-sent', 'done');
    const msg = text(clientFinal);
    const proofAt = msg.lastIndexOf(',p=');
    if (proofAt < 0) throw malformed('client-final-message has no proof');
    const withoutProof = msg.slice(0, proofAt);
    const parts = withoutProof.split(',');
    const binding = decode64(attr(parts[0], 'c', 'client-final-message'), 'channel binding');
    if (binding.toString('latin1') !== this.gs2Header) throw malformed('unexpected channel-binding attribute');
    if (attr(parts[1], 'r', 'client-final-message') !== this.combinedNonce) {
      throw nonceMismatch('client-final-message');
    }
    if (!parts.slice(2).every((ext) => EXTENSION.test(ext)))
      throw malformed('invalid attribute in client-final-message');
    const proof = decode64(msg.slice(proofAt + 3), 'proof');
    if (proof.length !== 32) throw malformed('invalid proof length');
    const authMessage = `${this.firstBare},${this.serverFirstMsg},${withoutProof}`;
    const clientKey = xor(proof, hmac(this.secret.storedKey, authMessage));
    if (!safeEqual(sha256(clientKey), this.secret.storedKey) || this.doomed) {
      throw fail(ProtocolErrorCode.AuthFailed, 'password authentication failed (SCRAM proof mismatch)');
    }
    this.recoveredClientKey = clientKey;
    return `v=${hmac(this.secret.serverKey, authMessage).toString('base64')}`;
  }

  /**
   * After a successful exchange: keys that let a ScramClient log in to a server sharing this verifier
   * (same salt and iterations) without knowing the password.
   */
  get passThroughKeys(): ScramKeys | null {
    const clientKey = this.recoveredClientKey;
    return clientKey ? { clientKey, serverKey: this.secret.serverKey } : null;
  }

  private advance(from: ScramServer['step'], to: ScramServer['step']): void {
    if (this.step !== from) throw new Error(`ScramServer: called in state ${this.step}, expected ${from}`);
    this.step = to;
  }
}
