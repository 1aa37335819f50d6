/**
 * The watchdog contract against a fake device: a temporary regular file stands for /dev/watchdog (the bytes the
 * agent writes are read back: '1' per keepalive, 'V' on the magic close), a temporary directory for
 * /sys/class/watchdog, and a fake `wdctl` that writes the timeout there. Containers and CI have no /dev/watchdog.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../lib/log.js';
import { LinuxWatchdogDevice, WatchdogDeviceError, type WatchdogDevice } from './watchdog-device.js';
import { type LeaseClock, Watchdog, watchdogTimeout } from './watchdog.js';
import type { Decision, HaSettings } from './view.js';
import { SETTINGS } from '../../test/fakes/observed.js';

interface Logged {
  readonly level: string;
  readonly msg: string;
}

function memoryLog(out: Logged[]): Logger {
  const at =
    (level: string) =>
    (msg: string): void => {
      out.push({ level, msg });
    };
  const log: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log };
  return log;
}

const leading: Decision = { summary: 'no action: I am the leader with the lock', actions: [], role: 'primary' };
const taking: Decision = {
  summary: 'taking leadership: leader key was free and I had the highest WAL position',
  actions: [{ kind: 'take_leadership', reason: 'r' }],
  role: 'primary',
};
const demoting: Decision = {
  summary: 'demoting: shutting down, handing the leader key over',
  actions: [{ kind: 'demote', mode: 'graceful' }],
  role: 'demoted',
};
const following: Decision = { summary: 'no action: following node1', actions: [], role: 'replica' };
/** The leader key was renewed 1 s ago: within safety_margin (5 s), so a feed still fires before it can expire. */
const fresh: LeaseClock = { now: 10_000, lastRenew: { ok: true, at: 9_000 } };
/** ttl 10, loop_wait 1: with safety_margin 5 the watchdog timeout is 5 s. */
const S: HaSettings = { ...SETTINGS, ttl: 10, loopWait: 1, paused: false };

let dir: string;
let dev: string;
let sysfs: string;
let wdctlCalls: string[][];
/** What the fake wdctl does with --settimeout: store the value, or refuse like a driver without WDIOF_SETTIMEOUT. */
let settable: boolean;

function linuxDevice(path = dev): LinuxWatchdogDevice {
  return new LinuxWatchdogDevice(path, {
    sysfs,
    run: (cmd, args) => {
      wdctlCalls.push([cmd, ...args]);
      if (args[0] !== '--settimeout') return { status: 1, stdout: '', stderr: 'unexpected' };
      if (!settable) return { status: 1, stdout: '', stderr: 'wdctl: cannot set timeout: Operation not supported' };
      writeFileSync(join(sysfs, 'watchdog0', 'timeout'), `${args[1]}\n`);
      return { status: 0, stdout: `Timeout has been set to ${args[1]} seconds.\n`, stderr: '' };
    },
  });
}

const written = () => readFileSync(dev, 'utf8');

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pgkeel-watchdog-'));
  dev = join(dir, 'watchdog'); // named like /dev/watchdog: its sysfs entry is watchdog0
  sysfs = join(dir, 'sys');
  mkdirSync(join(sysfs, 'watchdog0'), { recursive: true });
  writeFileSync(join(sysfs, 'watchdog0', 'timeout'), '60\n'); // softdog's default soft_margin
  writeFileSync(dev, '');
  wdctlCalls = [];
  settable = true;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('LinuxWatchdogDevice', () => {
  it('keepalive writes a byte, close writes the magic V and closes; closing twice is a no-op', () => {
    const d = linuxDevice();
    d.open();
    d.keepalive();
    d.keepalive();
    d.close();
    d.close();
    assert.equal(written(), '11V');
    assert.equal(d.isOpen, false);
    assert.throws(() => d.keepalive(), WatchdogDeviceError);
  });

  it('a missing device fails to open and is never created', () => {
    const d = linuxDevice(join(dir, 'nope'));
    assert.match(d.check() ?? '', /does not exist \(is the softdog module loaded\?\)/);
    assert.throws(
      () => d.open(),
      (e: WatchdogDeviceError) => e.code === 'HA_WATCHDOG_UNAVAILABLE',
    );
    assert.equal(existsSync(join(dir, 'nope')), false);
  });

  it('sets the timeout with wdctl --settimeout and reads it from sysfs', () => {
    const d = linuxDevice();
    assert.equal(d.timeout(), 60);
    d.setTimeout(5);
    assert.deepEqual(wdctlCalls, [['wdctl', '--settimeout', '5', dev]]);
    assert.equal(d.timeout(), 5);
    assert.throws(() => d.setTimeout(0), /invalid watchdog timeout 0/);
  });

  it("without sysfs it parses wdctl's Timeout line", () => {
    rmSync(sysfs, { recursive: true });
    const d = new LinuxWatchdogDevice(dev, {
      sysfs,
      run: () => ({ status: 0, stdout: 'Timeout:      25 seconds\nTimeleft:     25 seconds\n', stderr: '' }),
    });
    assert.equal(d.timeout(), 25);
  });
});

