/**
 * Bad input against a live proxy: every hostile connection gets an ErrorResponse where the protocol allows (or is
 * closed), and the proxy keeps serving everyone else — a normal client works after each attack and at the end.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import pg from 'pg';
import {
  buildSSLRequest,
  buildStartupMessage,
  type Frame,
  Framer,
  parseNoticeFields,
  ProtocolCode,
} from '../../src/protocol/index.js';
import { prng, randInt } from '../../src/protocol/testing.js';
import { proxyFixture } from '../helpers/proxy.js';

const fx = proxyFixture('proxy-hostile', { postgres: { maxConnections: 20 }, setup });
let at: { host: string; port: number };

/** Sends `bytes` (optionally then half-closes) and collects everything until the proxy closes the connection. */
function exchange(bytes: Buffer[], opts: { halfClose?: boolean } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s: Socket = connect(at, () => {
      for (const b of bytes) s.write(b);
      if (opts.halfClose) s.end();
    });
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', (e: NodeJS.ErrnoException) =>
      e.code === 'ECONNRESET' || e.code === 'EPIPE' ? undefined : reject(e),
    );
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

function errorIn(reply: Buffer): { sqlstate: string; message: string } | null {
  const f = new Framer();
  f.push(reply);
  try {
    for (let m: Frame | undefined = f.next(); m; m = f.next()) {
      if (m.type === 0x45) {
        const n = parseNoticeFields(m.payload);
        return { sqlstate: n.sqlstate, message: n.message };
      }
    }
  } catch {
    return null;
  }
  return null;
}

async function normalClientWorks(): Promise<void> {
  const c = new pg.Client({ ...at, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    assert.equal((await c.query('select 1 as one')).rows[0].one, 1);
  } finally {
    await c.end();
  }
}

const startup = buildStartupMessage({ user: 'postgres', database: 'postgres' });
const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

/** One proxy for the whole file (fixture setup: it is closed after all tests). */
async function setup(): Promise<void> {
  const { host, port } = await fx.proxy({ default_pool_size: 2, max_packet_size: 1024 * 1024 });
  at = { host, port };
}

describe('hostile clients', () => {
  it('a startup packet announcing a huge length gets 54000 (program_limit_exceeded) and is closed', async () => {
    const reply = await exchange([int32(0x7fffffff), int32(ProtocolCode.V3_0)]);
    assert.equal(errorIn(reply)?.sqlstate, '54000');
    await normalClientWorks();
  });

  it('a too-short startup length, a bad protocol version and plain garbage get 08P01/0A000', async () => {
    assert.equal(errorIn(await exchange([int32(3), Buffer.alloc(8)]))?.sqlstate, '08P01');
    assert.equal(errorIn(await exchange([int32(8), int32(2 << 16)]))?.sqlstate, '0A000');
    assert.equal(errorIn(await exchange([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]))?.sqlstate, '54000');
    await normalClientWorks();
  });

  it('SSLRequest and GSSENCRequest are refused with N; bytes sent ahead of the answer are an error', async () => {
    const r = await exchange([buildSSLRequest()], { halfClose: true });
    assert.equal(r.subarray(0, 1).toString(), 'N');
    const gss = Buffer.concat([int32(8), int32(ProtocolCode.GSSENCRequest)]);
    assert.equal((await exchange([gss], { halfClose: true })).subarray(0, 1).toString(), 'N');
    const injected = await exchange([Buffer.concat([buildSSLRequest(), startup])]);
    assert.equal(errorIn(injected)?.sqlstate, '08P01');
    await normalClientWorks();
  });

  it('after login: an unknown message type, a message over max_packet_size, a password message get an error', async () => {
    const bad = async (msg: Buffer): Promise<string | undefined> => errorIn(await exchange([startup, msg]))?.sqlstate;
    assert.equal(await bad(Buffer.from([0x01, 0, 0, 0, 4])), '08P01');
    assert.equal(await bad(Buffer.concat([Buffer.from([0x51]), int32(64 * 1024 * 1024)])), '54000');
    assert.equal(await bad(Buffer.from([0x70, 0, 0, 0, 5, 0])), '08P01');
    await normalClientWorks();
  });

  it('half-open connections (nothing sent, half a header, half a message) do not disturb others', async () => {
    const idle: Socket[] = [];
    const open = (bytes: Buffer) =>
      new Promise<void>((resolve) => {
        const s = connect(at, () => {
          s.write(bytes);
          resolve();
        });
        s.on('error', () => {});
        idle.push(s);
      });
    await open(Buffer.alloc(0));
    await open(Buffer.from([0, 0]));
    await open(Buffer.concat([startup, Buffer.from([0x51, 0, 0, 0, 100, 0x53])]));
    try {
      await normalClientWorks();
    } finally {
      for (const s of idle) s.destroy();
    }
  });

  it('200 connections of seeded random bytes (before and after login), then a normal client', async () => {
    const rand = prng(20260501);
    const attacks: Promise<Buffer>[] = [];
    for (let i = 0; i < 200; i++) {
      const junk = Buffer.alloc(1 + randInt(rand, 300));
      for (let j = 0; j < junk.length; j++) junk[j] = randInt(rand, 256);
      const afterLogin = i % 2 === 0;
      attacks.push(exchange(afterLogin ? [startup, junk] : [junk], { halfClose: true }));
    }
    const replies = await Promise.all(attacks);
    assert.equal(replies.length, 200);
    await normalClientWorks();
  });

  it('a normal query between attacks still completes on a connection opened before them', async () => {
    const c = new pg.Client({ ...at, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      await exchange([int32(0x7fffffff)]);
      await exchange([startup, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff])]);
      assert.equal((await c.query('select 2 as two')).rows[0].two, 2);
    } finally {
      await c.end();
    }
  });
});
