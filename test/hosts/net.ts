/**
 * Hosts for fault tests, made of Linux network namespaces: one bridge in the root namespace (the "switch", with an
 * address the proxy and the test's clients use), and per host a namespace with a veth cable to the bridge and one
 * address on a private /24 chosen for this run. Only these addresses are ever targeted.
 *
 * Faults: a host's link down (packets vanish, nothing refuses — like a pulled cable or a dead host), traffic dropped
 * between two hosts (iptables in both namespaces, so a "partition" is symmetric), latency and loss (`tc netem`, where
 * the kernel has it), and healing each.
 * Everything is torn down by `close()` (namespaces, veths, bridge); processes started in a namespace are the
 * caller's to kill by pid first, since deleting a namespace does not stop them.
 *
 * Needs root, iproute2 and iptables. `available()` says why not when they are missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface Host {
  readonly name: string;
  /** Namespace name (`ip netns exec <ns> …`). */
  readonly ns: string;
  readonly ip: string;
  /** The veth end inside the namespace. */
  readonly dev: string;
}

function sh(cmd: string, args: readonly string[]): string {
  return execFileSync(cmd, args as string[], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryCmd(cmd: string, args: readonly string[]): boolean {
  return spawnSync(cmd, args as string[], { stdio: 'ignore' }).status === 0;
}

/** null when namespaces can be made here, else the reason (for a test's `skip`). */
export function available(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (!tryCmd('ip', ['-V'])) return 'iproute2 (ip) is not installed';
  if (!tryCmd('iptables', ['--version'])) return 'iptables is not installed';
  const probe = `pkprobe${randomBytes(3).toString('hex')}`;
  if (!tryCmd('ip', ['netns', 'add', probe])) return 'cannot create a network namespace here (no CAP_SYS_ADMIN?)';
  tryCmd('ip', ['netns', 'del', probe]);
  return null;
}

export class HostNet {
  readonly hosts = new Map<string, Host>();
  readonly bridge: string;
  /** The bridge's address: the root namespace (test process, proxy) as seen from the hosts. */
  readonly gateway: string;
  private readonly id: string;
  private readonly subnet: string;
  private closed = false;

  private constructor(id: string, octet: number) {
    this.id = id;
    this.bridge = `pkb${id}`;
    this.subnet = `10.231.${octet}`;
    this.gateway = `${this.subnet}.1`;
  }

  /** A bridge on a /24 no existing interface uses, and one namespace per name. */
  static create(names: readonly string[]): HostNet {
    const used = sh('ip', ['-o', '-4', 'addr', 'show']);
    let octet = 0;
    for (let tries = 0; tries < 50; tries++) {
      const o = 10 + Math.floor(Math.random() * 240);
      if (!used.includes(`10.231.${o}.`)) {
        octet = o;
        break;
      }
    }
    if (!octet) throw new Error('no free 10.231.x.0/24 subnet for the test hosts');
    const net = new HostNet(randomBytes(3).toString('hex'), octet);
    try {
      sh('ip', ['link', 'add', net.bridge, 'type', 'bridge']);
      sh('ip', ['addr', 'add', `${net.gateway}/24`, 'dev', net.bridge]);
      sh('ip', ['link', 'set', net.bridge, 'up']);
      for (const [i, name] of names.entries()) net.addHost(name, 10 + i);
    } catch (err) {
      net.close();
      throw err;
    }
    return net;
  }

  private addHost(name: string, last: number): void {
    const ns = `pk${this.id}${name}`.slice(0, 30);
    const outer = `pkv${this.id}${last}`;
    const dev = `eth${last}`;
    sh('ip', ['netns', 'add', ns]);
    this.hosts.set(name, { name, ns, ip: `${this.subnet}.${last}`, dev });
    sh('ip', ['link', 'add', outer, 'type', 'veth', 'peer', 'name', dev, 'netns', ns]);
    sh('ip', ['link', 'set', outer, 'master', this.bridge, 'up']);
    const inNs = (...a: string[]) => sh('ip', ['netns', 'exec', ns, ...a]);
    inNs('ip', 'addr', 'add', `${this.subnet}.${last}/24`, 'dev', dev);
    inNs('ip', 'link', 'set', dev, 'up');
    inNs('ip', 'link', 'set', 'lo', 'up');
  }

  host(name: string): Host {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no test host "${name}"`);
    return h;
  }

  /** argv prefix that runs a command inside a host's namespace. */
  exec(name: string): string[] {
    return ['ip', 'netns', 'exec', this.host(name).ns];
  }

  /** The host's cable is pulled: its packets vanish both ways, nobody gets a refusal. */
  linkDown(name: string): void {
    const h = this.host(name);
    sh('ip', ['netns', 'exec', h.ns, 'ip', 'link', 'set', h.dev, 'down']);
  }

  linkUp(name: string): void {
    const h = this.host(name);
    sh('ip', ['netns', 'exec', h.ns, 'ip', 'link', 'set', h.dev, 'up']);
  }

  /** Drops every packet between `a` and each of `others` (both directions, in both namespaces). */
  partition(a: string, others: readonly string[]): void {
    for (const b of others) this.rule('-A', a, b);
  }

  heal(a: string, others: readonly string[]): void {
    for (const b of others) this.rule('-D', a, b);
  }

  /**
   * Packets from `from` to each of `to` vanish; the other direction still flows (an asymmetric partition: `from`'s
   * SYNs and requests never arrive, while the peers' packets still reach it).
   */
  dropOneWay(from: string, to: readonly string[]): void {
    for (const b of to) this.oneWay('-A', from, b);
  }

  healOneWay(from: string, to: readonly string[]): void {
    for (const b of to) this.oneWay('-D', from, b);
  }

  private oneWay(op: '-A' | '-D', a: string, b: string): void {
    const ha = this.host(a);
    const hb = this.host(b);
    sh('ip', ['netns', 'exec', ha.ns, 'iptables', op, 'OUTPUT', '-d', hb.ip, '-j', 'DROP']);
    sh('ip', ['netns', 'exec', hb.ns, 'iptables', op, 'INPUT', '-s', ha.ip, '-j', 'DROP']);
  }

  /**
   * Random loss of `percent` % of the packets a host sends and receives on TCP port `port` (either end), with
   * iptables' statistic match — the loss half of a bad link where netem is missing. `null` removes it.
   */
  loss(name: string, port: number, percent: number | null): void {
    const h = this.host(name);
    const rules = [
      ['OUTPUT', '--dport'],
      ['OUTPUT', '--sport'],
      ['INPUT', '--sport'],
      ['INPUT', '--dport'],
    ] as const;
    const p = String((percent ?? this.lossPercent.get(name) ?? 0) / 100);
    for (const [chain, dir] of rules) {
      const spec = [chain, '-p', 'tcp', dir, String(port), '-m', 'statistic', '--mode', 'random', '--probability', p];
      const args = ['netns', 'exec', h.ns, 'iptables', percent === null ? '-D' : '-A', ...spec, '-j', 'DROP'];
      if (percent === null) tryCmd('ip', args);
      else sh('ip', args);
    }
    if (percent === null) this.lossPercent.delete(name);
    else this.lossPercent.set(name, percent);
  }

  private readonly lossPercent = new Map<string, number>();

  /**
   * In `name`'s namespace, new TCP connections to `dest` (ip:port) go to `to` (ip:port) instead — used to route a
   * link through a relay in the root namespace. Existing connections keep their route. `undo` removes the rule.
   */
  redirect(name: string, dest: string, to: string, undo = false): void {
    const h = this.host(name);
    const [ip, port] = dest.split(':') as [string, string];
    const args = ['netns', 'exec', h.ns, 'iptables', '-t', 'nat', undo ? '-D' : '-A', 'OUTPUT', '-p', 'tcp'];
    const rule = [...args, '-d', ip, '--dport', port, '-j', 'DNAT', '--to-destination', to];
    if (undo) tryCmd('ip', rule);
    else sh('ip', rule);
  }

  private rule(op: '-A' | '-D', a: string, b: string): void {
    const ha = this.host(a);
    const hb = this.host(b);
    for (const [self, peer] of [
      [ha, hb],
      [hb, ha],
    ] as const) {
      sh('ip', ['netns', 'exec', self.ns, 'iptables', op, 'INPUT', '-s', peer.ip, '-j', 'DROP']);
      sh('ip', ['netns', 'exec', self.ns, 'iptables', op, 'OUTPUT', '-d', peer.ip, '-j', 'DROP']);
    }
  }

  /**
   * Latency and loss on a host's link (`tc netem`, e.g. "delay 100ms loss 5%"); `null` removes it. Throws a clear
   * error where the kernel has no netem qdisc (as on the machines these tests were written on) — callers skip then.
   */
  netem(name: string, spec: string | null): void {
    const h = this.host(name);
    const base = ['netns', 'exec', h.ns, 'tc', 'qdisc'];
    if (spec === null) {
      tryCmd('ip', [...base, 'del', 'dev', h.dev, 'root']);
      return;
    }
    const r = spawnSync('ip', [...base, 'replace', 'dev', h.dev, 'root', 'netem', ...spec.split(/\s+/)], {
      encoding: 'utf8',
    });
    if (r.status !== 0)
      throw new Error(
        `tc netem is not available here (${(r.stderr || '').trim() || `exit ${r.status}`}): no latency or loss can be added`,
      );
  }

  /** Removes the namespaces, their veths and the bridge. Idempotent; never throws. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.hosts.values()) tryCmd('ip', ['netns', 'del', h.ns]);
    tryCmd('ip', ['link', 'del', this.bridge]);
  }
}
