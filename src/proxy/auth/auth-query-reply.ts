/**
 * auth_query on the wire, without a socket: the request for one user (extended protocol, the user name bound as $1 —
 * never part of the SQL text) and the reading of its reply into a secret, as pgBouncer reads it (doc/config.md
 * auth_query): two columns (user name, password secret); no row, a NULL user name or a NULL password all mean that
 * no password the client offers can be accepted. Requests are pipelined on one connection, so replies are matched
 * to requests in order, each ending at its ReadyForQuery.
 */
import {
  BACKEND_CODES,
  BackendCode,
  buildBind,
  buildDescribe,
  buildExecute,
  buildParse,
  buildSync,
  Framer,
  type NoticeFields,
  parseDataRow,
  parseNoticeFields,
  parseRowDescription,
  ProtocolError,
  ProtocolErrorCode,
} from '../../protocol/index.js';
import { secretKind, type UserSecret } from './auth-file.js';

export type AuthQueryOutcome =
  /** `secret` undefined: no such user, or no password it can log in with (expired, none set). */
  | { readonly kind: 'secret'; readonly secret: UserSecret | undefined }
  /** The server refused the query, or its result is not (user name, password) in at most one row. */
  | { readonly kind: 'error'; readonly message: string; readonly sqlstate: string };

/** Parse, Bind ($1 = user), Describe (to check the columns), Execute and Sync of the unnamed statement. */
export function buildAuthQueryRequest(sql: string, user: string): Buffer {
  return Buffer.concat([
    buildParse('', sql),
    buildBind({ params: [user] }),
    buildDescribe('P', ''),
    buildExecute(),
    buildSync(),
  ]);
}

/** What one reply said, reduced to the outcome; `rows` holds at most the first two rows (text format). */
export function interpretAuthQuery(
  user: string,
  columns: number | null,
  rows: readonly (readonly (string | null)[])[],
  rowCount: number,
  error: NoticeFields | null,
): AuthQueryOutcome {
  if (error) return { kind: 'error', message: error.message, sqlstate: error.sqlstate };
  if (columns !== 2) {
    return {
      kind: 'error',
      message: `auth_query must return two columns (user name, password), got ${columns ?? 'no result set'}`,
      sqlstate: '',
    };
  }
  if (rowCount > 1)
    return { kind: 'error', message: `auth_query returned ${rowCount} rows for one user name`, sqlstate: '' };
  const row = rows[0];
  const name = row?.[0];
  const secret = row?.[1];
  // PostgreSQL refuses to store an empty password, so an empty one is treated like NULL rather than as "no password".
  if (name === null || name === undefined || secret === null || secret === undefined || secret === '')
    return { kind: 'secret', secret: undefined };
  return { kind: 'secret', secret: { user, secret, kind: secretKind(secret) } };
}

/** One request's reply, frame by frame (ParseComplete … ReadyForQuery). */
export class AuthQueryReply {
  private columns: number | null = null;
  private readonly rows: (string | null)[][] = [];
  private rowCount = 0;
  private error: NoticeFields | null = null;

  constructor(readonly user: string) {}

  /** One backend frame; true when it ends the reply (ReadyForQuery). */
  onFrame(type: number, payload: Buffer): boolean {
    switch (type) {
      case BackendCode.RowDescription:
        this.columns = parseRowDescription(payload).length;
        return false;
      case BackendCode.DataRow:
        // Copied to strings at once: the frame is a view into a buffer the connection reuses.
        if (this.rowCount++ < 2)
          this.rows.push(parseDataRow(payload).map((v) => (v === null ? null : v.toString('utf8'))));
        return false;
      case BackendCode.ErrorResponse:
        this.error ??= parseNoticeFields(payload);
        return false;
      case BackendCode.ReadyForQuery:
        return true;
      default:
        return false; // ParseComplete, BindComplete, NoData, CommandComplete, NoticeResponse, ParameterStatus
    }
  }

  outcome(): AuthQueryOutcome {
    return interpretAuthQuery(this.user, this.columns, this.rows, this.rowCount, this.error);
  }
}

/** Replies to pipelined requests: server bytes in (cut anywhere), outcomes out in request order. */
export class AuthQueryReplies {
  private readonly framer = new Framer({ allowedTypes: BACKEND_CODES });
  private readonly queue: AuthQueryReply[] = [];

  /** A request for `user` was sent. */
  expect(user: string): void {
    this.queue.push(new AuthQueryReply(user));
  }

  get outstanding(): number {
    return this.queue.length;
  }

  /** The outcomes of the replies these bytes complete, oldest first. Throws a ProtocolError on bytes nobody asked for. */
  push(bytes: Buffer): AuthQueryOutcome[] {
    const done: AuthQueryOutcome[] = [];
    this.framer.push(bytes);
    for (let f = this.framer.next(); f !== undefined; f = this.framer.next()) {
      const head = this.queue[0];
      if (head === undefined) {
        // NoticeResponse/ParameterStatus may arrive at any time; anything else between replies is a server gone wrong.
        if (f.type === BackendCode.NoticeResponse || f.type === BackendCode.ParameterStatus) continue;
        throw new ProtocolError(
          ProtocolErrorCode.UnknownMessage,
          'auth_query connection: a message with no request outstanding',
          { type: f.type },
        );
      }
      if (!head.onFrame(f.type, f.payload)) continue;
      this.queue.shift();
      done.push(head.outcome());
    }
    return done;
  }
}
