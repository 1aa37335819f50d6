/**
 * How files are stored in the repository: compressed (lz4 by default, zstd, gzip or none, with a level) and
 * optionally encrypted (AES-256-GCM). Compression runs in native code — the `lz4` and `zstd` programs, zlib for gzip —
 * never in JavaScript; base backups arrive already compressed by PostgreSQL and only pass through encryption.
 *
 * Encrypted file format: "PGKEENC1" (8 bytes) ‖ IV (12) ‖ ciphertext ‖ GCM tag (16). The tag authenticates the whole
 * file: a changed or truncated file fails with REPO_DECRYPT_FAILED at its end; the repository's key check (repo-meta.ts)
 * catches a wrong key before any file is opened.
 */
import { spawn } from 'node:child_process';
import { createCipheriv, createDecipheriv, type DecipherGCM, randomBytes } from 'node:crypto';
import { Duplex, PassThrough, Transform, type TransformCallback } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { BackupError } from './errors.js';

export const COMPRESSIONS = ['lz4', 'zstd', 'gzip', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

/** File-name suffix of each compression. */
export const COMPRESSION_EXT: Record<Compression, string> = { lz4: '.lz4', zstd: '.zst', gzip: '.gz', none: '' };

/** Default and allowed levels (as the programs accept them). */
export const COMPRESSION_LEVELS: Record<Compression, { default: number; min: number; max: number }> = {
  lz4: { default: 1, min: 1, max: 12 },
  zstd: { default: 3, min: 1, max: 19 },
  gzip: { default: 6, min: 1, max: 9 },
  none: { default: 0, min: 0, max: 0 },
};

/**
 * Wraps a filter program (stdin → stdout) as a Duplex. Its readable side ends only once the program has exited 0, so
 * a consumer never takes truncated output for the whole: a failing program destroys the stream with REPO_CODEC_FAILED.
 */
function programStream(cmd: string, args: string[], what: string): Duplex {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-2000);
  });
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  child.stdout.pipe(out, { end: false });
  const duplex = Duplex.from({ writable: child.stdin, readable: out });
  const fail = (msg: string, cause?: unknown) => {
    const err = new BackupError('REPO_CODEC_FAILED', `${what} failed: ${msg}`, {}, { cause });
    out.destroy(err);
    duplex.destroy(err);
  };
  child.on('error', (err) => fail(`${cmd}: ${err.message}`, err));
  child.on('close', (code, signal) => {
    if (code === 0) out.end();
    else if (!duplex.destroyed) fail(`${cmd} exited with ${code ?? signal}: ${stderr.trim()}`);
  });
  duplex.on('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return duplex;
}

export function compressor(c: Compression, level?: number): Duplex {
  const lvl = level ?? COMPRESSION_LEVELS[c].default;
  switch (c) {
    case 'lz4':
      return programStream('lz4', ['-q', '-c', `-${lvl}`], 'lz4 compression');
    case 'zstd':
      return programStream('zstd', ['-q', '-c', `-${lvl}`, '-T1'], 'zstd compression');
    case 'gzip':
      return createGzip({ level: lvl });
    case 'none':
      return new PassThrough();
  }
}

/**
 * lz4 or zstd compressing a local file that the program reads itself: nothing passes through this process's stdin,
 * which halves the pipe traffic of `compressor` (WAL segments: archive throughput is this path's CPU cost).
 */
export function compressFile(c: 'lz4' | 'zstd', path: string, level?: number): Duplex {
  const lvl = level ?? COMPRESSION_LEVELS[c].default;
  const d =
    c === 'lz4'
      ? programStream('lz4', ['-q', '-c', `-${lvl}`, path], 'lz4 compression')
      : programStream('zstd', ['-q', '-c', `-${lvl}`, '-T1', path], 'zstd compression');
  d.end(); // the program reads `path`, not stdin
  return d;
}

/** lz4 or zstd compressing the local file `src` straight into the open file `fd` (nothing passes through Node). */
export function compressFileToFd(c: 'lz4' | 'zstd', src: string, fd: number, level?: number): Promise<void> {
  const lvl = level ?? COMPRESSION_LEVELS[c].default;
  const [cmd, args] =
    c === 'lz4' ? ['lz4', ['-q', '-c', `-${lvl}`, src]] : ['zstd', ['-q', '-c', `-${lvl}`, '-T1', src]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', fd, 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-2000);
    });
    const fail = (msg: string, cause?: unknown) =>
      reject(new BackupError('REPO_CODEC_FAILED', `${c} compression of ${src} failed: ${msg}`, {}, { cause }));
    child.on('error', (err) => fail(`${cmd}: ${err.message}`, err));
    child.on('close', (code, signal) =>
      code === 0 ? resolve() : fail(`${cmd} exited with ${code ?? signal}: ${stderr.trim()}`),
    );
  });
}

export function decompressor(c: Compression): Duplex {
  switch (c) {
    case 'lz4':
      return programStream('lz4', ['-q', '-d', '-c'], 'lz4 decompression');
    case 'zstd':
      return programStream('zstd', ['-q', '-d', '-c'], 'zstd decompression');
    case 'gzip':
      return createGunzip();
    case 'none':
      return new PassThrough();
  }
}

const MAGIC = Buffer.from('PGKEENC1');
const IV_LEN = 12;
const TAG_LEN = 16;

/** Encrypts a stream into the format above. `key` is 32 bytes. */
export function encryptor(key: Buffer): Transform {
  const iv = randomBytes(IV_LEN);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  let headerSent = false;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (!headerSent) {
        this.push(Buffer.concat([MAGIC, iv]));
        headerSent = true;
      }
      cb(null, cipher.update(chunk));
    },
    flush(cb: TransformCallback) {
      if (!headerSent) this.push(Buffer.concat([MAGIC, iv]));
      const last = cipher.final();
      if (last.length) this.push(last);
      cb(null, cipher.getAuthTag());
    },
  });
}

/** Decrypts the format above; `what` names the file in errors. */
export function decryptor(key: Buffer, what: string): Transform {
  let head: Buffer = Buffer.alloc(0);
  let decipher: DecipherGCM | null = null;
  let tail: Buffer = Buffer.alloc(0);
  const bad = (why: string) =>
    new BackupError(
      'REPO_DECRYPT_FAILED',
      `${what}: ${why} (the file was changed after it was written, or the key is wrong)`,
      {
        path: what,
      },
    );
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (!decipher) {
        head = Buffer.concat([head, chunk]);
        if (head.length < MAGIC.length + IV_LEN) return cb();
        if (!head.subarray(0, MAGIC.length).equals(MAGIC)) return cb(bad('not an encrypted pgkeel file'));
        decipher = createDecipheriv('aes-256-gcm', key, head.subarray(MAGIC.length, MAGIC.length + IV_LEN));
        chunk = head.subarray(MAGIC.length + IV_LEN);
      }
      // Hold back the last TAG_LEN bytes: they may be the tag.
      const all = tail.length ? Buffer.concat([tail, chunk]) : chunk;
      if (all.length <= TAG_LEN) {
        tail = Buffer.from(all);
        return cb();
      }
      tail = Buffer.from(all.subarray(all.length - TAG_LEN));
      cb(null, decipher.update(all.subarray(0, all.length - TAG_LEN)));
    },
    flush(cb: TransformCallback) {
      if (!decipher || tail.length !== TAG_LEN) return cb(bad('truncated'));
      try {
        decipher.setAuthTag(tail);
        const last = decipher.final();
        cb(null, last.length ? last : undefined);
      } catch {
        cb(bad('authentication failed'));
      }
    },
  });
}
