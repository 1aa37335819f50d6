/** Reading the log_line_prefix back from the managed file pgkeel wrote. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderConf } from '../../postgres/conf.js';
import { logLinePrefix, unquoteConfValue } from './logs.js';

describe('logLinePrefix', () => {
  it('reads back what renderConf wrote, quotes and backslashes included', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgkeel-prefix-'));
    try {
      const prefix = "%t [%p]: user=%u,db=%d,app='%a' \\x ";
      writeFileSync(join(dir, 'postgresql.pgkeel.conf'), renderConf({ port: 5432, log_line_prefix: prefix }));
      assert.equal(logLinePrefix(dir), prefix);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("falls back to pgkeel's default when the file is missing", () => {
    assert.equal(logLinePrefix('/nonexistent/data'), '%m [%p] %q%u@%d ');
  });

  it('unquotes bare values and strips a trailing comment', () => {
    assert.equal(unquoteConfValue(" 'a''b' # c"), "a'b");
    assert.equal(unquoteConfValue(' on # comment'), 'on');
  });
});
