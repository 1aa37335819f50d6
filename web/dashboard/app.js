// pgkeel dashboard: renders GET /dashboard/state, live from GET /dashboard/events (server-sent events), polling
// /dashboard/state every 2 s when the stream is not available. Plain JS, no dependencies, no inline script (the
// page's Content-Security-Policy forbids it); every value from the cluster is set as text, never parsed as HTML.
'use strict';

(() => {
  const POLL_MS = 2000;
  const SSE_RETRY_MS = 30000;
  /** The server sends a ping every 5 s: silence for this long means the stream is not working. */
  const STALE_MS = 15000;
  const COLORS = ['#58a6ff', '#3fb950', '#d2a8ff', '#ffa657', '#79c0ff', '#f778ba', '#a5d6ff', '#e3b341'];
  const BAD_EVENTS = new Set([
    'crash',
    'leader_lost',
    'dcs_lost',
    'backup_failed',
    'failover_requested',
    'failover_done',
  ]);
  const WARN_EVENTS = new Set([
    'demote',
    'restart',
    'stop',
    'rewind',
    'reclone',
    'pending_restart',
    'switchover_requested',
    'config_changed',
  ]);
  const GOOD_EVENTS = new Set([
    'leader_acquired',
    'promote',
    'switchover_done',
    'backup_done',
    'dcs_regained',
    'start',
    'clone',
    'bootstrap',
  ]);

  const $ = (id) => document.getElementById(id);
  let state = null;
  let lastUpdate = 0;
  let link = 'connecting';

  /** el('div', {class: 'x', data-role: 'leader'}, child, 'text', ...) */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function bytes(n) {
    if (n === null || n === undefined) return 'unknown';
    if (n < 1024) return `${n} B`;
    if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} kB`;
    if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
    return `${(n / 1024 ** 3).toFixed(2)} GB`;
  }

  /** Replay lag in seconds (pg_replication_lag_seconds). */
  function seconds(s) {
    return s < 10 ? `${s.toFixed(1)} s` : age(Math.round(s));
  }

  function age(s) {
    if (s === null || s === undefined) return 'unknown';
    if (s < 120) return `${s} s`;
    const m = Math.round(s / 60);
    if (m < 120) return `${m} min`;
    const h = Math.floor(m / 60);
    return h < 48 ? `${h} h ${m % 60} min` : `${Math.floor(h / 24)} d ${h % 24} h`;
  }

  const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
  const roleLabel = { leader: 'Leader', sync_standby: 'Sync standby', replica: 'Replica' };

  function renderBanner(s) {
    // The verdict `pgkeel status` prints; the list underneath when it has more to say than the banner.
    const h = s.health;
    $('banner').className = `banner level-${h.level}`;
    $('banner-verdict').textContent = h.verdict;
    $('banner-text').textContent = h.reason;
    $('scope').textContent = `cluster ${s.scope}`;
    $('served-by').textContent = s.served_by;
    const told = h.problems.length === 1 && h.problems[0].text === h.reason;
    $('problems').replaceChildren(...(told ? [] : h.problems.map((p) => el('li', { class: p.level }, p.text))));
  }

  function memberCard(m, s) {
    const stateLevel = m.level === 'ok' ? 'ok' : m.level;
    const chips = [];
    for (const [k, v] of Object.entries(m.tags || {}))
      chips.push(el('span', { class: 'chip' }, v === true ? k : `${k}=${v}`));
    if (m.pending_restart) chips.push(el('span', { class: 'chip amber' }, 'pending restart'));
    if (!m.reachable) chips.push(el('span', { class: 'chip amber' }, 'API not answering'));
    if (s.pause && m.role === 'leader') chips.push(el('span', { class: 'chip amber' }, 'paused'));
    const card = el(
      'article',
      { class: `member level-${m.level}`, 'data-member': m.name, 'data-role': m.role, 'data-state': m.state },
      el(
        'div',
        { class: 'top' },
        el('span', { class: 'name' }, m.name),
        el('span', { class: `badge ${m.role}` }, roleLabel[m.role] || m.role),
        el('span', { class: `state ${stateLevel}` }, m.state),
      ),
      el(
        'div',
        { class: 'facts-line' },
        `${m.host}:${m.port} · timeline ${m.timeline ?? '?'}${m.server_version ? ` · PostgreSQL ${Math.floor(m.server_version / 10000)}` : ''}`,
      ),
    );
    if (m.role !== 'leader') {
      const limit = s.max_lag_bytes || 1;
      const scale = Math.max(limit * 1.25, m.lag_bytes || 0);
      const bar = el('span', { class: (m.lag_bytes || 0) > limit ? 'amber' : '' });
      bar.style.width = `${Math.min(100, ((m.lag_bytes || 0) / scale) * 100)}%`;
      const mark = el('i', { class: 'limit', title: `maximum_lag_on_failover ${bytes(limit)}` });
      mark.style.left = `${(limit / scale) * 100}%`;
      card.append(
        el('div', { class: 'lagbar', title: `lag ${bytes(m.lag_bytes)}` }, bar, mark),
        el(
          'div',
          { class: 'laglabel' },
          `lag ${bytes(m.lag_bytes)}${typeof m.lag_seconds === 'number' ? ` · ${seconds(m.lag_seconds)}` : ''}`,
          ` (limit ${bytes(limit)})`,
        ),
      );
    }
    if (chips.length) card.append(el('div', {}, ...chips));
    if (m.summary) card.append(el('div', { class: 'summary' }, m.summary));
    return card;
  }

  function renderTopology(s) {
    $('members').replaceChildren(
      ...(s.members.length
        ? s.members.map((m) => memberCard(m, s))
        : [el('p', { class: 'empty' }, 'no members in the DCS')]),
    );
    const notes = [];
    if (s.sync_standbys.length) notes.push(`sync: ${s.sync_standbys.join(', ')}`);
    if (s.scheduled_switchover) notes.push(`switchover scheduled at ${s.scheduled_switchover.at}`);
    $('topology-note').textContent = notes.join(' · ');
    renderSwitchover(s);
  }

  function renderSwitchover(s) {
    $('switchover').hidden = !s.switchover.allowed;
    if (!s.switchover.allowed) return;
    const sel = $('so-candidate');
    const keep = sel.value;
    const options = [el('option', { value: '' }, 'any healthy replica')];
    for (const m of s.members) if (m.role !== 'leader') options.push(el('option', { value: m.name }, m.name));
    sel.replaceChildren(...options);
    sel.value = [...sel.options].some((o) => o.value === keep) ? keep : '';
  }

  function renderChart(s) {
    const box = $('lag-chart');
    const W = 640;
    const H = 240;
    const pad = { l: 62, r: 10, t: 10, b: 24 };
    const now = Date.parse(s.generated_at);
    const series = Object.entries(s.lag_history.series);
    // The last hour; while the agent has kept less, the last ten minutes (or since its oldest sample).
    let oldest = now;
    for (const [, pts] of series) if (pts.length) oldest = Math.min(oldest, pts[0][0]);
    const span = Math.min(s.lag_history.window_ms, Math.max(10 * 60000, Math.ceil((now - oldest) / 300000) * 300000));
    const from = now - span;
    $('lag-note').textContent = span >= 3600000 ? 'last hour' : `last ${Math.round(span / 60000)} min`;
    let max = 0;
    for (const [, pts] of series) for (const [, v] of pts) if (v !== null) max = Math.max(max, v);
    const limit = s.max_lag_bytes;
    let top = Math.max(1024, max * 1.2);
    if (max > limit * 0.5) top = Math.max(top, limit * 1.1);
    const x = (t) => pad.l + ((t - from) / (now - from)) * (W - pad.l - pad.r);
    const y = (v) => H - pad.b - (v / top) * (H - pad.t - pad.b);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'replication lag, last hour' });
    for (const f of [0, 0.5, 1]) {
      root.append(svg('line', { class: 'axis', x1: pad.l, x2: W - pad.r, y1: y(top * f), y2: y(top * f) }));
      root.append(svg('text', { x: pad.l - 6, y: y(top * f) + 4, 'text-anchor': 'end' }, bytes(Math.round(top * f))));
    }
    const minutes = span / 60000;
    const tick = minutes <= 10 ? 2 : minutes <= 30 ? 5 : 15;
    for (let m = Math.floor(minutes / tick) * tick; m >= 0; m -= tick) {
      root.append(svg('text', { x: x(now - m * 60000), y: H - 6, 'text-anchor': 'middle' }, m ? `-${m} min` : 'now'));
    }
    if (limit <= top) {
      root.append(
        svg('line', {
          x1: pad.l,
          x2: W - pad.r,
          y1: y(limit),
          y2: y(limit),
          stroke: '#f85149',
          'stroke-dasharray': '6 4',
        }),
      );
      root.append(svg('text', { x: W - pad.r, y: y(limit) - 4, 'text-anchor': 'end' }, 'maximum_lag_on_failover'));
    }
    const legend = [];
    series.forEach(([name, pts], i) => {
      const color = COLORS[i % COLORS.length];
      let run = [];
      const flush = () => {
        if (run.length === 1) root.append(svg('circle', { cx: run[0][0], cy: run[0][1], r: 2, fill: color }));
        else if (run.length)
          root.append(
            svg('polyline', {
              points: run.map((p) => p.join(',')).join(' '),
              fill: 'none',
              stroke: color,
              'stroke-width': 2,
            }),
          );
        run = [];
      };
      for (const [t, v] of pts) {
        if (v === null || t < from) flush();
        else run.push([x(t).toFixed(1), y(v).toFixed(1)]);
      }
      flush();
      const sw = el('i');
      sw.style.background = color;
      legend.push(el('span', {}, sw, name));
    });
    const children = [root, el('div', { class: 'legend' }, ...legend)];
    if (!series.length) children.push(el('p', { class: 'empty' }, 'no samples yet'));
    box.replaceChildren(...children);
  }

  function eventClass(kind) {
    if (BAD_EVENTS.has(kind)) return 'bad';
    if (WARN_EVENTS.has(kind)) return 'warn';
    return GOOD_EVENTS.has(kind) ? 'good' : '';
  }

  function renderEvents(s) {
    const ev = s.events;
    const list = $('events');
    if (!ev.available) {
      list.replaceChildren(el('li', { class: 'empty' }, 'events are not available from these agents (no /events)'));
      return;
    }
    const items = ev.items
      .slice()
      .reverse()
      .map((e) =>
        el(
          'li',
          { 'data-kind': e.kind, 'data-member': e.member, title: e.time },
          el('span', { class: 'when' }, clock(e.at)),
          el('span', { class: 'who' }, e.member),
          el(
            'span',
            {},
            el('span', { class: `kind ${eventClass(e.kind)}` }, e.kind.replace(/_/g, ' ')),
            e.from || e.to ? `${e.from ?? '?'} → ${e.to ?? '?'} ` : '',
            el('span', { class: 'why' }, e.reason),
          ),
        ),
      );
    for (const err of ev.errors) items.push(el('li', { class: 'empty' }, err));
    list.replaceChildren(
      ...(items.length ? items : [el('li', { class: 'empty' }, 'nothing happened in the last hour')]),
    );
  }

  function table(head, rows) {
    return el(
      'table',
      {},
      el('thead', {}, el('tr', {}, ...head.map(([label, num]) => el('th', { class: num ? 'num' : '' }, label)))),
      el('tbody', {}, ...rows),
    );
  }

  function renderProxies(s) {
    const box = $('proxies');
    const p = s.proxies;
    if (p.error) return box.replaceChildren(el('p', { class: 'empty' }, p.error));
    if (!p.items.length)
      return box.replaceChildren(
        el(
          'p',
          { class: 'empty' },
          'no proxy registered in the DCS (a proxy following etcd with metrics_listen registers itself)',
        ),
      );
    const parts = [];
    for (const x of p.items) {
      const t = x.totals;
      parts.push(
        el(
          'div',
          { class: 'proxy-head' },
          `${x.id} — rw ${x.listen}${x.ro_listen ? `, ro ${x.ro_listen}` : ''}`,
          t ? ` · ${t.cl_active} active, ${t.cl_waiting} waiting, ${t.tps.toFixed(1)} TPS` : '',
        ),
      );
      if (x.error) {
        parts.push(el('p', { class: 'empty' }, `stats unavailable: ${x.error}`));
        continue;
      }
      const head = [['database'], ['user'], ['active', 1], ['waiting', 1], ['servers', 1], ['TPS', 1], ['p99 wait', 1]];
      const rows = x.pools.map((q) =>
        el(
          'tr',
          { class: 'pool', 'data-proxy': x.id, 'data-pool': `${q.database}/${q.user}` },
          el('td', {}, q.database),
          el('td', {}, q.user),
          el('td', { class: 'num' }, q.cl_active),
          el('td', { class: q.cl_waiting > 0 ? 'num warn' : 'num' }, q.cl_waiting),
          el('td', { class: 'num' }, `${q.sv_active} / ${q.sv_active + q.sv_idle}`),
          el('td', { class: 'num' }, q.tps.toFixed(1)),
          el('td', { class: q.p99_wait_ms > 100 ? 'num warn' : 'num' }, `${q.p99_wait_ms.toFixed(1)} ms`),
        ),
      );
      parts.push(rows.length ? table(head, rows) : el('p', { class: 'empty' }, 'no pools yet'));
    }
    box.replaceChildren(...parts);
  }

  function renderBackup(s) {
    const b = s.backup;
    $('backup-panel').hidden = !b;
    if (!b) return;
    const facts = [];
    const fact = (k, v, level) => facts.push(el('dt', {}, k), el('dd', { class: level || '' }, v));
    fact('repository', b.repo);
    if (b.last_backup)
      fact('last backup', `${b.last_backup.id} (${b.last_backup.type}), ${age(b.last_backup.age_s)} ago`);
    else fact('last backup', 'none yet', 'amber');
    if (b.running) fact('running', `${b.running} backup`);
    if (b.last_attempt && !b.last_attempt.ok) fact('last attempt', `failed: ${b.last_attempt.error}`, 'red');
    fact('recoverable', b.recoverable_from ? `${b.recoverable_from} → ${b.recoverable_to ?? '?'}` : 'no window yet');
    const a = b.archive;
    if (a) {
      fact('archive lag', `${a.backlog} segment${a.backlog === 1 ? '' : 's'} waiting`, a.backlog > 10 ? 'amber' : '');
      fact('last archived', a.last_archived ? `${a.last_archived}, ${age(a.last_archived_age_s)} ago` : 'none yet');
      if (a.last_failed)
        fact('archive failure', `${a.last_failed.name}: ${a.last_failed.message} (${a.failures} in total)`, 'red');
    } else fact('archiver', 'not running on this member');
    $('backup').replaceChildren(...facts);
  }

  function renderStatements(s) {
    const st = s.statements;
    const box = $('statements');
    if (!st.available)
      return box.replaceChildren(
        el(
          'p',
          { class: 'empty' },
          st.error ? `unavailable: ${st.error}` : 'not available from the leader (no /statements)',
        ),
      );
    if (!st.enabled)
      return box.replaceChildren(el('p', { class: 'empty' }, st.error || 'pg_stat_statements is not enabled'));
    if (!st.statements.length) return box.replaceChildren(el('p', { class: 'empty' }, 'no statements recorded yet'));
    const head = [['query'], ['database'], ['calls', 1], ['total', 1], ['mean', 1], ['rows', 1]];
    const rows = st.statements.map((q) =>
      el(
        'tr',
        { class: 'statement', 'data-queryid': q.queryid },
        el('td', { class: 'query mono', title: q.query }, q.query),
        el('td', {}, q.datname),
        el('td', { class: 'num' }, q.calls),
        el('td', { class: 'num' }, `${q.total_exec_time_ms.toFixed(1)} ms`),
        el('td', { class: 'num' }, `${q.mean_exec_time_ms.toFixed(2)} ms`),
        el('td', { class: 'num' }, q.rows),
      ),
    );
    box.replaceChildren(table(head, rows));
  }

  function render(s) {
    state = s;
    lastUpdate = Date.now();
    renderBanner(s);
    renderTopology(s);
    renderChart(s);
    renderEvents(s);
    renderProxies(s);
    renderBackup(s);
    renderStatements(s);
    showLink();
  }

  function showLink() {
    $('link').textContent = link;
    $('updated').textContent = lastUpdate ? `updated ${Math.round((Date.now() - lastUpdate) / 1000)} s ago` : '';
  }

  // Live updates: the stream first; on its failure poll, and try the stream again later.
  let pollTimer = null;
  async function poll() {
    try {
      const res = await fetch('/dashboard/state', { cache: 'no-store' });
      if (res.ok) render(await res.json());
      if (pollTimer) link = 'polling';
    } catch {
      link = 'disconnected';
    }
    showLink();
  }

  let stream = null;
  let retryTimer = null;

  function startPolling() {
    if (stream) stream.close();
    stream = null;
    link = 'polling';
    if (!pollTimer) {
      poll();
      pollTimer = setInterval(poll, POLL_MS);
    }
    if (!retryTimer) retryTimer = setTimeout(connect, SSE_RETRY_MS);
  }

  function connect() {
    retryTimer = null;
    if (!window.EventSource) return startPolling();
    const es = new EventSource('/dashboard/events');
    stream = es;
    es.addEventListener('state', (e) => {
      if (pollTimer) {
        clearInterval(pollTimer);
        pollTimer = null;
      }
      link = 'live';
      render(JSON.parse(e.data));
    });
    es.addEventListener('ping', () => {
      lastUpdate = Date.now();
      link = 'live';
      showLink();
    });
    es.addEventListener('error', startPolling);
  }

  /** A stream that went silent (a buffering proxy in between, a stalled agent) is replaced by polling. */
  function watchdog() {
    if (stream && link === 'live' && Date.now() - lastUpdate > STALE_MS) startPolling();
    showLink();
  }

  // Switchover: only offered when the API has credentials configured; the page asks for them and sends them
  // with this one request (kept in no storage).
  function basic(user, pass) {
    const bytes8 = new TextEncoder().encode(`${user}:${pass}`);
    let bin = '';
    for (const b of bytes8) bin += String.fromCharCode(b);
    return `Basic ${btoa(bin)}`;
  }

  async function switchover(ev) {
    ev.preventDefault();
    const answer = $('so-answer');
    if (!state?.leader) {
      answer.hidden = false;
      answer.className = 'answer bad';
      answer.textContent = 'no leader: a switchover needs one (wait for the failover)';
      return;
    }
    const candidate = $('so-candidate').value;
    const body = { leader: state.leader, ...(candidate ? { candidate } : {}) };
    $('so-submit').disabled = true;
    answer.hidden = false;
    answer.className = 'answer';
    answer.textContent = `switching over from ${state.leader}${candidate ? ` to ${candidate}` : ''}…`;
    try {
      const res = await fetch('/switchover', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: basic($('so-user').value, $('so-pass').value) },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      answer.className = res.ok ? 'answer ok' : 'answer bad';
      answer.textContent = `${res.status}: ${text.trim()}`;
      if (res.ok) $('switchover-form').hidden = true;
    } catch (err) {
      answer.className = 'answer bad';
      answer.textContent = `request failed: ${err.message}`;
    } finally {
      $('so-pass').value = '';
      $('so-submit').disabled = false;
    }
  }

  $('switchover-open').addEventListener('click', () => {
    $('switchover-form').hidden = false;
    $('so-user').focus();
  });
  $('so-cancel').addEventListener('click', () => {
    $('switchover-form').hidden = true;
    $('so-pass').value = '';
  });
  $('switchover-form').addEventListener('submit', switchover);
  setInterval(watchdog, 1000);
  poll().then(connect);
})();
