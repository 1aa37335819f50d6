/**
 * The VIP's shell: once per HA cycle it looks at the interface, asks the policy (policy.ts) and carries the step
 * out through the VipNet port (net.ts), keeping the guard process (guard.ts) informed; the executor calls `drop`
 * before it demotes or restarts PostgreSQL, and the agent calls `close` on a clean stop. Calls are serialised, so a
 * drop never races an add. The announcement (arping, about a second) runs beside the queue: a drop never waits
 * for it. Failures are logged (HA_VIP_COMMAND_FAILED, once per distinct message) and retried next cycle; nothing
 * here throws into the HA loop.
 */
import type { Logger } from '../lib/log.js';
import type { VipConfig } from './config.js';
import type { VipNet } from './net.js';
import { vipStep, type VipStep, type VipView } from './policy.js';

/** What the shell needs of the guard process (guard.ts VipGuard; a fake in tests). */
export interface GuardPort {
  hold(ms: number): void;
  release(): void;
  close(): Promise<void>;
}

export type VipCycleInput = Omit<VipView, 'held' | 'announced'>;

export class VipController {
  private announced = false;
  private queue: Promise<unknown> = Promise.resolve();
  private lastError = '';
  private announcing: Promise<void> | null = null;

  constructor(
    private readonly cfg: VipConfig,
    private readonly net: VipNet,
    private readonly guard: GuardPort,
    private readonly log: Logger,
  ) {}

  /** One cycle's look at the VIP; resolves with the step taken (null when the interface could not be read). */
  cycle(input: VipCycleInput): Promise<VipStep | null> {
    return this.serial(async () => {
      const { address, interface: dev, netmask } = this.cfg;
      const held = await this.net.has(address, dev);
      if (!held) this.announced = false;
      const step = vipStep({ ...input, held, announced: this.announced });
      switch (step.kind) {
        case 'add':
          this.guard.hold(step.holdMs);
          await this.net.add(address, netmask, dev);
          this.log.info(step.reason, { vip: address, interface: dev });
          this.announce();
          break;
        case 'announce':
          this.guard.hold(step.holdMs);
          this.log.info(step.reason, { vip: address, interface: dev });
          this.announce();
          break;
        case 'keep':
          this.guard.hold(step.holdMs);
          break;
        case 'remove':
          await this.remove(step.reason);
          break;
        case 'none':
          break;
      }
      this.lastError = '';
      return step;
    });
  }

  /** Removes the address now if held (the executor, before PostgreSQL stops accepting writes). */
  drop(reason: string): Promise<void> {
    return this.serial(async () => {
      if (await this.net.has(this.cfg.address, this.cfg.interface)) await this.remove(`removing the VIP: ${reason}`);
    }).then(() => undefined);
  }

  /** Clean stop: removes the address if held, then ends the guard (which would remove it too). */
  async close(): Promise<void> {
    await this.drop('the agent is stopping');
    await this.announcing;
    await this.guard.close();
  }

  private async remove(reason: string): Promise<void> {
    const { address, interface: dev, netmask } = this.cfg;
    await this.net.remove(address, netmask, dev);
    this.announced = false;
    this.guard.release();
    this.log.warn(reason, { vip: address, interface: dev });
  }

  private announce(): void {
    this.announced = true;
    const { address, interface: dev } = this.cfg;
    this.announcing = this.net
      .announce(address, dev)
      .catch((err: Error) => {
        this.announced = false;
        this.report(err);
      })
      .finally(() => {
        this.announcing = null;
      });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T | null> {
    const next = this.queue.then(fn).catch((err: Error) => {
      this.report(err);
      return null;
    });
    this.queue = next;
    return next;
  }

  private report(err: Error & { code?: string; detail?: string }): void {
    if (err.message === this.lastError) return;
    this.lastError = err.message;
    this.log.warn(err.message, { code: err.code ?? 'HA_VIP_COMMAND_FAILED', detail: err.detail });
  }
}
