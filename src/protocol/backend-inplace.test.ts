import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commandTagIs, parseCommandComplete, parseReadyForQuery, readyStatus } from './backend.js';
import { buildCommandComplete, buildDataRow, buildReadyForQuery } from './backend-builders.js';
import type { Frame } from './frame.js';
import { Framer } from './framer.js';
import { BACKEND_CODES, BackendCode, TxStatus } from './message-codes.js';

/** Every frame of `bytes`, pushed in pieces cut at `cut` (so some frames are views at an offset, some copies). */
function frames(bytes: Buffer, cut: number): Frame[] {
  const f = new Framer({ allowedTypes: BACKEND_CODES });
  const out: Frame[] = [];
  for (let at = 0; at < bytes.length; at += cut) {
    f.push(bytes.subarray(at, Math.min(bytes.length, at + cut)));
    for (let x = f.next(); x; x = f.next()) out.push(x);
  }
  return out;
}

describe('in-place readers of backend messages', () => {
  const stream = Buffer.concat([
    buildDataRow(['DISCARD ALL']),
    buildCommandComplete('SELECT 1'),
    buildCommandComplete('DISCARD ALL'),
    buildCommandComplete('DISCARD ALLX'),
    buildCommandComplete('DEALLOCATE ALL'),
    buildCommandComplete('DEALLOCATE'),
    buildCommandComplete(''),
    buildReadyForQuery(TxStatus.InTransaction),
    buildReadyForQuery(TxStatus.Failed),
    buildReadyForQuery(TxStatus.Idle),
  ]);

  for (const cut of [1, 2, 5, 7, 13, stream.length]) {
    it(`agree with the parsers wherever the chunks are cut (every ${cut} bytes)`, () => {
      const fs = frames(stream, cut);
      assert.equal(fs.length, 10);
      const tags = fs.filter((f) => f.type === BackendCode.CommandComplete);
      assert.deepEqual(
        tags.map((f) => commandTagIs(f, 'DISCARD ALL')),
        [false, true, false, false, false, false],
      );
      assert.deepEqual(
        tags.map((f) => commandTagIs(f, 'DEALLOCATE ALL')),
        [false, false, false, true, false, false],
      );
      assert.deepEqual(
        tags.map((f) => commandTagIs(f, '')),
        [false, false, false, false, false, true],
      );
      for (const f of tags)
        for (const t of ['SELECT 1', 'DISCARD ALL', 'DEALLOCATE'])
          assert.equal(commandTagIs(f, t), parseCommandComplete(f.payload) === t);
      const z = fs.filter((f) => f.type === BackendCode.ReadyForQuery);
      assert.deepEqual(z.map(readyStatus), [TxStatus.InTransaction, TxStatus.Failed, TxStatus.Idle]);
      for (const f of z) assert.equal(readyStatus(f), parseReadyForQuery(f.payload));
    });
  }

  it('reads the tag where CommandComplete has it: a DataRow carrying the same text does not match', () => {
    const [row] = frames(buildDataRow(['DISCARD ALL']), 100);
    assert.equal(commandTagIs(row as Frame, 'DISCARD ALL'), false);
  });
});
