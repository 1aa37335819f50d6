import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blockedAncestor } from './reach.js';

const tree: Record<string, { uid: number; gid: number; mode: number }> = {
  '/': { uid: 0, gid: 0, mode: 0o755 },
  '/tmp': { uid: 0, gid: 0, mode: 0o1777 },
  '/tmp/tmp.abc': { uid: 0, gid: 0, mode: 0o700 },
  '/tmp/tmp.abc/pgkeel-data': { uid: 0, gid: 0, mode: 0o755 },
  '/srv': { uid: 0, gid: 50, mode: 0o750 },
};
const stat = (p: string) => tree[p] ?? null;
const postgres = { uid: 105, gids: [110] };

describe('blockedAncestor: can the postgres user reach a data directory?', () => {
  it('names the first directory it cannot enter (a mktemp -d is 0700 root)', () => {
    assert.equal(blockedAncestor('/tmp/tmp.abc/pgkeel-data/node1/data', postgres, stat), '/tmp/tmp.abc');
  });
  it('passes through world-traversable directories and stops at what does not exist yet', () => {
    assert.equal(blockedAncestor('/tmp/elsewhere/data', postgres, stat), null);
  });
  it("uses the group bit for a member of the directory's group, the other bit otherwise", () => {
    assert.equal(blockedAncestor('/srv/data', postgres, stat), '/srv');
    assert.equal(blockedAncestor('/srv/data', { uid: 105, gids: [110, 50] }, stat), null);
  });
  it('root reaches everything', () => {
    assert.equal(blockedAncestor('/tmp/tmp.abc/x', { uid: 0, gids: [0] }, stat), null);
  });
});
