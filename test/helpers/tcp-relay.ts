/**
 * A TCP relay a test can cut: while cut, open connections are dropped and new ones are accepted but never
 * answered — what a network partition looks like to a client (timeouts, not refusals).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class TcpRelay implements AsyncDisposable {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private cutOff = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async listen(host = '127.0.0.1'): Promise<string> {
    this.server = createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => {});
      if (this.cutOff) return; // hold it open, say nothing
      const upstream = connect({ host: this.targetHost, port: this.targetPort });
      this.sockets.add(upstream);
      upstream.on('close', () => {
        this.sockets.delete(upstream);
        client.destroy();
      });
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, host, () => resolve()));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    return `${host}:${this.port}`;
  }

  /** Drops every connection; later ones hang until restore(). */
  cut(): void {
    this.cutOff = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.cutOff = false;
    for (const s of this.sockets) s.destroy(); // the hung ones: clients reconnect and get through
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
