/**
 * A small structured logger: one JSON object per line (files, machines) or readable text (a terminal).
 * Fields whose names look secret are replaced before anything is written, so a password handed to a log call by
 * mistake never reaches a file. Writing a line never throws and never stops the process: on a full disk or a closed
 * reader the line is lost and counted, and the next line that gets through says how many were lost (`stdioWriter`).
 */
import { writeSync } from 'node:fs';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET = /pass(word)?|secret|token|credential/i;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level?: Level;
  format?: 'json' | 'text';
  write?: (line: string) => void;
  now?: () => Date;
}

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error)
    return { message: value.message, ...('code' in value ? { code: (value as { code: unknown }).code } : {}) };
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>))
    out[k] = SECRET.test(k) ? '[redacted]' : redact(v, depth + 1);
  return out;
}

/** Removes the password from a libpq URL or key=value conninfo. */
export function redactConninfo(s: string): string {
  return s
    .replace(/(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/gi, '$1[redacted]')
    .replace(/(\/\/[^:/@]+:)[^@]*@/, '$1[redacted]@');
}

export function createLogger(opts: LoggerOptions = {}, base: Record<string, unknown> = {}): Logger {
  const min = ORDER[opts.level ?? 'info'];
  const write = opts.write ?? stdioWriter(process.stderr, 2);
  const now = opts.now ?? (() => new Date());
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const f = redact({ ...base, ...fields }) as Record<string, unknown>;
    if (opts.format === 'text') {
      const extra = Object.entries(f)
        .filter(([k]) => k !== 'component')
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
      const comp = f['component'] ? `[${String(f['component'])}] ` : '';
      write(
        `${now().toISOString().slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${comp}${msg}${extra.length ? '  ' + extra.join(' ') : ''}`,
      );
    } else {
      write(JSON.stringify({ time: now().toISOString(), level, msg, ...f }));
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(opts, { ...base, ...fields }),
  };
}

export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};

const writers = new WeakMap<NodeJS.WriteStream, (line: string) => void>();

/**
 * A line writer for stdout or stderr that survives its destination failing. Node's stdio streams emit 'error' on a
 * failed write (ENOSPC when the log file's disk is full, EPIPE when the reader is gone) — unhandled, that ends the
 * process — and then stay destroyed. Here the error is caught, and once the stream is destroyed lines go to its file
 * descriptor directly, so logging resumes when space is back. One writer per stream.
 */
export function stdioWriter(
  stream: NodeJS.WriteStream,
  fd: number,
  writeFd: (fd: number, s: string) => void = writeSync,
): (line: string) => void {
  const existing = writers.get(stream);
  if (existing) return existing;
  let lost = 0;
  let why = '';
  stream.on('error', (err: NodeJS.ErrnoException) => {
    lost++;
    why = err.code ?? err.message;
  });
  const writer = (line: string): void => {
    const owed = lost;
    const text = owed > 0 ? `${lostLine(owed, why)}\n${line}\n` : `${line}\n`;
    if (!stream.destroyed) {
      // A failed write reaches the 'error' listener above (this line counts as lost) and not this callback's success.
      stream.write(text, (err) => {
        if (!err) lost -= owed;
      });
      return;
    }
    try {
      writeFd(fd, text);
      lost -= owed;
    } catch (err) {
      lost++;
      why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
  };
  writers.set(stream, writer);
  return writer;
}

function lostLine(n: number, why: string): string {
  return JSON.stringify({
    time: new Date().toISOString(),
    level: 'warn',
    msg: `${n} log line${n === 1 ? ' was' : 's were'} lost: the log could not be written (${why})`,
    code: 'LOG_LINES_LOST',
  });
}
