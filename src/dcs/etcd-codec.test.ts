import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { JsonObjectFramer, classify, compares, decodeEvent, prefixRangeEnd } from './etcd-codec.js';

const messages = [
  { result: { header: { revision: '4' }, created: true } },
  {
    result: { events: [{ kv: { key: 'L2E=', value: 'e30=' } }], note: 'braces } { and "quoted }" and a backslash \\' },
  },
  { error: { code: 14, message: 'etcdserver: no leader — ünïcode' } },
];
const wire = messages.map((m) => JSON.stringify(m)).join('\n') + '\n';

describe('JsonObjectFramer', () => {
  it('yields every object whatever the single split point', () => {
    for (let cut = 0; cut <= wire.length; cut++) {
      const f = new JsonObjectFramer();
      const out = [...f.push(wire.slice(0, cut)), ...f.push(wire.slice(cut))].map((t) => JSON.parse(t) as unknown);
      assert.deepEqual(out, messages, `split at ${cut}`);
    }
  });

  it('yields every object when fed one character at a time, and many in one chunk', () => {
    const f = new JsonObjectFramer();
    const out: unknown[] = [];
    for (const c of wire) out.push(...f.push(c).map((t) => JSON.parse(t) as unknown));
    assert.deepEqual(out, messages);
    assert.deepEqual(
      new JsonObjectFramer().push(wire + wire).map((t) => JSON.parse(t) as unknown),
      [...messages, ...messages],
    );
  });

  it('rejects what is not a stream of objects', () => {
    assert.throws(() => new JsonObjectFramer().push('{"a":1}}'), /unbalanced/);
    assert.throws(() => new JsonObjectFramer().push('[1]'), /unexpected/);
  });
});

describe('prefixRangeEnd', () => {
  const end = (bytes: number[]): number[] => [...prefixRangeEnd(Uint8Array.from(bytes))];
  it('increments the last byte below 0xff and drops what follows', () => {
    assert.deepEqual(end([0x2f, 0x61, 0x2f]), [0x2f, 0x61, 0x30]); // "/a/" → "/a0"
    assert.deepEqual(end([0x61, 0xff, 0xff]), [0x62]);
  });
  it('means "no upper bound" for an empty or all-0xff prefix', () => {
    assert.deepEqual(end([]), [0]);
    assert.deepEqual(end([0xff]), [0]);
  });
});

describe('classify', () => {
  it('passes a 200 answer through', () => {
    assert.deepEqual(classify(200, '{"header":{}}'), { kind: 'ok', json: { header: {} } });
  });
  it('refuses on an etcd error, unless the member is unavailable', () => {
    const notFound = classify(
      404,
      '{"error":"etcdserver: requested lease not found","code":5,"message":"etcdserver: requested lease not found"}',
    );
    assert.equal(notFound.kind, 'refused');
    assert.match((notFound as { reason: string }).reason, /lease not found \(grpc code 5, HTTP 404\)/);
    assert.equal(classify(503, '{"error":"x","code":14,"message":"etcdserver: no leader"}').kind, 'unavailable');
    assert.equal(classify(200, '{"error":{"code":3,"message":"bad"}}').kind, 'refused');
  });
  it('treats a non-JSON 5xx as an unavailable member and a non-JSON 4xx as a refusal', () => {
    assert.equal(classify(502, 'Bad Gateway').kind, 'unavailable');
    assert.equal(classify(404, 'not found').kind, 'refused');
  });
});

describe('compares and decodeEvent', () => {
  it('encodes every expectation etcd-style', () => {
    assert.deepEqual(compares('/k', { exists: false, value: 'v', modRevision: 7 }), [
      { key: 'L2s=', target: 'CREATE', result: 'EQUAL', create_revision: '0' },
      { key: 'L2s=', target: 'VALUE', result: 'EQUAL', value: 'dg==' },
      { key: 'L2s=', target: 'MOD', result: 'EQUAL', mod_revision: '7' },
    ]);
    assert.deepEqual(compares('/k', { exists: true }), [
      { key: 'L2s=', target: 'CREATE', result: 'GREATER', create_revision: '0' },
    ]);
    assert.deepEqual(compares('/k', {}), []);
  });
  it('reads omitted zero fields as zero and lease "0"', () => {
    assert.deepEqual(decodeEvent({ kv: { key: 'L2s=', mod_revision: '9', create_revision: '9' } }), {
      type: 'put',
      kv: { key: '/k', value: '', createRevision: 9, modRevision: 9, lease: '0' },
    });
    assert.deepEqual(decodeEvent({ type: 'DELETE', kv: { key: 'L2s=', mod_revision: '10' } }), {
      type: 'delete',
      key: '/k',
      modRevision: 10,
    });
  });
});
