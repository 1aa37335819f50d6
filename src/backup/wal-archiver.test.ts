import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PosixRepo } from './posix-repo.js';
import type { PutOptions, PutResult } from './repo.js';
import { BackupStore } from './store.js';
import { listWal, pushWal } from './wal.js';
import { type ArchiverTimers, WalArchiver } from './wal-archiver.js';

/** A PosixRepo that records the most puts in flight at once and the order they started in. */
class CountingRepo extends PosixRepo {
  inFlight = 0;
  maxInFlight = 0;
  started: string[] = [];
  async #track(path: string, run: () => Promise<PutResult>): Promise<PutResult> {
    this.started.push(path);
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      return await run();
    } finally {
      this.inFlight--;
    }
  }
  override put(path: string, source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, opts?: PutOptions) {
    return this.#track(path, () => super.put(path, source, opts));
  }
  override putFrom(path: string, fill: (fd: number) => Promise<void>, opts?: PutOptions) {
    return this.#track(path, () => super.putFrom(path, fill, opts));
  }
}

class FakeTimers implements ArchiverTimers {
  pending = new Map<number, { fn: () => void; ms: number }>();
  #id = 0;
  setTimeout(fn: () => void, ms: number): unknown {
    this.pending.set(++this.#id, { fn, ms });
    return this.#id;
  }
  clearTimeout(h: unknown): void {
    this.pending.delete(h as number);
  }
  fire(): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const t of all) t.fn();
  }
}

const seg = (n: number) => `0000000100000000000000${n.toString(16).toUpperCase().padStart(2, '0')}`;

