import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { stdioWriter } from './log.js';

const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

describe('stdioWriter', () => {
  it('a failing stream loses lines, never the process, and the next line that gets through says how many', async () => {
    const stream = new Writable({
      write(_chunk, _enc, cb) {
        cb(enospc());
      },
    }) as unknown as NodeJS.WriteStream;
    const written: string[] = [];
    let full = true;
    const writer = stdioWriter(stream, 7, (fd, s) => {
      assert.equal(fd, 7);
      if (full) throw enospc();
      written.push(s);
    });
    writer('first');
    await new Promise((r) => setImmediate(r));
    assert.equal(stream.destroyed, true, 'the stream gave up after its error');
    writer('second');
    writer('third');
    assert.deepEqual(written, []);
    full = false;
    writer('fourth');
    assert.equal(written.length, 1);
    const [notice, line] = String(written[0]).trimEnd().split('\n');
    const n = JSON.parse(String(notice)) as { msg: string; code: string; level: string };
    assert.equal(n.code, 'LOG_LINES_LOST');
    assert.equal(n.level, 'warn');
    assert.match(n.msg, /^3 log lines were lost: .*ENOSPC/);
    assert.equal(line, 'fourth');
    writer('fifth');
    assert.equal(written[1], 'fifth\n', 'the count starts over once told');
  });

  it('a healthy stream gets each line once, with a newline', async () => {
    const got: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, cb) {
        got.push(String(chunk));
        cb();
      },
    }) as unknown as NodeJS.WriteStream;
    const writer = stdioWriter(stream, 1);
    writer('a');
    writer('b');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(got, ['a\n', 'b\n']);
    assert.equal(stdioWriter(stream, 1), writer, 'one writer per stream');
  });
});
