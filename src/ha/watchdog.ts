/**
 * Watchdog fencing (Patroni `patroni/watchdog/base.py`, docs/deploy-watchdog.md). The leader arms the device with
 * timeout = ttl - safety_margin and feeds it every cycle; when the agent hangs or dies, nobody feeds it and the
 * kernel resets the host before the leader key's lease can expire and another member be promoted.
 *
 * The loop drives it (agent.ts), in this order each cycle:
 *   `beforeCycle()`  feed, before the DCS read that may take up to retry_timeout;
 *   `afterLease()`   feed again once the lease step renewed our leader key (Patroni feeds after `update_lock`);
 *   `view()`         what `decide` sees (Observed.watchdog): armed, ready (can be armed), unavailable (why), off;
 *   `gate()`         arm before a decision that leads (take_leadership, promote, or keeping the key) runs; when arming
 *                    fails in `required` mode the loop decides again with the new view, and decide refuses to lead;
 *   `afterCycle()`   disarm (magic close) once the decision no longer leads and no demote is still running;
 *   `stop()`         disarm on a clean shutdown.
 * `automatic` uses the device when it can and warns once per distinct problem; `off` never touches it.
 *
 * Every feed is bounded by the lease: a keepalive at `now` lets the host live until now + timeout, which must come
 * before the leader key can expire (last successful renewal + ttl). So a feed happens only while
 * now - lastRenew.at <= safety_margin; a leader whose renewals stall (slow or lost DCS) stops feeding, and if it
 * does not demote and disarm in time the kernel resets the host before anyone else can be promoted.
 */
import type { WatchdogMode } from '../config/node.js';
import type { Logger } from '../lib/log.js';
import type { WatchdogDevice } from './watchdog-device.js';
import type { Busy, Decision, HaSettings, Renewal } from './view.js';

export interface WatchdogView {
  readonly mode: WatchdogMode;
  /** 'armed': open and fed by this agent; 'ready': not armed, nothing known to prevent arming; 'unavailable': it
   *  cannot be armed safely (`problem` says why); 'off': mode off. */
  readonly state: 'off' | 'armed' | 'ready' | 'unavailable';
  readonly problem: string | null;
}

export interface WatchdogOptions {
  readonly mode: WatchdogMode;
  readonly safetyMargin: number;
  readonly device: WatchdogDevice;
  readonly log: Logger;
}

type Timing = Pick<HaSettings, 'ttl' | 'loopWait'>;

/** The clock and the last renewal of our leader key (AgentMemory.lastRenew) when a feed is due. */
export interface LeaseClock {
  readonly now: number;
  readonly lastRenew: Renewal | null;
}

/** The timeout to arm with, or the reason there is none: it must leave the loop time to feed it. */
export function watchdogTimeout(t: Timing, safetyMargin: number): { seconds: number } | { problem: string } {
  const seconds = t.ttl - safetyMargin;
  if (seconds < t.loopWait || seconds < 1)
    return {
      problem: `ttl ${t.ttl}s - watchdog.safety_margin ${safetyMargin}s = ${seconds}s leaves no time for loop_wait ${t.loopWait}s`,
    };
  return { seconds };
}

export class Watchdog {
  private armedProblem: string | null = null;
  private failure: string | null = null;
  private readonly warned = new Set<string>();

  constructor(private readonly opts: WatchdogOptions) {}

  get armed(): boolean {
    return this.opts.device.isOpen;
  }

  /** Observed.watchdog: probes the device (exists, writable) and the timing when not armed. */
  view(t: Timing): WatchdogView {
    const { mode, device, safetyMargin } = this.opts;
    if (mode === 'off') return { mode, state: 'off', problem: null };
    if (device.isOpen) return { mode, state: 'armed', problem: this.armedProblem };
    const timing = watchdogTimeout(t, safetyMargin);
    const problem = 'problem' in timing ? timing.problem : (device.check() ?? this.failure);
    return { mode, state: problem === null ? 'ready' : 'unavailable', problem };
  }

