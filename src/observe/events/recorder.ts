/**
 * The agent's event record: derivation (derive.ts) once per cycle, a ring in memory, one structured log line per
 * event, and a small file beside the data directory so an agent restarted after a crash still shows what happened
 * before it (docs/events.md, "Retention").
 *
 * The file is the agent's own (created 0640 by the agent's user) and never followed through a symlink: its
 * directory may be writable by `postgres`. Past `maxFileBytes` it is rewritten with the newest events that fit in
 * half that size (a temporary file renamed over it, so a crash mid-trim leaves the old file or the new one).
 */
import { closeSync, constants, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../../lib/log.js';
import { readNoFollow } from '../../lib/ownership.js';
import { derive, type Tracked } from './derive.js';
import { isClusterEvent, stamp, type ClusterEvent, type EventDraft } from './event.js';
import type { DecisionFacts, EventState } from './state.js';

export const DEFAULT_CAPACITY = 1000;
export const DEFAULT_MAX_FILE_BYTES = 256 * 1024;

export interface RecorderOptions {
  readonly log: Logger;
  /** Where the events persist; null keeps them in memory only (tests, a node without a data directory). */
  readonly file: string | null;
  readonly capacity?: number;
  readonly maxFileBytes?: number;
}

/** `<data_dir>.events.jsonl`: beside the data directory, never inside it (a re-clone replaces that). */
export function eventsFileFor(dataDir: string): string {
  return join(dirname(dataDir), `${basename(dataDir)}.events.jsonl`);
}

const FILE_MODE = 0o640;

/** The events in a file's text (one JSON object per line), oldest first, and how many lines were not events. */
export function parseEventsFile(text: string): { events: ClusterEvent[]; bad: number } {
  let bad = 0;
  const events: ClusterEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const v: unknown = JSON.parse(line);
      if (isClusterEvent(v)) events.push(v);
      else bad++;
    } catch {
      bad++;
    }
  }
  events.sort((a, b) => a.at - b.at);
  return { events, bad };
}

/** The events an agent left in its file (`eventsFileFor`), read by someone else (`ctl events` when the agent does
 *  not answer); null when there is no such file. Never follows a symlink. */
export function readEventsFile(file: string): ClusterEvent[] | null {
  const text = readNoFollow(file);
  return text === null ? null : parseEventsFile(text).events;
}

export class EventRecorder {
  private ring: ClusterEvent[] = [];
  private tracked: Tracked | null = null;
  private fileBytes = 0;
  /** The file failed last time: say so once, not for every event, until a write works again. */
  private fileFailing = false;
  private readonly capacity: number;
  private readonly maxFileBytes: number;

  constructor(private readonly opts: RecorderOptions) {
    this.capacity = opts.capacity ?? DEFAULT_CAPACITY;
    this.maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  }

  /** Reads the events an earlier run of the agent left; unreadable lines are skipped (and said so once). */
  load(): void {
    const { file, log } = this.opts;
    if (!file) return;
    let text: string | null;
    try {
      text = readNoFollow(file);
    } catch (err) {
      log.warn(`cannot read the events file ${file}: ${(err as Error).message}`, { code: 'EVENTS_FILE_UNREADABLE' });
      return;
    }
    if (text === null) return;
    const { events, bad } = parseEventsFile(text);
    if (bad) log.warn(`skipped ${bad} lines of ${file} that are not events`, { code: 'EVENTS_FILE_UNREADABLE' });
    this.ring = events.slice(-this.capacity);
    this.fileBytes = Buffer.byteLength(text);
  }

  /** One HA cycle: records what changed since the last one; returns the new events. */
  observe(state: EventState, decision: DecisionFacts | null): readonly ClusterEvent[] {
    const { events, tracked } = derive(this.tracked, state, decision);
    this.tracked = tracked;
    return this.record(events);
  }

  record(drafts: readonly EventDraft[]): ClusterEvent[] {
    const added = drafts.map(stamp);
    for (const e of added) {
      this.ring.push(e);
      this.opts.log.info(`event ${e.kind} (${e.member}): ${e.reason}`, { event: e });
    }
    if (this.ring.length > this.capacity) this.ring.splice(0, this.ring.length - this.capacity);
    if (added.length) this.persist(added);
    return added;
  }

  /** Events at or after `since` (epoch ms; undefined: all kept), oldest first. A copy. */
  since(since?: number): ClusterEvent[] {
    return since === undefined ? [...this.ring] : this.ring.filter((e) => e.at >= since);
  }

  private persist(added: readonly ClusterEvent[]): void {
    const { file, log } = this.opts;
    if (!file) return;
    const text = added.map((e) => JSON.stringify(e) + '\n').join('');
    try {
      if (this.fileBytes + Buffer.byteLength(text) > this.maxFileBytes) this.rewrite();
      else {
        writeAll(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, text);
        this.fileBytes += Buffer.byteLength(text);
      }
      this.fileFailing = false;
    } catch (err) {
      if (!this.fileFailing)
        log.warn(`cannot write the events file ${file}: ${(err as Error).message}`, { code: 'EVENTS_FILE_UNWRITABLE' });
      this.fileFailing = true;
    }
  }

  /** The newest events that fit in half the bound, through a temporary file renamed over the old one. */
  private rewrite(): void {
    const file = this.opts.file as string;
    const lines: string[] = [];
    let bytes = 0;
    for (let i = this.ring.length - 1; i >= 0; i--) {
      const line = JSON.stringify(this.ring[i]) + '\n';
      if (bytes + Buffer.byteLength(line) > this.maxFileBytes / 2) break;
      lines.unshift(line);
      bytes += Buffer.byteLength(line);
    }
    const tmp = `${file}.tmp`;
    rmSync(tmp, { force: true });
    writeAll(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, lines.join(''));
    renameSync(tmp, file);
    this.fileBytes = bytes;
  }

  /** Size of the events file as this recorder last wrote it (tests). */
  fileSize(): number {
    const file = this.opts.file;
    return file ? statSync(file).size : 0;
  }
}

function writeAll(path: string, flags: number, text: string): void {
  const fd = openSync(path, flags, FILE_MODE);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}
