/**
 * The messages between the supervisor (workers.ts) and its worker processes (worker-main.ts), and the worker's end
 * of the link, which the proxy in a worker uses for what spans workers: a CancelRequest for a client of another
 * worker, admin SHOW commands (snapshots of every worker, merged), PAUSE/RESUME/RECONNECT/KILL/RELOAD (run by every
 * worker) and SHUTDOWN.
 */
import type { AdminSnapshot } from '../admin/admin-merge.js';
import type { ProxyConfig } from '../config.js';

export type AdminVerb = 'pause' | 'resume' | 'reconnect' | 'kill' | 'reload';

/** What a worker process receives in PGKEEL_PROXY_WORKER (JSON). */
export interface WorkerSpec {
  readonly index: number;
  readonly count: number;
  /** The configuration before division among workers. */
  readonly config: ProxyConfig;
  readonly configFile?: string;
  /** Logger options; null: silent. */
  readonly log: { readonly format: 'text' | 'json'; readonly level: 'debug' | 'info' | 'warn' | 'error' } | null;
}

export type ToWorker =
  | { readonly t: 'cancel'; readonly pid: number; readonly secret: string }
  | { readonly t: 'snapshot'; readonly id: number }
  | { readonly t: 'gathered'; readonly id: number; readonly snaps: AdminSnapshot[] }
  | { readonly t: 'action'; readonly verb: AdminVerb; readonly arg: string | null }
  | { readonly t: 'shutdown'; readonly timeoutMs: number };

export type FromWorker =
  | { readonly t: 'ready'; readonly rw: string; readonly ro: string | null }
  | { readonly t: 'failed'; readonly message: string }
  | { readonly t: 'cancel'; readonly pid: number; readonly secret: string }
  | { readonly t: 'snapshot-reply'; readonly id: number; readonly snap: AdminSnapshot }
  | { readonly t: 'gather'; readonly id: number }
  | { readonly t: 'action'; readonly verb: AdminVerb; readonly arg: string | null }
  | { readonly t: 'shutdown' };

/** What the proxy in a worker answers for the supervisor. */
export interface WorkerHandlers {
  cancel(pid: number, secret: Buffer): void;
  snapshot(): AdminSnapshot;
  action(verb: AdminVerb, arg: string | null): void;
}

/** The proxy's view of being worker `index` of `count`. */
export interface WorkerLink {
  readonly index: number;
  readonly count: number;
  /** The configuration before division (SHOW CONFIG shows the totals). */
  readonly totalConfig: ProxyConfig;
  /** Called once by the proxy with what it answers. */
  serve(h: WorkerHandlers): void;
  /** A CancelRequest whose key belongs to another worker. */
  cancel(pid: number, secret: Buffer): void;
  /** Every worker's snapshot (this one's included), for SHOW. */
  gather(): Promise<AdminSnapshot[]>;
  /** Run an admin command in every worker (this one's included). */
  action(verb: AdminVerb, arg: string | null): void;
  /** Admin SHUTDOWN: the supervisor stops every worker gracefully. */
  shutdown(): void;
}

const GATHER_TIMEOUT_MS = 5000;

/** The worker's end, over process.send / process.on('message'). */
export function processWorkerLink(
  spec: WorkerSpec,
  send: (m: FromWorker) => void,
): WorkerLink & { receive(m: ToWorker): void } {
  let handlers: WorkerHandlers | null = null;
  let nextId = 1;
  const waiting = new Map<
    number,
    { resolve: (s: AdminSnapshot[]) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  return {
    index: spec.index,
    count: spec.count,
    totalConfig: spec.config,
    serve: (h) => void (handlers = h),
    cancel: (pid, secret) => send({ t: 'cancel', pid, secret: secret.toString('hex') }),
    gather: () =>
      new Promise<AdminSnapshot[]>((resolve, reject) => {
        const id = nextId++;
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error('the other proxy workers did not answer within 5 s'));
        }, GATHER_TIMEOUT_MS);
        waiting.set(id, { resolve, reject, timer });
        send({ t: 'gather', id });
      }),
    action: (verb, arg) => send({ t: 'action', verb, arg }),
    shutdown: () => send({ t: 'shutdown' }),
    receive(m: ToWorker): void {
      switch (m.t) {
        case 'cancel':
          handlers?.cancel(m.pid, Buffer.from(m.secret, 'hex'));
          return;
        case 'snapshot':
          if (handlers) send({ t: 'snapshot-reply', id: m.id, snap: handlers.snapshot() });
          return;
        case 'gathered': {
          const w = waiting.get(m.id);
          if (!w) return;
          waiting.delete(m.id);
          clearTimeout(w.timer);
          w.resolve(m.snaps);
          return;
        }
        case 'action':
          handlers?.action(m.verb, m.arg);
          return;
        case 'shutdown':
          return; // handled by worker-main
      }
    },
  };
}
