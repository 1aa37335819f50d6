/**
 * `pgkeel ctl` refusals and failures: a stable code (grep-able, listed in docs/ctl.md) and a message naming the
 * members involved. The CLI prints "pgkeel ctl: <message> (<code>)" and exits 1.
 */
export type CtlErrorCode =
  | 'CTL_DCS_UNAVAILABLE'
  | 'CTL_NO_CLUSTER'
  | 'CTL_NO_LEADER'
  | 'CTL_NOT_LEADER'
  | 'CTL_UNKNOWN_MEMBER'
  | 'CTL_SAME_MEMBER'
  | 'CTL_UNHEALTHY_CANDIDATE'
  | 'CTL_CANDIDATE_LAGGING'
  | 'CTL_NO_CANDIDATE'
  | 'CTL_PAUSED'
  | 'CTL_ALREADY_PAUSED'
  | 'CTL_NOT_PAUSED'
  | 'CTL_BAD_TIME'
  | 'CTL_CONFIRM_NEEDED'
  | 'CTL_ABORTED'
  | 'CTL_REST_UNREACHABLE'
  | 'CTL_REST_FAILED'
  | 'CTL_REST_UNAUTHORIZED'
  | 'CTL_CONFIG_INVALID'
  | 'CTL_TIMEOUT';

export class CtlError extends Error {
  constructor(
    readonly code: CtlErrorCode,
    message: string,
    /** Extra lines printed after the message (e.g. every config problem). */
    readonly detail: readonly string[] = [],
  ) {
    super(message);
    this.name = 'CtlError';
  }
}
