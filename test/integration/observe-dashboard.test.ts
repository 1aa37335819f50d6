/**
 * The web dashboard in a real browser (Debian's chromium, headless, driven by puppeteer-core) against a real
 * 3-node `pgkeel up` cluster: `up` prints the URL and `status --json` carries it; a replica's page shows all three
 * members with their roles; after `pgkeel ctl switchover` the same page — never reloaded — shows the new leader
 * within 3 s and the switchover in its events timeline (with the new leader's promote and lock); after queries
 * through `up`'s proxy its pool shows in the proxy panel; replicas' cards show their lag in seconds; the top
 * queries panel shows the leader's `/statements` (or why there are none); no console errors; a screenshot, into
 * docs/dashboard.png only with PGKEEL_SCREENSHOT=1 (else into the test's temp dir).
 * One cluster and one browser for the whole file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { cli, healthyStatus, leaderOf, repoRoot, startCluster, type TestCluster } from '../helpers/cluster.js';
import type { StatusJson } from '../../src/local/status.js';
import type { DashboardState } from '../../src/observe/dashboard/state.js';
import type { StatementsReport } from '../../src/observe/pg-metrics/statements.js';
import { fixture } from '../../src/api/api-fixture.js';
import { tempDir } from '../helpers/tmp.js';

const CHROMIUM = '/usr/bin/chromium';
/** The docs' screenshot is rewritten only on request, so a test run leaves the tree clean. */
const DOCS_SCREENSHOT = process.env['PGKEEL_SCREENSHOT'] === '1';

let c: TestCluster;
let browser: Browser;
let page: Page;
let upOut = '';
const consoleErrors: string[] = [];

// Page-side expressions (strings: this project compiles without the DOM's types).
/** The members on the page as a JSON string of sorted [name, role] pairs. */
const SHOWN_ROLES = `JSON.stringify([...document.querySelectorAll('article.member')]
  .map((e) => [e.getAttribute('data-member'), e.getAttribute('data-role')]).sort())`;
/** The member whose card carries the leader role. */
const LEADER_SHOWN = `document.querySelector('article.member[data-role="leader"]')?.getAttribute('data-member')`;

/** An event of this kind (by this member) is in the page's timeline. */
const EVENT_SHOWN = (kind: string, member?: string) => `[...document.querySelectorAll('#events li')].some((li) =>
  li.getAttribute('data-kind') === ${JSON.stringify(kind)}${member ? ` && li.getAttribute('data-member') === ${JSON.stringify(member)}` : ''})`;
/** The text of an element, '' when it is not there. */
const TEXT = (selector: string) => `(document.querySelector(${JSON.stringify(selector)})?.textContent ?? '')`;

async function shownRoles(p: Page): Promise<[string, string][]> {
  return JSON.parse((await p.evaluate(SHOWN_ROLES)) as string) as [string, string][];
}

const apiBase = (s: StatusJson, name: string) =>
  (s.members.find((m) => m.name === name)?.api_url ?? '').replace(/\/patroni$/, '');

