/**
 * The watchdog device port and its Linux implementation (Patroni `patroni/watchdog/linux.py`).
 *
 * Contract of a `WatchdogDevice`:
 * - `open()` starts the timer: from then on the host is reset unless `keepalive()` is called within the timeout.
 * - `keepalive()` restarts the timer; only valid while open.
 * - `close()` disarms: it writes the magic character 'V' and then closes, which stops the timer on drivers with
 *   WDIOF_MAGICCLOSE (softdog and most hardware). A plain close, or a process that dies, leaves the timer running
 *   (that is the point: a killed or hung agent is reset).
 * - `setTimeout(s)` must be called before `open()`; `timeout()` reads the timeout in force (null: unknown).
 * - `check()` names what makes `open()` fail for sure (missing device, not writable), or null.
 * Every method throws a `WatchdogDeviceError` (never a raw errno) with the device path in its message.
 *
 * Node has no ioctl(), so the Linux implementation cannot call WDIOC_SETTIMEOUT/GETTIMEOUT on its own file
 * descriptor as Patroni does: it sets the timeout with util-linux `wdctl --settimeout N <device>` before opening
 * (the watchdog core keeps the value after wdctl's magic close) and reads it from sysfs
 * (`/sys/class/watchdog/<name>/timeout`), falling back to parsing `wdctl`'s "Timeout:" line.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';

export class WatchdogDeviceError extends Error {
  readonly code = 'HA_WATCHDOG_UNAVAILABLE';
  constructor(
    message: string,
    readonly device: string,
  ) {
    super(message);
    this.name = 'WatchdogDeviceError';
  }
}

export interface WatchdogDevice {
  readonly path: string;
  readonly isOpen: boolean;
  check(): string | null;
  setTimeout(seconds: number): void;
  timeout(): number | null;
  open(): void;
  keepalive(): void;
  close(): void;
  describe(): string;
}

/** What the Linux device runs and reads; tests pass a fake `wdctl` and a temporary sysfs directory. */
export interface LinuxDeviceDeps {
  readonly run?: (cmd: string, args: readonly string[]) => { status: number | null; stdout: string; stderr: string };
  /** Default /sys/class/watchdog. */
  readonly sysfs?: string;
  /** The wdctl program (default: `wdctl` on PATH). */
  readonly wdctl?: string;
}

function runProgram(cmd: string, args: readonly string[]) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  return { status: r.error ? null : r.status, stdout: r.stdout ?? '', stderr: r.error?.message ?? r.stderr ?? '' };
}

export class LinuxWatchdogDevice implements WatchdogDevice {
  private fd: number | null = null;
  private readonly run: NonNullable<LinuxDeviceDeps['run']>;
  private readonly sysfs: string;
  private readonly wdctl: string;

  constructor(
    readonly path: string,
    deps: LinuxDeviceDeps = {},
  ) {
    this.run = deps.run ?? runProgram;
    this.sysfs = deps.sysfs ?? '/sys/class/watchdog';
    this.wdctl = deps.wdctl ?? 'wdctl';
  }

  get isOpen(): boolean {
    return this.fd !== null;
  }

  describe(): string {
    return `watchdog device ${this.path}`;
  }

  check(): string | null {
    if (!existsSync(this.path)) return `${this.path} does not exist (is the softdog module loaded?)`;
    try {
      accessSync(this.path, constants.W_OK);
    } catch {
      return `${this.path} is not writable by this agent`;
    }
    return null;
  }

  setTimeout(seconds: number): void {
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > 0xffff)
      throw this.error(`invalid watchdog timeout ${seconds}: expected 1 to 65535 seconds`);
    const r = this.run(this.wdctl, ['--settimeout', String(seconds), this.path]);
    if (r.status !== 0)
      throw this.error(`could not set the timeout of ${this.path} to ${seconds}s with wdctl: ${r.stderr.trim()}`);
  }

  timeout(): number | null {
    // /dev/watchdog is the legacy name of the first device, watchdog0 in sysfs.
    const name = basename(this.path) === 'watchdog' ? 'watchdog0' : basename(this.path);
    try {
      const n = Number.parseInt(readFileSync(join(this.sysfs, name, 'timeout'), 'utf8').trim(), 10);
      if (Number.isInteger(n)) return n;
    } catch {
      // no sysfs attribute (kernel without CONFIG_WATCHDOG_SYSFS): ask wdctl below
    }
    if (this.isOpen) return null; // wdctl would open the device a second time (EBUSY)
    const r = this.run(this.wdctl, ['--noflags', '--noident', this.path]);
    const m = /^\s*Timeout:\s+(\d+)/m.exec(r.stdout);
    return r.status === 0 && m ? Number(m[1]) : null;
  }

  open(): void {
    if (this.fd !== null) return;
    try {
      // Write-only and never O_CREAT: a missing device must fail, not become a regular file in /dev.
      this.fd = openSync(this.path, constants.O_WRONLY);
    } catch (err) {
      throw this.error(`cannot open ${this.path}: ${(err as Error).message}`);
    }
  }

  keepalive(): void {
    if (this.fd === null) throw this.error(`${this.path} is not open`);
    try {
      writeSync(this.fd, '1');
    } catch (err) {
      throw this.error(`could not send a keepalive to ${this.path}: ${(err as Error).message}`);
    }
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    let problem: string | null = null;
    try {
      writeSync(fd, 'V');
    } catch (err) {
      problem = `could not write the magic close character to ${this.path} (the timer keeps running): ${(err as Error).message}`;
    }
    try {
      closeSync(fd);
    } catch (err) {
      problem ??= `could not close ${this.path}: ${(err as Error).message}`;
    }
    if (problem !== null) throw this.error(problem);
  }

  private error(message: string): WatchdogDeviceError {
    return new WatchdogDeviceError(message, this.path);
  }
}
