/**
 * Unpacking a logical backup (dump.ts) for pg_restore: the repository's files decrypted and decompressed, each
 * database's tar extracted into the pg_dump directory it was made from.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { dumpDir, isDumpId, listDumps } from './dump.js';
import { BackupError } from './errors.js';
import type { BackupStore } from './store.js';

export interface ExtractedDump {
  /** The globals script (psql -f). */
  readonly globals: string;
  /** Each database's pg_dump directory (pg_restore -d NAME -j N DIR). */
  readonly databases: { name: string; dir: string }[];
}

/**
 * Unpacks an ok dump into `to` (created if missing), decrypted and decompressed: `to`/globals.sql and
 * `to`/<file name>/ per database (all of them, or the `only` ones). Refuses to write over what is there.
 */
export async function extractDump(
  store: BackupStore,
  id: string,
  to: string,
  only?: readonly string[],
): Promise<ExtractedDump> {
  if (!isDumpId(id)) throw new BackupError('BACKUP_NOT_FOUND', `"${id}" is not a dump id (like 20261203-061500L)`);
  const rec = (await listDumps(store)).find((r) => r.id === id);
  if (rec?.status !== 'ok')
    throw new BackupError('BACKUP_NOT_FOUND', `no usable dump ${id}${rec ? ` (it is ${rec.status})` : ''}`, {
      backup: id,
    });
  const dbs = rec.databases.filter((d) => !only?.length || only.includes(d.name));
  const missing = only?.filter((n) => !rec.databases.some((d) => d.name === n)) ?? [];
  if (missing.length)
    throw new BackupError('BACKUP_NOT_FOUND', `dump ${id} has no database ${missing.join(', ')}`, { backup: id });
  await mkdir(to, { recursive: true });
  const globals = join(to, 'globals.sql');
  const dirs = dbs.map((d) => ({ name: d.name, dir: join(to, d.file.replace(/\.tar(\.[a-z0-9]+)?$/, '')) }));
  for (const p of [globals, ...dirs.map((d) => d.dir)])
    if (existsSync(p)) throw new BackupError('RESTORE_TARGET_NOT_EMPTY', `${p} exists; extract into another directory`);
  const dir = dumpDir(id);
  const globalsFile = rec.files.find((f) => f.name.startsWith('globals.sql'))?.name ?? 'globals.sql';
  await pipeline(await store.get(`${dir}/${globalsFile}`), createWriteStream(globals, { flags: 'wx' }));
  for (const d of dbs) {
    const tar = spawn('tar', ['-xf', '-', '-C', to], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    tar.stderr.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString('utf8')).slice(-2000);
    });
    const exited = new Promise<number | null>((res) => {
      tar.on('error', () => res(-1));
      tar.on('close', (code) => res(code));
    });
    // tar stops reading at the end-of-archive marker and may exit before the padding after it arrives; the rest of
    // the stored file is still read to its end, so a decryption (GCM tag) or decompression failure is not missed.
    let open = true;
    tar.stdin.on('error', () => {
      open = false;
    });
    void exited.then(() => {
      open = false;
    });
    for await (const chunk of await store.get(`${dir}/${d.file}`)) {
      if (open && !tar.stdin.write(chunk)) await Promise.race([once(tar.stdin, 'drain').catch(() => {}), exited]);
    }
    tar.stdin.end();
    const code = await exited;
    if (code !== 0)
      throw new BackupError('RESTORE_FAILED', `extracting ${d.file} of dump ${id}: tar ${code}: ${stderr}`);
  }
  return { globals, databases: dirs };
}
