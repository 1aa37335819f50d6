/**
 * `pgkeel archive-push` and `pgkeel archive-get`: what PostgreSQL's archive_command and restore_command run
 * (backup/wal-commands.ts builds those settings).
 *
 *   pgkeel archive-push --repo DIR [--key-file F] [--compress lz4|zstd|gzip|none] [--level N] PATH
 *   pgkeel archive-get  --repo DIR [--key-file F] [--prefetch N --spool DIR] [--wal-segment-size BYTES] FILE DEST
 *
 * Exit codes: 0 done; 1 failed, or (archive-get) the file is not in the repository; 2 invalid usage. Never above
 * 125: PostgreSQL aborts recovery (restore_command) or restarts its archiver (archive_command) on those.
 */
import { basename } from 'node:path';
import { COMPRESSION_LEVELS, COMPRESSIONS, type Compression } from '../backup/codec.js';
import { PosixRepo } from '../backup/posix-repo.js';
import { BackupStore } from '../backup/store.js';
import { pushWal } from '../backup/wal.js';
import { archiveGet } from '../backup/wal-commands.js';
import { postgresIdentity } from '../lib/proc.js';
import { parseArgs, type FlagSpec, UsageError, usage } from './args.js';

const COMMON: Record<string, FlagSpec> = {
  repo: { type: 'string', doc: 'the backup repository (a directory)', placeholder: 'DIR' },
  'key-file': { type: 'string', doc: 'the encryption key file of an encrypted repository', placeholder: 'FILE' },
  help: { type: 'boolean', short: 'h', doc: 'show this help' },
};

const SPECS: Record<'archive-push' | 'archive-get', Record<string, FlagSpec>> = {
  'archive-push': {
    ...COMMON,
    compress: { type: 'string', doc: `${COMPRESSIONS.join(', ')} (default lz4)`, placeholder: 'ALGO' },
    level: { type: 'number', doc: 'compression level (default: the algorithm’s)', placeholder: 'N' },
  },
  'archive-get': {
    ...COMMON,
    prefetch: { type: 'number', doc: 'segments fetched ahead into --spool (default 0)', placeholder: 'N' },
    spool: { type: 'string', doc: 'where prefetched segments wait', placeholder: 'DIR' },
    'wal-segment-size': { type: 'number', doc: 'the cluster’s wal_segment_size (default 16 MB)', placeholder: 'BYTES' },
  },
};

const USAGE = {
  'archive-push': 'pgkeel archive-push --repo DIR [options] PATH   (archive_command: ... %p)',
  'archive-get': 'pgkeel archive-get --repo DIR [options] FILE DEST   (restore_command: ... %f %p)',
};

export async function runWalCommand(cmd: 'archive-push' | 'archive-get', args: string[]): Promise<number> {
  const spec = SPECS[cmd];
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(args, spec);
  } catch (err) {
    if (err instanceof UsageError) return usageFail(err.message);
    throw err;
  }
  const { flags, positional } = parsed;
  if (flags['help']) {
    process.stdout.write(`Usage: ${USAGE[cmd]}\n\n${usage(spec)}\n`);
    return 0;
  }
  const repoDir = flags['repo'];
  if (typeof repoDir !== 'string') return usageFail(`${cmd} needs --repo DIR`);
  const want = cmd === 'archive-push' ? 1 : 2;
  if (positional.length !== want) return usageFail(`usage: ${USAGE[cmd]}`);
  try {
    const repo = new PosixRepo(repoDir, { owner: postgresIdentity() });
    const keyFile = typeof flags['key-file'] === 'string' ? flags['key-file'] : undefined;
    if (cmd === 'archive-push') {
      const compression = (flags['compress'] ?? 'lz4') as Compression;
      if (!COMPRESSIONS.includes(compression)) return usageFail(`--compress must be one of ${COMPRESSIONS.join(', ')}`);
      const level = flags['level'] as number | undefined;
      const range = COMPRESSION_LEVELS[compression];
      if (level !== undefined && (level < range.min || level > range.max))
        return usageFail(`--level for ${compression} is ${range.min}..${range.max}`);
      const path = positional[0] as string;
      const store = await BackupStore.open(repo, { keyFile, create: true });
      const pushed = await pushWal(store, path, basename(path), { compression, level });
      if (pushed.abandonedAfter)
        process.stderr.write(
          `pgkeel archive-push: ${basename(path)} counts as archived: the stored copy equals it up to ${pushed.abandonedAfter}, where this server's timeline was left (the rest is WAL the cluster abandoned)\n`,
        );
      return 0;
    }
    const store = await BackupStore.open(repo, { keyFile });
    const [file, dest] = positional as [string, string];
    const res = await archiveGet(store, file, dest, {
      prefetch: flags['prefetch'] as number | undefined,
      spool: flags['spool'] as string | undefined,
      walSegmentSize: flags['wal-segment-size'] as number | undefined,
    });
    return res === 'missing' ? 1 : 0;
  } catch (err) {
    const code = (err as { code?: string }).code;
    process.stderr.write(`pgkeel ${cmd}: ${code ? `${code}: ` : ''}${(err as Error).message}\n`);
    return 1;
  }
}

function usageFail(message: string): number {
  process.stderr.write(`pgkeel: ${message}\n`);
  return 2;
}
