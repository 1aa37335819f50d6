#!/usr/bin/env node
// Correctness check for the server read buffer reuse (server-conn.ts nextReadBuffer): a large result set through
// the proxy to slow and fast readers at once (pool 2, 4 clients, so servers change hands) must hash the same as
// direct. Fails (DIFFERENT, exit 1) if a reused buffer is overwritten while a write still references it.
//   flock /tmp/pgkeel-heavy.lock node bench/proxy/check-large-results.mjs
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres } from '../../dist/test/helpers/postgres.js';
import { startProxy } from '../../dist/src/proxy/proxy.js';
import { proxyConfigFromObject } from '../../dist/src/proxy/config.js';
import { createLogger } from '../../dist/src/lib/log.js';
const dir = mkdtempSync(join(tmpdir(), 'bigcheck-')); chmodSync(dir, 0o755);
const pg = await startPostgres(dir, { maxConnections: 50 });
let p;
try {
  p = await startProxy(proxyConfigFromObject({ listen: '127.0.0.1:0', primary: `127.0.0.1:${pg.port}`, pool_mode: 'transaction', default_pool_size: 2 }, 'x'), { log: createLogger({ format: 'text', level: 'error' }) });
  const port = p.rwAddress.split(':').pop();
  const q = "SELECT i, md5(i::text) || repeat('y', 700) FROM generate_series(1,150000) i";
  const sh = (prt, slow) => new Promise((res, rej) => { import('node:child_process').then(({ exec }) => exec(`psql -h 127.0.0.1 -p ${prt} -U postgres -d postgres -At -c "${q}" | ${slow ? '(sleep 2; md5sum)' : 'md5sum'}`, { maxBuffer: 1e9 }, (e, out) => e ? rej(e) : res(out.trim()))); });
  const direct = await sh(pg.port, false);
  const results = await Promise.all([sh(port, true), sh(port, false), sh(port, true), sh(port, false)]);
  console.log('direct', direct); console.log('proxy ', results.join(' | '));
  const same = results.every((r) => r === direct);
  console.log(same ? 'SAME' : 'DIFFERENT');
  if (!same) process.exitCode = 1;
} finally { await p?.close(); await pg.stop(); rmSync(dir, { recursive: true, force: true }); }
