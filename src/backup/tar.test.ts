import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { leadingMember, TarCounter, tarName, tarSize } from './tar.js';

/** A tar header block: name, octal size, type flag (the fields TarCounter reads). */
function header(name: string, size: number, type: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 'latin1');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write(type, 156, 'latin1');
  return h;
}
const padded = (n: number) => Buffer.alloc(Math.ceil(n / 512) * 512, 7);

/** dir/, a 1000-byte file, a pax header (with data), an empty file, a symlink, a 512-byte file, the end marker. */
const ARCHIVE = Buffer.concat([
  header('base/', 0, '5'),
  header('base/1', 1000, '0'),
  padded(1000),
  header('PaxHeader', 30, 'x'),
  padded(30),
  header('global/pg_control', 0, '0'),
  header('pg_tblspc/16384', 0, '2'),
  header('old', 512, '\0'),
  padded(512),
  Buffer.alloc(1024),
  Buffer.alloc(8192), // record padding after the end marker
]);

describe('TarCounter', () => {
  test('counts regular files and sees the end marker, at every split point', () => {
    for (let cut = 0; cut <= ARCHIVE.length; cut += 37) {
      const c = new TarCounter();
      const files = c.push(ARCHIVE.subarray(0, cut)) + c.push(ARCHIVE.subarray(cut));
      assert.equal(files, 3, `cut at ${cut}`);
      assert.equal(c.ended, true);
    }
  });

  test('byte by byte', () => {
    const c = new TarCounter();
    let files = 0;
    for (let i = 0; i < ARCHIVE.length; i++) files += c.push(ARCHIVE.subarray(i, i + 1));
    assert.equal(files, 3);
    assert.equal(c.ended, true);
  });

  test('a truncated archive has not ended; one zero block alone is not the end', () => {
    const c = new TarCounter();
    c.push(ARCHIVE.subarray(0, 512 * 4));
    assert.equal(c.ended, false);
    const d = new TarCounter();
    d.push(Buffer.concat([header('a', 0, '0'), Buffer.alloc(512), header('b', 0, '0')]));
    assert.equal(d.ended, false);
  });

  test('sizes: octal text, and GNU base-256 for files over 8 GiB', () => {
    assert.equal(tarSize(Buffer.from('00000001750\0')), 1000);
    const big = Buffer.alloc(12);
    big[0] = 0x80;
    big.writeUIntBE(20 * 2 ** 30, 6, 6);
    assert.equal(tarSize(big), 20 * 2 ** 30);
  });
});

describe('leadingMember', () => {
  const label = Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n');
  const map = Buffer.from('16385 /srv/ts\n');
  const stream = (chunk: number) => {
    const all = Buffer.concat([
      header('backup_label', label.length, '0'),
      label,
      Buffer.alloc(padded(label.length).length - label.length),
      header('./tablespace_map', map.length, '0'),
      map,
      Buffer.alloc(512 - map.length),
      ARCHIVE,
    ]);
    const parts: Buffer[] = [];
    for (let i = 0; i < all.length; i += chunk) parts.push(all.subarray(i, i + chunk));
    return Readable.from(parts);
  };

  test('finds a member near the head, whatever the chunking, and stops reading', async () => {
    for (const chunk of [1, 100, 512, 513, 100_000]) {
      const src = stream(chunk);
      assert.deepEqual(await leadingMember(src, 'tablespace_map'), map, `chunks of ${chunk}`);
      assert.equal(src.destroyed, true);
    }
  });

  test('null when absent before the end marker or beyond maxEntries', async () => {
    assert.equal(await leadingMember(stream(700), 'pg_hba.conf'), null);
    assert.equal(await leadingMember(stream(700), 'tablespace_map', 1), null);
  });

  test('names: ustar prefix joined, "./" dropped', () => {
    const h = header('./pg_wal/', 0, '5');
    assert.equal(tarName(h), 'pg_wal/');
    const u = header('file', 0, '0');
    u.write('ustar', 257, 'latin1');
    u.write('base/16384', 345, 'utf8');
    assert.equal(tarName(u), 'base/16384/file');
  });
});
