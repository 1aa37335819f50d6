/**
 * Latency on one link where the kernel has no `tc netem` (as on the machines these tests run on): a TCP relay in
 * the root namespace that holds every chunk for `oneWayMs` in each direction before passing it on, in order. A host's
 * connections to a peer are routed through it with `HostNet.redirect` (iptables DNAT in the host's namespace), so
 * only that link is slowed; loss on it comes from `HostNet.loss` on the relay's port.
 *
 * The relay never buffers without bound: a side whose writes do not drain pauses the other side's reads.
 */
import net from 'node:net';

export class DelayRelay {
  private readonly sockets = new Set<net.Socket>();
  /** Bytes passed on, both directions (proof that traffic took this path). */
  bytes = 0;

  private constructor(
    private readonly server: net.Server,
    readonly address: string,
  ) {}

  /** Listens on `host`:ephemeral and relays to `target` ("ip:port") with `oneWayMs` each way. */
  static async start(host: string, target: string, oneWayMs: number): Promise<DelayRelay> {
    const [tHost, tPort] = target.split(':') as [string, string];
    let relay: DelayRelay | null = null;
    const server = net.createServer((client) => {
      const upstream = net.connect({ host: tHost, port: Number(tPort) });
      for (const s of [client, upstream]) {
        s.setNoDelay(true);
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
        s.on('close', () => {
          client.destroy();
          upstream.destroy();
          relay?.sockets.delete(s);
        });
        relay?.sockets.add(s);
      }
      const count = (n: number) => {
        if (relay) relay.bytes += n;
      };
      pipeDelayed(client, upstream, oneWayMs, count);
      pipeDelayed(upstream, client, oneWayMs, count);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    const port = (server.address() as net.AddressInfo).port;
    relay = new DelayRelay(server, `${host}:${port}`);
    return relay;
  }

  get port(): number {
    return Number(this.address.split(':')[1]);
  }

  /** Stops listening and cuts every relayed connection (their ends reconnect directly once the DNAT is gone). */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function pipeDelayed(from: net.Socket, to: net.Socket, ms: number, count: (n: number) => void): void {
  let pending = 0;
  let blocked = false;
  to.on('drain', () => {
    blocked = false;
    if (pending <= 64) from.resume();
  });
  from.on('data', (chunk: Buffer) => {
    pending++;
    if (pending > 64) from.pause();
    setTimeout(() => {
      pending--;
      if (to.destroyed) return;
      count(chunk.length);
      if (!to.write(chunk)) {
        blocked = true;
        from.pause();
      } else if (!blocked && pending <= 64) from.resume();
    }, ms);
  });
  from.on('end', () => setTimeout(() => to.end(), ms));
}