  /**
   * Opens the device with timeout ttl - safety_margin unless it is armed already; returns the view after. In
   * `required` mode a device whose timeout cannot be brought to that value is closed again: the kernel would reset
   * the host only after another member could have taken the key. `automatic` keeps it and warns.
   */
  arm(t: Timing): WatchdogView {
    const { mode, device, safetyMargin, log } = this.opts;
    if (mode === 'off' || device.isOpen) return this.view(t);
    const timing = watchdogTimeout(t, safetyMargin);
    if ('problem' in timing) return this.unavailable(t, timing.problem);
    const problem = device.check();
    if (problem !== null) return this.unavailable(t, problem);
    let setProblem: string | null = null;
    try {
      device.setTimeout(timing.seconds);
    } catch (err) {
      setProblem = (err as Error).message;
    }
    // Read before opening: without the sysfs attribute only wdctl can tell, and it cannot open a device we hold.
    const actual = device.timeout();
    const unsafe = this.unsafeTimeout(actual, timing.seconds, t.loopWait, setProblem);
    if (unsafe !== null && (mode === 'required' || (actual !== null && actual < t.loopWait)))
      return this.unavailable(t, unsafe);
    try {
      device.open();
    } catch (err) {
      return this.unavailable(t, (err as Error).message);
    }
    this.failure = null;
    this.armedProblem = unsafe;
    if (unsafe !== null) this.warnOnce(`watchdog armed, but ${unsafe}`);
    log.info(
      `${device.describe()} armed with a ${actual ?? '?'}s timeout (ttl ${t.ttl}s - safety_margin ${safetyMargin}s)`,
    );
    return this.view(t);
  }

  private unsafeTimeout(actual: number | null, wanted: number, loopWait: number, setProblem: string | null) {
    if (actual === null)
      return `the timeout of ${this.opts.device.path} cannot be read${setProblem ? ` (${setProblem})` : ''}`;
    if (actual < loopWait) return `its timeout ${actual}s is shorter than loop_wait ${loopWait}s`;
    if (actual > wanted)
      return `its timeout ${actual}s is longer than ttl - safety_margin = ${wanted}s, so the host would be reset too late${setProblem ? ` (${setProblem})` : ''}`;
    return null;
  }

  /** Restarts the timer if armed and the lease covers it. A failed write is remembered: the next view is unavailable. */
  keepalive(lease: LeaseClock): void {
    if (!this.opts.device.isOpen || !this.covered(lease)) return;
    try {
      this.opts.device.keepalive();
    } catch (err) {
      this.failure = (err as Error).message;
      this.closeQuietly();
      this.opts.log.error(`watchdog keepalive failed: ${this.failure}`, { code: 'HA_WATCHDOG_UNAVAILABLE' });
    }
  }

  /** Disarms with the magic close if armed. */
  disarm(why: string): void {
    if (!this.opts.device.isOpen) return;
    this.closeQuietly();
    this.opts.log.info(`${this.opts.device.describe()} disarmed: ${why}`);
  }

  /** Feeds it; forgets the last failed attempt, so this cycle's view probes afresh (a transient failure passes). */
  beforeCycle(lease: LeaseClock): void {
    if (!this.opts.device.isOpen) this.failure = null;
    this.keepalive(lease);
  }

  afterLease(lease: LeaseClock): void {
    this.keepalive(lease);
  }

  /** A feed now still fires before the key could expire: the last renewal succeeded within safety_margin. */
  private covered({ now, lastRenew }: LeaseClock): boolean {
    return lastRenew?.ok === true && now - lastRenew.at <= this.opts.safetyMargin * 1000;
  }

  /**
   * Before the decision runs: arm when it leads. Returns true when arming failed in `required` mode, so the loop
   * must decide again with `view()` (decide then refuses to take or keep the key).
   */
  gate(d: Decision, s: HaSettings): boolean {
    if (this.opts.mode === 'off' || s.paused || !leads(d)) return false;
    const v = this.arm(s);
    return v.state === 'unavailable' && this.opts.mode === 'required';
  }

  /** After the decision ran: disarm once this node no longer leads and no demote is stopping PostgreSQL. */
  afterCycle(d: Decision, s: HaSettings, busy: Busy | null, lease: LeaseClock): void {
    if (!this.opts.device.isOpen) return;
    if (s.paused) return this.disarm('the cluster is paused');
    if (leads(d) || busy?.what === 'demote' || busy?.what === 'promote') {
      this.keepalive(lease);
      return;
    }
    this.disarm(`not the leader any more (${d.summary})`);
  }

  stop(): void {
    this.disarm('the agent is stopping');
  }

  private unavailable(t: Timing, problem: string): WatchdogView {
    this.failure = problem;
    if (this.opts.mode === 'automatic') this.warnOnce(`watchdog not used: ${problem}`);
    else this.opts.log.error(`watchdog required but cannot be armed: ${problem}`, { code: 'HA_WATCHDOG_UNAVAILABLE' });
    return this.view(t);
  }

  private warnOnce(msg: string): void {
    if (this.warned.has(msg)) return;
    this.warned.add(msg);
    this.opts.log.warn(msg, { code: 'HA_WATCHDOG_UNAVAILABLE' });
  }

  private closeQuietly(): void {
    try {
      this.opts.device.close();
    } catch (err) {
      this.opts.log.error(`could not disarm the watchdog: ${(err as Error).message}`, {
        code: 'HA_WATCHDOG_UNAVAILABLE',
      });
    }
  }
}

/** The decision keeps or makes this node the writable primary. */
function leads(d: Decision): boolean {
  return d.role === 'primary';
}