describe('web dashboard in Chromium', { timeout: 240_000 }, () => {
  before(async () => {
    c = await startCluster({ name: 'dashboard' });
    const r = await c.up();
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    upOut = r.stdout;
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 900 });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(`console: ${m.text()} ${JSON.stringify(m.location())}`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${(e as Error).message}`));
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await c?.[Symbol.asyncDispose]();
  });

  it('up prints the URL, status --json has it, and any member shows all three members with their roles', async () => {
    const s = await healthyStatus(c, 3, 90_000);
    const leader = leaderOf(s);
    assert.ok(leader);
    assert.equal(s.dashboard, `${apiBase(s, leader.name)}/dashboard`);
    assert.match(upOut, /^dashboard: http:\/\/[^\s]+\/dashboard$/m);
    const replica = s.members.find((m) => m.role !== 'leader');
    assert.ok(replica);
    await page.goto(`${apiBase(s, replica.name)}/dashboard`, { waitUntil: 'load' });
    const want = s.members.map((m) => [m.name, m.role]).sort();
    await page.waitForFunction(`${SHOWN_ROLES} === ${JSON.stringify(JSON.stringify(want))}`, { timeout: 10_000 });
    assert.deepEqual((await shownRoles(page)).sort(), want);
    // `up` configures REST credentials, so the page offers a switchover behind them.
    assert.equal(await page.evaluate(`document.getElementById('switchover').hidden`), false);
  });

  it('after ctl switchover the page shows the new leader within 3 s without a reload, and the event', async () => {
    const s = await healthyStatus(c, 3, 60_000);
    const old = leaderOf(s);
    assert.ok(old);
    const candidate = s.members.find((m) => m.role !== 'leader')?.name as string;
    await page.evaluate('window.notReloaded = true');
    const r = await cli(['ctl', 'switchover', '--candidate', candidate, '--force', '--dir', c.dir], 120_000);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const finished = Date.now();
    await page.waitForFunction(`${LEADER_SHOWN} === ${JSON.stringify(candidate)}`, { timeout: 3000 });
    const shownAfter = Date.now() - finished;
    assert.ok(shownAfter <= 3000, `shown ${shownAfter} ms after the switchover finished`);
    assert.equal(await page.evaluate('window.notReloaded'), true, 'the page was not reloaded');
    // The timeline (every member's GET /events, merged): the switchover, and the new leader taking over.
    for (const [kind, member] of [
      ['switchover_requested'],
      ['promote', candidate],
      ['leader_acquired', candidate],
      ['switchover_done'],
    ] as const)
      await page.waitForFunction(EVENT_SHOWN(kind, member), { timeout: 10_000 });
  });

  it("the page's Switchover button sends the REST credentials typed into it and shows the API's answer", async () => {
    const s = await healthyStatus(c, 3, 90_000);
    const candidate = s.members.find((m) => m.role !== 'leader')?.name as string;
    const { restapi } = JSON.parse(readFileSync(join(c.dir, 'cluster.json'), 'utf8')) as {
      restapi: { username: string; password: string };
    };
    await page.click('#switchover-open');
    await page.waitForFunction(
      `[...document.querySelectorAll('#so-candidate option')].some((o) => o.value === ${JSON.stringify(candidate)})`,
    );
    await page.select('#so-candidate', candidate);
    await page.type('#so-user', restapi.username);
    await page.type('#so-pass', restapi.password);
    await page.click('#so-submit');
    await page.waitForFunction(`document.getElementById('so-answer').className !== 'answer'`, { timeout: 90_000 });
    const answer = (await page.evaluate(`document.getElementById('so-answer').textContent`)) as string;
    assert.match(answer, new RegExp(`^200: Successfully switched over to "${candidate}"`));
    await page.waitForFunction(`${LEADER_SHOWN} === ${JSON.stringify(candidate)}`, { timeout: 3000 });
    assert.equal(await page.evaluate(`document.getElementById('so-pass').value`), '', 'the password is not kept');
  });

  it('when the event stream is refused (a proxy in between) the page polls /dashboard/state instead', async () => {
    const s = await c.status();
    const p = await browser.newPage();
    try {
      await p.setRequestInterception(true);
      let polls = 0;
      p.on('request', (r) => {
        if (r.url().endsWith('/dashboard/state')) polls++;
        if (r.url().endsWith('/dashboard/events')) void r.respond({ status: 503, body: 'no streams here' });
        else void r.continue();
      });
      await p.goto(`${apiBase(s, s.members[0]?.name ?? '')}/dashboard`, { waitUntil: 'load' });
      await p.waitForFunction(`document.querySelectorAll('article.member').length === 3`, { timeout: 10_000 });
      await p.waitForFunction(`document.getElementById('link').textContent === 'polling'`, { timeout: 10_000 });
      const start = polls;
      await c.waitFor('two more polls', async () => polls >= start + 2, 10_000);
      assert.equal(await p.evaluate(`document.getElementById('link').textContent`), 'polling');
    } finally {
      await p.close();
    }
  });

  it('without REST authentication there is no switchover button; no leader shows as a red banner', async () => {
    // An agent whose REST API has no credentials and whose DCS holds no cluster (api-fixture: the loop not running).
    await using f = await fixture();
    const p = await browser.newPage();
    try {
      p.on('pageerror', (e) => consoleErrors.push(`pageerror (no auth): ${(e as Error).message}`));
      p.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(`console (no auth): ${m.text()}`);
      });
      await p.goto(`http://127.0.0.1:${f.port}/dashboard`, { waitUntil: 'load' });
      await p.waitForFunction(`document.getElementById('banner').classList.contains('level-red')`, { timeout: 10_000 });
      // The verdict `pgkeel status` prints for a cluster without a leader.
      assert.equal(await p.evaluate(`document.getElementById('banner-verdict').textContent`), 'critical');
      assert.equal(
        await p.evaluate(`document.getElementById('banner-text').textContent`),
        'no leader: nobody holds the leader key, writes fail',
      );
      assert.equal(await p.evaluate(`document.getElementById('switchover').hidden`), true);
      assert.equal(
        await p.evaluate(`document.getElementById('switchover').getBoundingClientRect().height`),
        0,
        'the switchover controls are not displayed',
      );
    } finally {
      await p.close();
    }
  });

  it("the proxy's pool after queries through it, lag seconds on the replicas, the leader's top queries", async () => {
    const s = await healthyStatus(c, 3, 90_000);
    assert.ok(s.proxy, 'up starts a proxy');
    const rwPort = Number(s.proxy.rw.split(':')[1]);
    await traffic(rwPort, 10);
    // `up`'s proxy registers itself in the DCS; the page reads its /stats.
    await page.waitForFunction(`!!document.querySelector('#proxies tr.pool[data-pool="postgres/postgres"]')`, {
      timeout: 15_000,
    });
    // Each replica publishes lag_seconds (pg_replication_lag_seconds): its card shows it beside the bytes.
    const base = apiBase(s, s.members[0]?.name ?? '');
    const withSeconds = await c.waitFor(
      'a replica with lag_seconds in /dashboard/state',
      async () => {
        const st = (await (await fetch(`${base}/dashboard/state`)).json()) as DashboardState;
        return st.members.find((m) => m.role !== 'leader' && typeof m.lag_seconds === 'number')?.name;
      },
      30_000,
    );
    const label = `article.member[data-member="${withSeconds}"] .laglabel`;
    await page.waitForFunction(`/^lag \\S+ \\S+ · [\\d.]+ (s|min)/.test(${TEXT(label)})`, { timeout: 10_000 });
    // Top queries: the rows when the leader's pg_stat_statements is on, else the reason it gives (up leaves it off).
    const leader = leaderOf(await c.status());
    assert.ok(leader);
    const st = (await (await fetch(`${apiBase(s, leader.name)}/statements`)).json()) as StatementsReport;
    if (st.enabled && st.statements.length) {
      await page.waitForFunction(`document.querySelectorAll('#statements tr.statement').length > 0`, {
        timeout: 20_000,
      });
    } else {
      assert.ok(st.error, 'a disabled /statements says why');
      await page.waitForFunction(`${TEXT('#statements')} === ${JSON.stringify(st.error)}`, { timeout: 20_000 });
    }
  });

  it('no console errors; a screenshot of the healthy cluster with traffic (docs/dashboard.png on request)', async () => {
    const s = await healthyStatus(c, 3, 90_000);
    // A fresh render (the earlier switchover answer gone); console errors are still collected on this page.
    await page.reload({ waitUntil: 'load' });
    await page.waitForFunction(`document.getElementById('banner').classList.contains('level-ok')`, { timeout: 30_000 });
    await page.waitForFunction(`!!document.querySelector('#proxies tr.pool')`, { timeout: 15_000 });
    // For the docs: the serving agent re-reads the backup repository once a minute; wait for `up`'s first backup.
    if (DOCS_SCREENSHOT) await page.waitForFunction(`${TEXT('#backup')}.includes('(full)')`, { timeout: 90_000 });
    await using dir = await tempDir('dashboard-shot');
    const path = DOCS_SCREENSHOT ? join(repoRoot, 'docs', 'dashboard.png') : join(dir.path, 'dashboard.png');
    // Some load through the proxy while the picture is taken: the pool's TPS and the lag chart are not empty.
    assert.ok(s.proxy);
    const rwPort = Number(s.proxy.rw.split(':')[1]);
    const load = traffic(rwPort, 150);
    await new Promise((r) => setTimeout(r, 4000));
    await page.screenshot({ path: path as `${string}.png`, fullPage: true });
    await load;
    const png = readFileSync(path);
    assert.ok(png.length > 10_000, `a real picture: ${png.length} bytes`);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
    if (DOCS_SCREENSHOT) process.stdout.write(`# screenshot written to ${path}\n`);
    assert.deepEqual(consoleErrors, []);
  });
});

/** `n` small write transactions through the proxy's rw port, four at a time (WAL for the replicas to follow). */
async function traffic(port: number, n: number): Promise<void> {
  await c.query(port, 'CREATE TABLE IF NOT EXISTS dashboard_traffic (id serial PRIMARY KEY, payload text)');
  let left = n;
  const worker = async () => {
    while (left-- > 0) await c.query(port, 'INSERT INTO dashboard_traffic (payload) SELECT repeat($1, 2000)', ['x']);
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}
