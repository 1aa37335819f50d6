#!/usr/bin/env node
// RSS per idle client: opens N client connections to a pooler (StartupMessage, trust auth, wait for ReadyForQuery),
// leaves them idle and reports (RSS(N) − RSS(0)) / N of the pooler's process. Raw sockets, no client library, so
// the load generator itself stays small. Needs `ulimit -n` above N in this process and in the pooler.
//
//   node bench/proxy/idle-clients.mjs PORT PID N [user] [database]     (or import { measureIdle })
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

function startup(user, database) {
  const body = Buffer.from(`user\0${user}\0database\0${database}\0\0`);
  const b = Buffer.alloc(8 + body.length);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(196608, 4);
  body.copy(b, 8);
  return b;
}

/** Resolves once the server sent ReadyForQuery ('Z'); rejects on ErrorResponse or close. */
function openOne(port, msg) {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => s.write(msg));
    let buf = Buffer.alloc(0);
    const onData = (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (let off = 0; off + 5 <= buf.length; ) {
        const len = buf.readInt32BE(off + 1);
        if (off + 1 + len > buf.length) break;
        const t = buf[off];
        if (t === 0x45)
          return reject(
            new Error(
              `ErrorResponse: ${buf
                .subarray(off + 5, off + 1 + len)
                .toString('latin1')
                .replace(/\0/g, ' ')}`,
            ),
          );
        if (t === 0x5a) {
          s.off('data', onData);
          return resolve(s);
        }
        off += 1 + len;
      }
    };
    s.on('data', onData);
    s.on('error', reject);
    s.on('close', () => reject(new Error('closed before ReadyForQuery')));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function measureIdle({ port, pid, n, user = 'postgres', database = 'postgres', concurrency = 200 }) {
  const msg = startup(user, database);
  // One client first: creates the pool and its first server connection, which are not per-client costs.
  const warm = await openOne(port, msg);
  await sleep(500);
  const rss0 = rssKb(pid);
  const sockets = [warm];
  const openUpTo = async (count) => {
    let next = sockets.length - 1;
    const worker = async () => {
      while (next < count) {
        next++;
        sockets.push(await openOne(port, msg));
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    await sleep(2000); // let allocation settle (GC of start-up garbage)
    return rssKb(pid);
  };
  // Also the slope between N/2 and N: excludes one-off growth (V8's young generation, malloc arenas) that the
  // first thousands of connections trigger in any process.
  const rssHalf = await openUpTo(Math.floor(n / 2));
  const rssN = await openUpTo(n);
  for (const s of sockets) s.destroy();
  await sleep(500);
  const opened = sockets.length - 1;
  return {
    rss0,
    rssHalf,
    rssN,
    opened,
    perClient: (rssN - rss0) / opened,
    marginal: (rssN - rssHalf) / (opened - Math.floor(n / 2)),
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  const [port, pid, n, user, database] = process.argv.slice(2);
  const r = await measureIdle({ port: Number(port), pid: Number(pid), n: Number(n), user, database });
  console.log(
    `${r.opened} idle clients: RSS ${r.rss0} kB -> ${r.rssHalf} kB (N/2) -> ${r.rssN} kB = ${r.perClient.toFixed(2)} KiB per idle client; marginal (N/2..N) ${r.marginal.toFixed(2)} KiB`,
  );
}
