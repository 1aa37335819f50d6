/**
 * Entry point of one proxy worker process (forked by workers.ts through node:cluster): reads its WorkerSpec from
 * PGKEEL_PROXY_WORKER, runs a proxy with its share of the limits, and talks to the supervisor over IPC. A worker
 * whose supervisor disappears (IPC channel closed) shuts down gracefully instead of serving on unsupervised.
 */
import { createLogger, silentLogger } from '../../lib/log.js';
import { startProxy } from '../proxy.js';
import { processWorkerLink, type FromWorker, type ToWorker, type WorkerSpec } from './worker-link.js';

async function main(): Promise<void> {
  const spec = JSON.parse(process.env['PGKEEL_PROXY_WORKER'] ?? 'null') as WorkerSpec | null;
  if (!spec || typeof process.send !== 'function') {
    process.stderr.write('pgkeel proxy worker: start it through `pgkeel proxy` with workers > 1\n');
    process.exit(2);
  }
  const send = (m: FromWorker): void => {
    if (process.connected) process.send?.(m);
  };
  const log = spec.log
    ? createLogger({ format: spec.log.format, level: spec.log.level }).child({ worker: spec.index })
    : silentLogger;
  const link = processWorkerLink(spec, send);
  let stop: ((timeoutMs: number) => Promise<void>) | null = null;
  let exiting = false;
  const exitAfter = async (timeoutMs: number): Promise<void> => {
    if (exiting) return;
    exiting = true;
    await stop?.(timeoutMs);
    process.exit(0);
  };
  process.on('message', (m: ToWorker) => {
    if (m.t === 'shutdown') void exitAfter(m.timeoutMs);
    else link.receive(m);
  });
  process.on('disconnect', () => void exitAfter(spec.config.shutdown_timeout * 1000));
  // Signals go to the supervisor, which stops the workers: a terminal's Ctrl-C reaches the whole process group.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => {});
  try {
    const p = await startProxy(spec.config, {
      log,
      worker: link,
      ...(spec.configFile ? { configFile: spec.configFile } : {}),
    });
    stop = (ms) => (ms > 0 ? p.shutdown() : p.close());
    send({ t: 'ready', rw: p.rwAddress, ro: p.roAddress });
  } catch (err) {
    send({ t: 'failed', message: (err as Error).message });
    process.exit(1);
  }
}

void main();
