import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { isMd5Secret, md5Response, md5Secret, verifyMd5Response } from './md5.js';

/** pgbouncer/pgbouncer test/userlist.txt: muser1/"foo" and muser2/"bar" stored as md5 secrets. */
const MUSER1 = 'md5ab8b744ff66bee42dc47bae34ca17959';
const MUSER2 = 'md598455b3585818e23c2653a59f6d84551';
const salt = Buffer.from([0x01, 0x02, 0xfe, 0xff]);

describe('md5 authentication', () => {
  it('computes the secret PostgreSQL stores', () => {
    assert.equal(md5Secret('muser1', 'foo'), MUSER1);
    assert.equal(md5Secret('muser2', 'bar'), MUSER2);
    assert.ok(isMd5Secret(MUSER1));
    assert.ok(!isMd5Secret('md5' + 'x'.repeat(32)));
    assert.ok(!isMd5Secret('foo'));
  });

  it('answers a salt the same from the password or from the stored secret', () => {
    // Independent spelling of md5(md5(password + user) + salt) with the salt as raw bytes.
    const inner = createHash('md5').update('foomuser1').digest('hex');
    const expected =
      'md5' +
      createHash('md5')
        .update(Buffer.concat([Buffer.from(inner), salt]))
        .digest('hex');
    assert.equal(md5Response('muser1', 'foo', salt), expected);
    assert.equal(md5Response('muser1', MUSER1, salt), expected);
    assert.notEqual(md5Response('muser1', 'foo', Buffer.from([1, 2, 3, 4])), expected);
  });

  it('verifies a client response against either form', () => {
    const response = md5Response('muser2', 'bar', salt);
    assert.ok(verifyMd5Response(response, 'muser2', MUSER2, salt));
    assert.ok(verifyMd5Response(response, 'muser2', 'bar', salt));
    assert.ok(!verifyMd5Response(response, 'muser2', 'baz', salt));
    assert.ok(!verifyMd5Response(response, 'muser1', 'bar', salt));
    assert.ok(!verifyMd5Response(response.slice(0, -1), 'muser2', 'bar', salt));
    assert.ok(!verifyMd5Response('', 'muser2', 'bar', salt));
  });
});
