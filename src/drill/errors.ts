/**
 * `pgkeel drill` errors: a stable code (listed in docs/drill.md), the exit code it maps to, and a message naming the
 * flag or member involved. The CLI prints "pgkeel drill: <message> (<code>)".
 */
export const drillErrorCatalogue = {
  DRILL_USAGE: { exit: 2, doc: 'A flag is missing or has a value the drill cannot use; the message names it.' },
  DRILL_BAD_DSN: { exit: 2, doc: '`--dsn` is not a postgres:// URL the probe can use.' },
  DRILL_NO_CREDENTIALS: {
    exit: 2,
    doc: 'The cluster was given without database credentials (a ctl config or `--etcd`): give `--dsn`.',
  },
  DRILL_NOT_HEALTHY: {
    exit: 1,
    doc: 'The cluster was not healthy (one writable leader, every other member streaming) before a round.',
  },
  DRILL_NO_WRITES: { exit: 1, doc: 'The probe acknowledged no write in the seconds before the fault.' },
  DRILL_FAULT_REFUSED: {
    exit: 1,
    doc: 'The leader refused the fault (POST /drill: `restapi.allow_drills` off, no REST authentication, busy).',
  },
} as const;

export type DrillErrorCode = keyof typeof drillErrorCatalogue;

export class DrillError extends Error {
  readonly exit: 1 | 2;
  constructor(
    readonly code: DrillErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DrillError';
    this.exit = drillErrorCatalogue[code].exit;
  }
}
