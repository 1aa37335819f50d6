/**
 * Retention: which backups and WAL files expiry removes. The plan is pure (`planExpiry`); `expire` applies it.
 *
 * Kept, always: every backup inside the retention (the newest `retention.full` full backups with everything that
 * depends on them or is newer; with `retention.window`, the newest full backup that finished at or before the window's
 * start — the one a restore to that moment needs — and everything newer), and every WAL file from the oldest kept
 * backup's first segment on, plus every timeline history file. Removed: older backups (failed records older than
 * the oldest kept backup too: newer ones stay, so `backup list` shows what happened), and WAL
 * before that first segment. A `running` backup is never touched (expiry runs under the backup lease elsewhere).
 */
import { type BackupRecord, backupDir, byStart, usable } from './catalog.js';
import type { BackupSettings } from './config.js';
import { parseDuration } from './cron.js';
import type { BackupStore } from './store.js';
import { logicalPath } from './store.js';
import { parseWalName } from './wal-names.js';
import { segmentPosition } from './wal-segment.js';

export interface ExpiryPlan {
  readonly keep: string[];
  readonly remove: string[];
  /** WAL segments before this position (log+segment, 16 hex) are removed; null: none. */
  readonly walBefore: string | null;
  readonly reason: string;
}

export function planExpiry(
  records: readonly BackupRecord[],
  retention: BackupSettings['retention'],
  now: Date,
): ExpiryPlan {
  const ok = usable(records);
  const fulls = ok.filter((r) => r.type === 'full');
  let oldestKept: BackupRecord | undefined;
  let reason: string;
  if (retention.window) {
    const start = now.getTime() - parseDuration(retention.window) * 1000;
    const before = fulls.filter((r) => r.stop_time && new Date(r.stop_time).getTime() <= start);
    oldestKept = before.at(-1) ?? fulls[0];
    reason = `window ${retention.window}: keep from the newest full backup finished before ${new Date(start).toISOString()}`;
  } else {
    oldestKept = fulls.at(-Math.min(retention.full, fulls.length));
    reason = `keep the newest ${retention.full} full backup(s) and everything after them`;
  }
  const keep = new Set<string>();
  const remove: string[] = [];
  for (const r of [...records].sort(byStart)) {
    if (r.status === 'running') keep.add(r.id);
    else if (!oldestKept || byStart(r, oldestKept) >= 0)
      keep.add(r.id); // failed ones too: they say what happened
    else remove.push(r.id);
  }
  // An incremental kept whose parent would go keeps its parent (never happens with the rules above; a guard).
  for (const r of records) if (keep.has(r.id) && r.parent && remove.includes(r.parent)) keep.add(r.parent);
  const removeFinal = remove.filter((id) => !keep.has(id));
  const walBefore = oldestKept?.wal_start ? segmentPosition(oldestKept.wal_start) : null;
  return { keep: [...keep], remove: removeFinal, walBefore: ok.length ? walBefore : null, reason };
}

export interface ExpiryResult extends ExpiryPlan {
  readonly walRemoved: string[];
}

/** Applies the plan; with `dryRun`, only says what it would remove. */
export async function expire(
  store: BackupStore,
  records: readonly BackupRecord[],
  retention: BackupSettings['retention'],
  now: Date,
  dryRun = false,
): Promise<ExpiryResult> {
  const plan = planExpiry(records, retention, now);
  const walRemoved: string[] = [];
  if (plan.walBefore) {
    for (const f of await store.repo.list('wal')) {
      const name = logicalPath(f.path).split('/').pop() ?? '';
      const w = parseWalName(name);
      if (!w || w.kind === 'history') continue; // history files stay
      const seg = name.slice(0, 24);
      if (segmentPosition(seg) < plan.walBefore) {
        walRemoved.push(name);
        if (!dryRun) await store.repo.delete(f.path);
      }
    }
  }
  if (!dryRun) for (const id of plan.remove) await store.repo.delete(backupDir(id));
  return { ...plan, walRemoved };
}
