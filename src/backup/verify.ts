/**
 * `pgkeel backup verify [ID]`: proves what the repository holds is what was written and that the WAL each backup
 * needs is there and unbroken.
 *
 * - Every stored file of each usable backup (or of ID) is re-read and its SHA-256 compared with the one recorded
 *   when it was written: a changed byte, a truncated file or a missing one is reported by name; so is a file in a
 *   backup's directory that its record does not list.
 * - WAL: from the backup's first segment, segment by segment, to the newest archived one — following timeline
 *   switches through the history files (from the switch point on, the new timeline's segments) — every segment must
 *   be archived. A backup on a timeline the cluster later left behind is checked up to its own last segment.
 */
import { createHash } from 'node:crypto';
import { type BackupRecord, backupDir, listRecords, recordPath, usable } from './catalog.js';
import type { BackupStore } from './store.js';
import { listWal } from './wal.js';
import {
  DEFAULT_WAL_SEGMENT_SIZE,
  nextSegment,
  parseHistory,
  parseWalName,
  segmentNumber,
  segmentOfLsn,
} from './wal-names.js';

export interface VerifyProblem {
  readonly backup?: string;
  readonly path?: string;
  readonly wal?: string;
  readonly problem: string;
}

export interface VerifyReport {
  readonly backups: string[];
  readonly files: number;
  readonly bytes: number;
  readonly walChecked: number;
  readonly problems: VerifyProblem[];
}

async function sha256Of(store: BackupStore, path: string): Promise<{ sha: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of await store.repo.get(path)) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { sha: h.digest('hex'), size };
}

async function verifyFiles(
  store: BackupStore,
  rec: BackupRecord,
  problems: VerifyProblem[],
): Promise<[number, number]> {
  const dir = backupDir(rec.id);
  let files = 0;
  let bytes = 0;
  const listed = new Set(rec.files.map((f) => `${dir}/${f.name}`));
  for (const f of rec.files) {
    const path = `${dir}/${f.name}`;
    const st = await store.repo.stat(path);
    if (!st) {
      problems.push({ backup: rec.id, path, problem: `missing file ${path}` });
      continue;
    }
    const { sha, size } = await sha256Of(store, path);
    files++;
    bytes += size;
    if (size !== f.size)
      problems.push({ backup: rec.id, path, problem: `${path} is ${size} bytes, ${f.size} were stored` });
    else if (sha !== f.sha256)
      problems.push({
        backup: rec.id,
        path,
        problem: `${path} changed: its SHA-256 differs from the one recorded when it was written`,
      });
  }
  for (const f of await store.repo.list(dir))
    if (f.path !== recordPath(rec.id) && !listed.has(f.path))
      problems.push({
        backup: rec.id,
        path: f.path,
        problem: `unexpected file ${f.path} (not in the backup's record)`,
      });
  return [files, bytes];
}

/** Timeline → the LSN where it ended (switched to a child), from every archived history file. */
async function timelineEnds(store: BackupStore, historyNames: string[], problems: VerifyProblem[]) {
  const ends = new Map<number, { switchpoint: number; child: number }>();
  for (const name of historyNames) {
    const child = parseWalName(name)?.timeline ?? 0;
    try {
      const entries = parseHistory(
        (await store.read((await store.find(`wal/history/${name}`)) as string)).toString('utf8'),
      );
      const last = entries.at(-1);
      if (last) {
        const cur = ends.get(last.timeline);
        // Several children of one timeline (a branch abandoned): follow the newest.
        if (!cur || cur.child < child) ends.set(last.timeline, { switchpoint: last.switchpoint, child });
      }
    } catch (err) {
      problems.push({ wal: name, problem: `history file ${name} is unreadable: ${(err as Error).message}` });
    }
  }
  return ends;
}

export async function verifyRepository(
  store: BackupStore,
  opts: { id?: string; segSize?: number } = {},
): Promise<VerifyReport> {
  const segSize = opts.segSize ?? DEFAULT_WAL_SEGMENT_SIZE;
  const problems: VerifyProblem[] = [];
  const records = await listRecords(store);
  let targets: BackupRecord[];
  if (opts.id) {
    const r = records.find((x) => x.id === opts.id);
    if (!r)
      return {
        backups: [],
        files: 0,
        bytes: 0,
        walChecked: 0,
        problems: [{ backup: opts.id, problem: `no backup ${opts.id} in the repository` }],
      };
    if (r.status !== 'ok')
      problems.push({
        backup: r.id,
        problem: `backup ${r.id} is ${r.status}${r.error ? `: ${r.error}` : ''}, not usable`,
      });
    targets = [r];
  } else targets = usable(records);

  let files = 0;
  let bytes = 0;
  for (const rec of targets) {
    const [f, b] = await verifyFiles(store, rec, problems);
    files += f;
    bytes += b;
  }

  const wal = await listWal(store);
  const have = new Set(wal.map((w) => w.name));
  const segments = wal.filter((w) => parseWalName(w.name)?.kind === 'segment').map((w) => w.name);
  const ends = await timelineEnds(
    store,
    wal.filter((w) => w.name.endsWith('.history')).map((w) => w.name),
    problems,
  );
  const newestPos = segments.reduce((m, s) => Math.max(m, segmentNumber(s, segSize)), -1);
  const checked = new Set<string>();
  for (const rec of targets) {
    if (!rec.wal_start || !rec.wal_stop) continue;
    const stopPos = segmentNumber(rec.wal_stop, segSize);
    // Walk from the backup's first segment; at a timeline's end, continue on its child from the switch point.
    let seg = rec.wal_start;
    let tli = rec.timeline;
    for (let guard = 0; guard < 10_000_000; guard++) {
      const pos = segmentNumber(seg, segSize);
      const end = ends.get(tli);
      if (end && pos >= segmentNumber(segmentOfLsn(tli, end.switchpoint, segSize), segSize)) {
        tli = end.child;
        seg = segmentOfLsn(tli, end.switchpoint, segSize);
        continue;
      }
      if (pos > Math.max(newestPos, stopPos)) break;
      checked.add(seg);
      if (!have.has(seg)) {
        // Past the backup's own range, the newest segment on the current timeline may simply not be archived yet.
        const beyondNewest = pos > newestPos;
        if (!beyondNewest || pos <= stopPos)
          problems.push({
            backup: rec.id,
            wal: seg,
            problem: `missing WAL segment ${seg}${pos <= stopPos ? ` (needed to restore backup ${rec.id} at all)` : ` (needed to recover past it from backup ${rec.id})`}`,
          });
      }
      seg = nextSegment(seg, segSize);
    }
  }
  // One missing segment concerns every backup before it: report it once per segment.
  const seen = new Set<string>();
  const deduped = problems.filter((p) => {
    if (!p.wal || p.problem.includes('at all')) return true;
    if (seen.has(p.wal)) return false;
    seen.add(p.wal);
    return true;
  });
  return { backups: targets.map((r) => r.id), files, bytes, walChecked: checked.size, problems: deduped };
}
