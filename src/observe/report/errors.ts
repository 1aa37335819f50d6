/**
 * `pgkeel report`'s error catalogue: stable codes, the files or program involved as fields. docs/errors.md lists
 * them (config/errors-doc.ts).
 */
export const reportErrorCatalogue = {
  REPORT_PGBADGER_MISSING: {
    where: 'report',
    summary:
      'pgBadger is not installed (no `pgbadger` on PATH); the message says how to install it (`apt-get install pgbadger`). Exit 1.',
  },
  REPORT_NO_LOGS: {
    where: 'report',
    summary:
      'None of the PostgreSQL logs the report would read exists (the message lists each path it looked at). Exit 1.',
  },
  REPORT_PGBADGER_FAILED: {
    where: 'report',
    summary: 'pgBadger ran but failed or wrote no report; the end of its output is attached. Exit 1.',
  },
} as const;

export type ReportErrorCode = keyof typeof reportErrorCatalogue;

export class ReportError extends Error {
  constructor(
    readonly code: ReportErrorCode,
    message: string,
    readonly context: { readonly files?: readonly string[]; readonly detail?: string } = {},
  ) {
    super(message);
    this.name = 'ReportError';
  }
}
