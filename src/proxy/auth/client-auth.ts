/**
 * Authenticating one client against the auth file: trust, md5 or SCRAM-SHA-256, as a small state machine with no
 * socket (bytes in, messages out). Rules follow pgBouncer (doc/config.md auth_type):
 * - trust: no password; when an auth file is configured the user must be in it.
 * - md5: a plaintext or md5 secret is challenged with md5; a SCRAM verifier upgrades the exchange to SCRAM.
 * - scram-sha-256: a plaintext secret gets a verifier derived once per user (PBKDF2 is not run per login);
 *   an md5 hash cannot serve SCRAM and fails with PROXY_AUTH_UNSUPPORTED.
 * Unknown users go through a complete, doomed exchange (ScramServer.mock / an md5 challenge) and fail exactly like
 * a wrong password, so probing cannot tell them apart.
 */
import { createHash } from 'node:crypto';
import {
  buildAuthenticationMD5Password,
  buildAuthenticationOk,
  buildAuthenticationSASL,
  buildAuthenticationSASLContinue,
  buildAuthenticationSASLFinal,
  type NonceFn,
  parsePasswordMessage,
  parseSASLInitialResponse,
  requireScramMechanism,
  SCRAM_SHA_256,
  type ScramKeys,
  type ScramSecret,
  ScramServer,
  parseScramVerifier,
  scramSecretFromPassword,
  verifyMd5Response,
} from '../../protocol/index.js';
import type { UserSecret } from './auth-file.js';
import type { AuthType } from '../config.js';
import { ProxyError, ProxyErrorCode } from '../errors.js';

export interface AuthRandom {
  /** 4 random bytes per md5 challenge. */
  readonly salt4: () => Buffer;
  readonly nonce: NonceFn;
  /** A per-process secret: mock salts for unknown users and derived salts for plaintext secrets. */
  readonly processSecret: Buffer;
}

/** Verifiers derived from plaintext secrets, per user and password (PBKDF2 once, not per login). */
export class ScramSecretCache {
  private readonly map = new Map<string, ScramSecret>();

  constructor(private readonly processSecret: Buffer) {}

  forPassword(user: string, password: string): ScramSecret {
    const k = `${user}\0${password}`;
    let s = this.map.get(k);
    if (!s) {
      const salt = createHash('sha256').update(this.processSecret).update(k).digest().subarray(0, 16);
      s = scramSecretFromPassword(password, salt);
      this.map.set(k, s);
    }
    return s;
  }
}

export type AuthStep =
  /** Send this and wait for the next PasswordMessage. */
  | { readonly kind: 'continue'; readonly send: Buffer }
  /** Send this (ends with AuthenticationOk); the client is authenticated. */
  | { readonly kind: 'done'; readonly send: Buffer };

function failed(user: string, method: string): ProxyError {
  return new ProxyError(ProxyErrorCode.AuthFailed, `password authentication failed for user "${user}"`, {
    user,
    method,
  });
}

export class ClientAuth {
  private md5Salt: Buffer | null = null;
  private scram: ScramServer | null = null;
  private scramStep = 0;
  /** After a successful SCRAM exchange against a stored verifier: keys to log in to servers as this user. */
  passThroughKeys: ScramKeys | null = null;

  constructor(
    private readonly method: AuthType,
    private readonly user: string,
    private readonly secret: UserSecret | undefined,
    /** false: no auth file configured (trust only). */
    private readonly haveAuthFile: boolean,
    private readonly rand: AuthRandom,
    private readonly cache: ScramSecretCache,
  ) {}

  start(): AuthStep {
    if (this.method === 'trust') {
      if (this.haveAuthFile && !this.secret) throw failed(this.user, 'trust');
      return { kind: 'done', send: buildAuthenticationOk() };
    }
    const useScram = this.method === 'scram-sha-256' || this.secret?.kind === 'scram';
    if (!useScram) {
      this.md5Salt = this.rand.salt4();
      return { kind: 'continue', send: buildAuthenticationMD5Password(this.md5Salt) };
    }
    this.scram = this.scramServer();
    return { kind: 'continue', send: buildAuthenticationSASL([SCRAM_SHA_256]) };
  }

  /** One PasswordMessage/SASL response payload. Throws ProxyError (28P01) or ProtocolError. */
  step(payload: Buffer): AuthStep {
    if (this.md5Salt) {
      const response = parsePasswordMessage(payload);
      const s = this.secret;
      if (!s || s.kind === 'scram' || !verifyMd5Response(response, this.user, s.secret, this.md5Salt))
        throw failed(this.user, 'md5');
      return { kind: 'done', send: buildAuthenticationOk() };
    }
    const scram = this.scram;
    if (!scram) throw new ProxyError(ProxyErrorCode.Internal, 'password message without an authentication exchange');
    if (this.scramStep++ === 0) {
      const init = parseSASLInitialResponse(payload);
      requireScramMechanism(init.mechanism);
      if (!init.data) throw failed(this.user, 'scram-sha-256');
      return { kind: 'continue', send: buildAuthenticationSASLContinue(scram.serverFirst(init.data)) };
    }
    let final: string;
    try {
      final = scram.verifyClientFinal(payload);
    } catch (err) {
      if (err instanceof ProxyError) throw err;
      if ((err as { code?: string }).code === 'AUTH_FAILED') throw failed(this.user, 'scram-sha-256');
      throw err;
    }
    if (this.secret?.kind === 'scram') this.passThroughKeys = scram.passThroughKeys;
    return { kind: 'done', send: Buffer.concat([buildAuthenticationSASLFinal(final), buildAuthenticationOk()]) };
  }

  private scramServer(): ScramServer {
    const s = this.secret;
    if (!s) {
      const salt = createHash('sha256').update(this.rand.processSecret).update(this.user).digest().subarray(0, 16);
      return ScramServer.mock(salt, undefined, this.rand.nonce);
    }
    if (s.kind === 'md5') {
      throw new ProxyError(
        ProxyErrorCode.AuthUnsupported,
        `user "${this.user}" has an md5 secret in the auth file, which cannot be used for SCRAM authentication`,
        { user: this.user },
      );
    }
    const secret = s.kind === 'scram' ? parseScramVerifier(s.secret) : this.cache.forPassword(this.user, s.secret);
    return new ScramServer(secret, this.rand.nonce);
  }
}