async function fixture(opts: { parallel?: number } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeel-archiver-'));
  const dataDir = join(dir, 'pgdata');
  const spoolDir = join(dir, 'spool');
  await mkdir(join(dataDir, 'pg_wal', 'archive_status'), { recursive: true });
  const repo = new CountingRepo(join(dir, 'repo'));
  const store = await BackupStore.open(repo, { create: true });
  repo.started = [];
  let clock = 1_000_000;
  const timers = new FakeTimers();
  const errors: string[] = [];
  const archiver = new WalArchiver({
    store,
    dataDir,
    spoolDir,
    parallel: opts.parallel,
    now: () => clock,
    timers,
    retryBaseMs: 1000,
    onError: (f, e) => errors.push(`${f}: ${e.message}`),
  });
  const contents = new Map<string, Buffer>();
  /** PostgreSQL finishing a WAL file: the file in pg_wal, then its .ready. */
  const ready = async (name: string, content = randomBytes(64 * 1024)) => {
    contents.set(name, content);
    await writeFile(join(dataDir, 'pg_wal', name), content);
    await writeFile(join(dataDir, 'pg_wal', 'archive_status', `${name}.ready`), '');
  };
  /** PostgreSQL's archive_command succeeding: .ready → .done. */
  const done = (name: string) =>
    rename(
      join(dataDir, 'pg_wal', 'archive_status', `${name}.ready`),
      join(dataDir, 'pg_wal', 'archive_status', `${name}.done`),
    );
  return {
    dir,
    dataDir,
    spoolDir,
    repo,
    store,
    archiver,
    timers,
    errors,
    contents,
    ready,
    done,
    advance: (ms: number) => {
      clock += ms;
    },
    spool: async () => (await readdir(spoolDir)).sort(),
    async [Symbol.asyncDispose]() {
      await archiver.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test('pushes every .ready file, history first then oldest first, N at a time, and writes .ok after each', async () => {
  await using f = await fixture({ parallel: 3 });
  for (let i = 9; i >= 1; i--) await f.ready(seg(i));
  await f.ready('00000002.history', Buffer.from('1\t0/9000000\tno recovery target specified\n'));
  await writeFile(join(f.dataDir, 'pg_wal', 'archive_status', `${seg(1)}.done`), ''); // already archived
  await f.archiver.runOnce();
  assert.equal(f.repo.started[0]?.startsWith('wal/history/00000002.history.lz4'), true, f.repo.started[0]);
  // Dispatched oldest first, N at a time; each push's own preparation is async, so among the N in flight the
  // repository may see them in any order: the first N, then the rest.
  const started = f.repo.started.slice(1).map((p) => p.split('/')[2]?.slice(0, 24) as string);
  assert.deepEqual([...started].sort(), [1, 2, 3, 4, 5, 6, 7, 8, 9].map(seg));
  assert.deepEqual(started.slice(0, 2).sort(), [1, 2].map(seg));
  assert.equal(f.repo.maxInFlight, 3);
  assert.deepEqual(await f.spool(), [...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => `${seg(i)}.ok`), '00000002.history.ok']);
  for (const w of await listWal(f.store))
    assert.ok((await f.store.read(w.path)).equals(f.contents.get(w.name) as Buffer), w.name);
  const s = f.archiver.stats;
  assert.equal(s.pushed, 10);
  assert.equal(s.failures, 0);
  assert.equal(s.backlog, 0);
  assert.deepEqual(s.lastArchived?.time, 1_000_000);

  // A second pass pushes nothing again; once PostgreSQL marks files .done, their .ok files go.
  await f.archiver.runOnce();
  assert.equal(f.archiver.stats.pushed, 10);
  await rm(join(f.spoolDir, `${seg(1)}.ok`)); // archive_command consumed it
  await f.done(seg(1));
  await f.done(seg(2));
  await f.archiver.runOnce();
  assert.equal((await f.spool()).includes(`${seg(2)}.ok`), false);
  assert.equal((await f.spool()).includes(`${seg(3)}.ok`), true);
});

test('a refused file gets .error with the message, is retried with backoff, and never blocks the others', async () => {
  await using f = await fixture();
  const bad = seg(2);
  // The repository already holds a different file under that name.
  await writeFile(join(f.dir, 'other'), randomBytes(1000));
  await pushWal(f.store, join(f.dir, 'other'), bad);
  await f.ready(seg(1));
  await f.ready(bad);
  await f.ready(seg(3));
  await f.archiver.runOnce();
  assert.deepEqual(await f.spool(), [`${seg(1)}.ok`, `${bad}.error`, `${seg(3)}.ok`]);
  assert.match(await readFile(join(f.spoolDir, `${bad}.error`), 'utf8'), /already archived as .* different content/);
  assert.equal(f.errors.length, 1);
  assert.equal(f.archiver.stats.failures, 1);
  assert.equal(f.archiver.stats.backlog, 1);
  assert.equal(f.archiver.stats.lastFailed?.name, bad);

  await f.archiver.runOnce(); // within the backoff: not retried
  assert.equal(f.archiver.stats.failures, 1);
  f.advance(1000);
  await f.archiver.runOnce(); // retried, fails again; the next wait doubles
  assert.equal(f.archiver.stats.failures, 2);
  f.advance(1999);
  await f.archiver.runOnce();
  assert.equal(f.archiver.stats.failures, 2);

  // The operator removes the wrong file: the next retry archives ours and replaces .error by .ok.
  await f.repo.delete((await f.store.find(`wal/0000000100000000/${bad}`)) as string);
  f.advance(1);
  await f.archiver.runOnce();
  assert.deepEqual(await f.spool(), [`${seg(1)}.ok`, `${bad}.ok`, `${seg(3)}.ok`]);
  assert.equal(f.archiver.stats.backlog, 0);
  assert.equal(f.archiver.stats.lastArchived?.name, bad);
});

test('start scans at once, then every interval; poke scans now; stop ends the timer', async () => {
  await using f = await fixture();
  await f.ready(seg(1));
  f.archiver.start();
  await waitFor(() => f.archiver.stats.pushed === 1);
  await waitFor(() => f.timers.pending.size === 1);
  assert.equal([...f.timers.pending.values()][0]?.ms, 250);
  await f.ready(seg(2));
  f.timers.fire();
  await waitFor(() => f.archiver.stats.pushed === 2);
  await f.ready(seg(3));
  f.archiver.poke();
  await waitFor(() => f.archiver.stats.pushed === 3);
  assert.equal(await readFile(join(f.spoolDir, 'archiver.pid'), 'utf8'), `${process.pid}\n`, 'archive_command waits');
  await f.archiver.stop();
  assert.equal(f.timers.pending.size, 0);
  assert.equal((await f.spool()).includes('archiver.pid'), false, 'a stopped archiver is not waited for');
  await f.ready(seg(4));
  f.archiver.poke();
  await f.archiver.runOnce(); // an explicit pass still works; a stopped archiver only has no timer
  assert.equal(f.timers.pending.size, 0);
});

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), 'condition not reached');
}