describe('Watchdog: the agent loop contract', () => {
  function setup(mode: 'automatic' | 'required', device: WatchdogDevice = linuxDevice()) {
    const logged: Logged[] = [];
    return { wd: new Watchdog({ mode, safetyMargin: 5, device, log: memoryLog(logged) }), logged };
  }

  it('arms on leadership with timeout ttl - safety_margin, feeds every cycle, disarms on demote', () => {
    const { wd } = setup('required');
    assert.equal(wd.view(S).state, 'ready');
    assert.equal(wd.gate(taking, S), false);
    assert.deepEqual(wdctlCalls, [['wdctl', '--settimeout', '5', dev]]);
    assert.equal(wd.view(S).state, 'armed');
    assert.equal(written(), '', 'arming only opens');
    wd.afterCycle(taking, S, { what: 'promote', since: 0 }, fresh);
    // next cycle: before the DCS read, after the lease renewal, after the decision ran
    wd.beforeCycle(fresh);
    wd.afterLease(fresh);
    assert.equal(wd.gate(leading, S), false);
    wd.afterCycle(leading, S, null, fresh);
    assert.equal(written(), '1111');
    wd.beforeCycle(fresh);
    wd.afterCycle(following, S, null, fresh);
    assert.equal(written(), '11111V');
    assert.equal(wd.view(S).state, 'ready');
  });

  it('stays armed and fed while a demote is still stopping PostgreSQL; stop() disarms', () => {
    const { wd } = setup('automatic');
    wd.gate(leading, S);
    wd.afterCycle(demoting, S, { what: 'demote', since: 0 }, fresh);
    assert.equal(wd.view(S).state, 'armed');
    wd.stop();
    assert.equal(written(), '1V');
  });

  it('feeds only while the last renewal covers the timeout: a stalled or lost lease stops the feeding', () => {
    const { wd } = setup('automatic');
    wd.gate(leading, S);
    wd.afterLease({ now: 10_000, lastRenew: { ok: false, at: 10_000 } });
    wd.beforeCycle({ now: 10_000, lastRenew: null });
    // renewed 6 s ago: a feed now would keep the host alive until 11 s after the renewal, past the 10 s ttl
    const stalled = { now: 15_000, lastRenew: { ok: true, at: 9_000 } };
    wd.beforeCycle(stalled);
    wd.afterCycle(leading, S, null, stalled);
    assert.equal(written(), '');
    wd.beforeCycle({ now: 14_000, lastRenew: { ok: true, at: 9_000 } }); // exactly safety_margin: still covered
    assert.equal(written(), '1');
    assert.equal(wd.view(S).state, 'armed', 'not feeding is the fence; the device stays armed');
  });

  it('required, timeout cannot be set and the one in force is too long: refuses and never opens', () => {
    settable = false;
    const { wd, logged } = setup('required');
    assert.equal(wd.gate(taking, S), true, 'the loop must decide again');
    const v = wd.view(S);
    assert.equal(v.state, 'unavailable');
    assert.match(v.problem ?? '', /its timeout 60s is longer than ttl - safety_margin = 5s/);
    assert.match(v.problem ?? '', /Operation not supported/);
    assert.equal(written(), '');
    assert.ok(logged.some((l) => l.level === 'error' && l.msg.startsWith('watchdog required but cannot be armed')));
    // the next cycle probes afresh: a transient failure does not bar the node for good
    wd.beforeCycle(fresh);
    assert.equal(wd.view(S).state, 'ready');
  });

  it('automatic with the same device: arms anyway and warns that the timeout is unsafe', () => {
    settable = false;
    const { wd, logged } = setup('automatic');
    assert.equal(wd.gate(taking, S), false);
    assert.equal(wd.view(S).state, 'armed');
    assert.ok(logged.some((l) => l.level === 'warn' && /timeout 60s is longer/.test(l.msg)));
  });

  it('automatic without a device: continues, and warns once however many cycles lead', () => {
    const { wd, logged } = setup('automatic', linuxDevice(join(dir, 'missing')));
    for (let i = 0; i < 3; i++) {
      wd.beforeCycle(fresh);
      assert.equal(wd.gate(leading, S), false);
      wd.afterCycle(leading, S, null, fresh);
    }
    assert.equal(logged.filter((l) => l.level === 'warn').length, 1);
    assert.match(logged.find((l) => l.level === 'warn')?.msg ?? '', /^watchdog not used: .*does not exist/);
  });

  it('required without a device: the view says unavailable before any arming', () => {
    const { wd } = setup('required', linuxDevice(join(dir, 'missing')));
    assert.equal(wd.view(S).state, 'unavailable');
  });

  it('a ttl the safety margin leaves no time for is unavailable', () => {
    assert.deepEqual(watchdogTimeout({ ttl: 10, loopWait: 1 }, 5), { seconds: 5 });
    assert.match(
      (watchdogTimeout({ ttl: 6, loopWait: 2 }, 5) as { problem: string }).problem,
      /ttl 6s - watchdog.safety_margin 5s = 1s leaves no time for loop_wait 2s/,
    );
    const { wd } = setup('required');
    assert.equal(wd.gate(taking, { ...S, ttl: 5 }), true);
    assert.equal(written(), '');
  });

  it('a failed keepalive makes it unavailable for the rest of the cycle', () => {
    const d = linuxDevice();
    const { wd } = setup('required', {
      path: dev,
      get isOpen() {
        return d.isOpen;
      },
      check: () => d.check(),
      setTimeout: (s: number) => d.setTimeout(s),
      timeout: () => d.timeout(),
      open: () => d.open(),
      close: () => d.close(),
      describe: () => d.describe(),
      keepalive: () => {
        throw new WatchdogDeviceError('could not send a keepalive: EIO', dev);
      },
    });
    wd.gate(leading, S);
    wd.afterLease(fresh);
    assert.deepEqual(wd.view(S), {
      mode: 'required',
      state: 'unavailable',
      problem: 'could not send a keepalive: EIO',
    });
    assert.equal(written(), 'V', 'closed with the magic character');
  });

  it('paused: never arms, and disarms an armed one', () => {
    const { wd } = setup('automatic');
    assert.equal(wd.gate(leading, { ...S, paused: true }), false);
    assert.equal(wd.view(S).state, 'ready');
    wd.gate(leading, S);
    wd.afterCycle(leading, { ...S, paused: true }, null, fresh);
    assert.equal(written(), 'V');
  });

  it('mode off never touches the device', () => {
    const logged: Logged[] = [];
    const wd = new Watchdog({ mode: 'off', safetyMargin: 5, device: linuxDevice(), log: memoryLog(logged) });
    assert.equal(wd.gate(taking, S), false);
    assert.deepEqual(wd.view(S), { mode: 'off', state: 'off', problem: null });
    assert.deepEqual(wdctlCalls, []);
    assert.equal(logged.length, 0);
  });
});
