/**
 * The Repo contract (repo.ts), as one suite every implementation runs: `repoContract('posix', make)`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBackupError } from './errors.js';
import type { Repo } from './repo.js';

async function text(repo: Repo, path: string): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of await repo.get(path)) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

async function* failingAfter(chunks: string[]): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield Buffer.from(c);
  throw new Error('source broke');
}

export function repoContract(name: string, make: () => Promise<Repo & AsyncDisposable>): void {
  test(`${name}: put then get returns the bytes; stat and list see the file`, async () => {
    await using repo = await make();
    const res = await repo.put('a/b/c.txt', [Buffer.from('hello '), Buffer.from('world')]);
    assert.deepEqual(res, { bytes: 11, created: true });
    assert.equal(await text(repo, 'a/b/c.txt'), 'hello world');
    assert.equal((await repo.stat('a/b/c.txt'))?.size, 11);
    assert.deepEqual(
      (await repo.list('a')).map((f) => f.path),
      ['a/b/c.txt'],
    );
    assert.deepEqual(
      (await repo.list('')).map((f) => f.path),
      ['a/b/c.txt'],
    );
  });

  test(`${name}: a put replaces, a put with ifAbsent never does`, async () => {
    await using repo = await make();
    await repo.put('x', [Buffer.from('one')]);
    await repo.put('x', [Buffer.from('two')]);
    assert.equal(await text(repo, 'x'), 'two');
    const res = await repo.put('x', [Buffer.from('three')], { ifAbsent: true });
    assert.equal(res.created, false);
    assert.equal(await text(repo, 'x'), 'two');
    assert.equal((await repo.put('y', [Buffer.from('new')], { ifAbsent: true })).created, true);
  });

  test(`${name}: a put whose source fails leaves nothing behind`, async () => {
    await using repo = await make();
    await assert.rejects(repo.put('d/broken', failingAfter(['part one', 'part two'])));
    assert.equal(await repo.stat('d/broken'), null);
    assert.deepEqual(await repo.list('d'), []);
  });

  test(`${name}: an aborted put leaves nothing behind`, async () => {
    await using repo = await make();
    const ac = new AbortController();
    async function* slow(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('first');
      ac.abort();
      yield Buffer.from('second');
    }
    await assert.rejects(repo.put('e/aborted', slow(), { signal: ac.signal }));
    assert.equal(await repo.stat('e/aborted'), null);
    assert.deepEqual(await repo.list('e'), []);
  });

  test(`${name}: get and stat of a missing file`, async () => {
    await using repo = await make();
    assert.equal(await repo.stat('nope'), null);
    await assert.rejects(repo.get('nope'), (err: unknown) => isBackupError(err, 'REPO_NOT_FOUND'));
    assert.deepEqual(await repo.list('nothing/here'), []);
  });

  test(`${name}: delete removes a file or a whole directory; missing is fine`, async () => {
    await using repo = await make();
    await repo.put('b/1/f', [Buffer.from('1')]);
    await repo.put('b/1/g', [Buffer.from('2')]);
    await repo.put('b/2/f', [Buffer.from('3')]);
    await repo.delete('b/1');
    assert.deepEqual(
      (await repo.list('b')).map((f) => f.path),
      ['b/2/f'],
    );
    await repo.delete('b/2/f');
    await repo.delete('b/2/f');
    assert.deepEqual(await repo.list('b'), []);
  });

  test(`${name}: rename moves atomically, creating the target directory`, async () => {
    await using repo = await make();
    await repo.put('r/from', [Buffer.from('content')]);
    await repo.rename('r/from', 's/t/to');
    assert.equal(await repo.stat('r/from'), null);
    assert.equal(await text(repo, 's/t/to'), 'content');
  });

  test(`${name}: paths with '..', absolute paths and empty segments are refused`, async () => {
    await using repo = await make();
    for (const bad of ['../x', '/etc/passwd', 'a//b', 'a/./b', 'a/../b'])
      await assert.rejects(repo.put(bad, [Buffer.from('x')]), /invalid repository path/);
  });
}
