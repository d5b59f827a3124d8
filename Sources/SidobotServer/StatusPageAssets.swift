// The status page's files (`GET /ui`, `/ui/app.css`, `/ui/app.js`), embedded so the engine serves
// them itself: no SwiftPM resources, no CDN, nothing from the network. Plain HTML, CSS and JS;
// the CSP (`SidobotHTTPServer.statusPageCSP`) allows only this origin, so there is no inline
// script or style here and values are rendered as text, never as HTML.

enum StatusPageAssets {
    /// The page (`GET /ui`).
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Sidobot status</title>
<link rel="stylesheet" href="/ui/app.css">
<script src="/ui/app.js" defer></script>
</head>
<body>
<header>
  <div class="bar">
    <h1>Sidobot</h1>
    <span id="live" class="pill">starting</span>
    <span id="updated" class="muted small"></span>
    <span class="grow"></span>
    <button id="pause" type="button" hidden>Pause</button>
    <button id="logout" type="button" hidden>Sign out</button>
  </div>
  <nav id="nav" hidden>
    <a href="#overview">Overview</a><a href="#rules">Rules</a><a href="#events">Events</a><a href="#timers">Timers</a>
    <a href="#messages">Messages</a><a href="#dead-letters">Dead letters</a><a href="#metrics">Metrics</a>
  </nav>
</header>
<div id="banner" class="banner" hidden></div>
<noscript><p class="banner">This page needs JavaScript. Without it: <a href="/ui/plain">the plain view</a>
  (rules, recent events, timers, dead letters; it asks for the admin token as the password).</p></noscript>
<div id="login" class="login card" hidden>
  <div class="title">Admin token</div>
  <p class="muted small">The page reads the admin API with the engine's <code>SIDOBOT_ADMIN_TOKEN</code>.
    It is kept in this tab only (sessionStorage) and forgotten when the tab closes.</p>
  <form id="login-form">
    <input id="token" type="password" autocomplete="current-password" placeholder="SIDOBOT_ADMIN_TOKEN" aria-label="admin token" required>
    <button class="primary" type="submit">Open</button>
  </form>
</div>
<main id="main" hidden>
  <section id="overview"><h2>Overview</h2><div id="overview-body" class="stats"></div></section>
  <section id="rules"><h2>Rules <span class="count" id="rules-count"></span></h2><div id="rules-body" class="cards"></div></section>
  <section id="events"><h2>Recent events <span class="count" id="events-count"></span></h2>
    <form class="tools" id="find-form">
      <input id="find" type="search" placeholder="event or message id: why did (or didn't) my rule fire?" aria-label="event or message id">
      <button type="submit">Find trace</button><button type="button" id="find-clear" hidden>Clear</button>
    </form>
    <div id="found" hidden></div>
    <div id="events-body" class="list"></div></section>
  <section id="timers"><h2>Pending timers <span class="count" id="timers-count"></span></h2><div id="timers-body" class="list"></div></section>
  <section id="messages"><h2>Recent messages <span class="count" id="messages-count"></span></h2><div id="messages-body" class="list"></div></section>
  <section id="dead-letters"><h2>Dead letters <span class="count" id="dead-letters-count"></span></h2><div id="dead-letters-body" class="list"></div></section>
  <section id="metrics"><h2>Metrics <span class="count">from /metrics</span></h2><div id="metrics-body" class="list"></div></section>
</main>
</body>
</html>
"""#

    /// `GET /ui/app.css`.
    static let css = #"""
:root {
  --bg: #f4f5f7; --card: #fff; --fg: #1c2024; --muted: #5f6b76; --line: #dfe3e8;
  --ok: #1a7f37; --ok-bg: #dafbe1; --bad: #b42318; --bad-bg: #fee4e2; --warn: #9a6700; --warn-bg: #fff4d6;
  --info: #0b5cad; --info-bg: #dbeafe; --accent: #0b5cad;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #111418; --card: #1a1f25; --fg: #e6e9ec; --muted: #98a2ad; --line: #2d343c;
    --ok: #4ac26b; --ok-bg: #12301c; --bad: #ff7b72; --bad-bg: #3b1717; --warn: #e3b341; --warn-bg: #332a10;
    --info: #79b8ff; --info-bg: #13263d; --accent: #79b8ff;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { position: sticky; top: 0; z-index: 2; background: var(--card); border-bottom: 1px solid var(--line); }
.bar { display: flex; align-items: center; gap: 8px; padding: 8px 14px; flex-wrap: wrap; max-width: 1280px; margin: 0 auto; }
.bar h1 { font-size: 17px; margin: 0 6px 0 0; }
.bar .grow { flex: 1; }
nav { display: flex; gap: 4px; overflow-x: auto; padding: 0 10px 6px; max-width: 1280px; margin: 0 auto; scrollbar-width: none; }
nav a { color: var(--muted); text-decoration: none; padding: 3px 9px; border-radius: 999px; white-space: nowrap; font-size: 13px; }
nav a:hover { background: var(--bg); color: var(--fg); }
main { max-width: 1280px; margin: 0 auto; padding: 12px 14px 40px; }
section { margin: 0 0 22px; scroll-margin-top: 96px; }
h2 { font-size: 15px; margin: 0 0 8px; display: flex; align-items: baseline; gap: 8px; }
h2 .count { color: var(--muted); font-weight: 400; font-size: 13px; }
button, input { font: inherit; color: inherit; }
button { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 5px 11px; cursor: pointer; min-height: 32px; }
button:hover { border-color: var(--accent); }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button:disabled { opacity: .6; cursor: default; }
input { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 6px 9px; min-height: 32px; min-width: 0; }
.muted { color: var(--muted); }
.small { font-size: 12px; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
pre { white-space: pre-wrap; word-break: break-word; margin: 4px 0 0; padding: 6px 8px; background: var(--bg); border-radius: 6px; }
pre.err { color: var(--bad); background: var(--bad-bg); max-height: 9em; overflow: auto; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; background: var(--bg); color: var(--muted); white-space: nowrap; }
.pill.ok { background: var(--ok-bg); color: var(--ok); }
.pill.bad { background: var(--bad-bg); color: var(--bad); }
.pill.warn { background: var(--warn-bg); color: var(--warn); }
.pill.info { background: var(--info-bg); color: var(--info); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 340px), 1fr)); gap: 10px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; min-width: 0; }
.card .title { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; font-weight: 600; }
.card .title .grow { flex: 1; }
.kv { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; margin-top: 6px; }
.kv > dt { color: var(--muted); }
.kv > dd { margin: 0; min-width: 0; overflow-wrap: break-word; }
.chips { display: flex; flex-wrap: wrap; gap: 4px; }
.chip { border: 1px solid var(--line); border-radius: 4px; padding: 0 6px; font-size: 12px; font-family: ui-monospace, Menlo, Consolas, monospace; }
.stats { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px; }
.stat { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
.stat .v { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
.stat .l { color: var(--muted); font-size: 12px; }
.stat.alert .v { color: var(--bad); }
.list { background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
.row { padding: 8px 12px; border-top: 1px solid var(--line); min-width: 0; overflow-wrap: break-word; }
.row:first-child { border-top: 0; }
.row .head { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.row .head .grow { flex: 1; min-width: 4em; }
.row .head button { margin-left: auto; }
details > summary { cursor: pointer; list-style: none; }
details > summary::-webkit-details-marker { display: none; }
details > summary::before { content: "\25B8"; color: var(--muted); }
details[open] > summary { margin-bottom: 4px; }
details[open] > summary::before { content: "\25BE"; }
.run { margin: 6px 0 0 14px; padding-left: 10px; border-left: 3px solid var(--line); }
.run.ran { border-color: var(--ok); } .run.error, .run.aborted { border-color: var(--bad); } .run.skipped { border-color: var(--warn); }
.run ul { margin: 3px 0 0; padding-left: 18px; }
.history { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; margin-top: 4px; }
.history .arrow { color: var(--muted); }
.empty { padding: 12px; color: var(--muted); background: var(--card); border: 1px dashed var(--line); border-radius: 8px; }
.banner { max-width: 1280px; margin: 10px auto 0; padding: 8px 12px; border-radius: 8px; background: var(--bad-bg); color: var(--bad); }
.login { max-width: 420px; margin: 40px auto; }
.login form { display: flex; gap: 8px; margin-top: 10px; }
.login input { flex: 1; }
.tools { display: flex; gap: 6px; margin: 0 0 8px; flex-wrap: wrap; }
.tools input { flex: 1; min-width: 12em; }
table.metrics { width: 100%; border-collapse: collapse; }
table.metrics td { padding: 4px 12px; border-top: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
table.metrics td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
[hidden] { display: none !important; }
@media (max-width: 600px) {
  main { padding: 10px 8px 30px; }
  #updated { display: none; }
  .row.trace .head .grow { flex: 1 1 100%; order: 1; }
  .row.trace .head .pill { order: 2; }
  .bar button { padding: 4px 8px; }
  .bar { padding: 6px 8px; }
  .stat .v { font-size: 19px; }
  .stats { grid-template-columns: repeat(2, 1fr); }
}
"""#

    /// `GET /ui/app.js`: polls the admin API and renders it.
    static let javascript = #"""
'use strict';
// Sidobot status page: polls the admin API every few seconds and renders it. No dependencies,
// no inline handlers (the page's CSP allows only scripts from this origin); values are put in
// the DOM as text, never as HTML.
(function () {
  const KEY = 'sidobot.adminToken';
  const POLL_MS = 5000;
  const $ = (id) => document.getElementById(id);

  // A token in the fragment (/ui#token=...) is read once, kept for the tab, and removed from the address bar.
  const fragment = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (fragment) {
    try { sessionStorage.setItem(KEY, decodeURIComponent(fragment[1])); } catch (e) { /* storage disabled */ }
    history.replaceState(null, '', location.pathname + location.search);
  }
  let token = sessionStorage.getItem(KEY) || '';
  let paused = false;
  let timer = null;
  let serverNow = 0;       // the engine's clock (ms) at the last overview
  let fetchedAt = 0;       // the browser's clock then
  const openTraces = new Set();

  // --- DOM helpers -------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v; else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }
  const pill = (text, kind) => h('span', { class: 'pill ' + (kind || '') }, text);
  function fill(id, nodes, emptyText) {
    const el = $(id);
    el.replaceChildren(...(nodes.length ? nodes : [h('div', { class: 'empty' }, emptyText)]));
  }
  function count(id, n) { $(id).textContent = '(' + n + ')'; }

  // --- time --------------------------------------------------------------------------------
  const engineNow = () => (serverNow ? serverNow + (Date.now() - fetchedAt) : Date.now());
  function clock(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return iso || '';
    const sameDay = new Date(engineNow()).toDateString() === d.toDateString();
    return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
  }
  function span(ms) {
    const s = Math.round(Math.abs(ms) / 1000);
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.round(s / 60) + ' min';
    if (s < 172800) return (s / 3600).toFixed(1).replace(/\.0$/, '') + ' h';
    return Math.round(s / 86400) + ' d';
  }
  function rel(iso) {
    const t = Date.parse(iso);
    if (isNaN(t)) return '';
    const d = t - engineNow();
    return d >= 0 ? 'in ' + span(d) : span(d) + ' ago';
  }
  const when = (iso) => h('time', { datetime: iso, title: iso }, clock(iso), h('span', { class: 'muted' }, ' (' + rel(iso) + ')'));

  // --- API ---------------------------------------------------------------------------------
  class HTTPError extends Error { constructor(status, message) { super(message); this.status = status; } }
  async function api(path, options) {
    const res = await fetch(path, Object.assign({ headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' }, options || {}));
    const text = await res.text();
    if (!res.ok) {
      let message = text;
      try { message = JSON.parse(text).error || text; } catch (e) { /* not JSON */ }
      throw new HTTPError(res.status, message);
    }
    return path === '/metrics' ? text : JSON.parse(text);
  }

  // --- rendering ---------------------------------------------------------------------------
  const statusKind = (s) => ({ SUCCESS: 'ok', DELIVERED: 'ok', READ: 'ok', FAILED: 'bad', ERROR: 'bad', PENDING: 'info', DRY_RUN: 'warn', UNKNOWN: 'warn' })[String(s).toUpperCase()] || '';
  const outcomeKind = (o) => ({ ran: 'ok', error: 'bad', aborted: 'bad', skipped: 'warn' })[o] || '';

  function mib(bytes) { return bytes >= 1 << 30 ? (bytes / (1 << 30)).toFixed(1) + ' GiB' : (bytes / (1 << 20)).toFixed(1) + ' MiB'; }

  function renderOverview(o) {
    const stat = (value, label, alert) => h('div', { class: 'stat' + (alert ? ' alert' : '') }, h('div', { class: 'v' }, value), h('div', { class: 'l' }, label));
    const statuses = Object.entries(o.messages_by_status).sort();
    fill('overview-body', [
      stat(o.outbox_depth, 'outbox depth (sends waiting)'),
      stat(o.sent_last_minute, 'sent in the last minute'),
      stat((o.sent_last_5_minutes / 5).toFixed(1), 'sent per minute (5 min avg)'),
      stat(o.timers_pending, 'timers pending'),
      stat(o.active_runs, 'handler runs now'),
      stat(o.dead_letters, 'dead letters', o.dead_letters > 0),
      stat(o.rules + (o.rules_quarantined ? ' / ' + o.rules_quarantined + ' quarantined' : ''), 'rules loaded', o.rules_quarantined > 0),
      stat(o.handler_runs, 'handler runs'),
      stat(o.handler_errors + ' / ' + o.handler_aborts, 'handler errors / aborts', o.handler_errors + o.handler_aborts > 0),
      stat(o.messages, 'messages in the ledger'),
      h('div', { class: 'stat' }, h('div', { class: 'chips' },
        statuses.length ? statuses.map(([s, n]) => pill(s + ' ' + n, statusKind(s))) : h('span', { class: 'muted' }, 'none')),
        h('div', { class: 'l' }, 'messages by status')),
      o.resident_bytes ? stat(mib(o.resident_bytes) + (o.memory_budget_bytes ? ' / ' + mib(o.memory_budget_bytes) : ''),
        'memory (RSS' + (o.memory_budget_bytes ? ' / budget' : '') + ')', o.memory_budget_bytes && o.resident_bytes >= 0.8 * o.memory_budget_bytes) : null,
      h('div', { class: 'stat' }, h('div', { class: 'chips' },
        Object.entries(o.stores || {}).sort().map(([name, s]) => h('span', { class: 'chip', 'data-store': name },
          name + ' ' + s.records + (s.estimated_bytes !== null && s.estimated_bytes !== undefined ? ' (~' + mib(s.estimated_bytes) + ')' : '')))),
        h('div', { class: 'l' }, 'records kept, by store (estimated memory)')),
    ].filter((n) => n !== null), '');
  }

  function renderRules(rules, reload) {
    count('rules-count', rules.length);
    // Files that failed to load with nothing of them running (a new file, or the folder itself).
    const notRunning = ((reload && reload.failed) || []).filter((f) => !f.previous_version_runs);
    const failedCards = notRunning.map((f) => h('div', { class: 'card rule', 'data-load-failed': f.rule || '' },
      h('div', { class: 'title' }, h('span', { class: 'grow mono' }, f.rule || f.path), pill('failed to load', 'bad')),
      h('div', { class: 'muted' }, f.rule ? 'not running: this file has not loaded yet (reload at ' + f.at + ')' : 'the rules folder could not be read'),
      h('pre', { class: 'err' }, f.error)));
    fill('rules-body', failedCards.concat(rules.map((r) => h('div', { class: 'card rule', 'data-rule': r.name },
      h('div', { class: 'title' }, h('span', { class: 'grow mono' }, r.name),
        r.load_error ? pill('edit failed to load', 'bad') : null,
        r.quarantined ? pill('quarantined', 'bad') : pill('active', 'ok')),
      r.load_error ? h('div', { class: 'load-error' },
        h('div', { class: 'muted' }, 'the file changed and did not load (reload at ' + r.load_error.at + '); the version loaded ' + r.loaded_at + ' keeps running'),
        h('pre', { class: 'err' }, r.load_error.error)) : null,
      r.description ? h('div', { class: 'muted' }, r.description) : null,
      h('dl', { class: 'kv' },
        h('dt', {}, 'loaded'), h('dd', {}, when(r.loaded_at), h('span', { class: 'muted small' }, ' · ' + r.path)),
        h('dt', {}, 'handlers'), h('dd', { class: 'chips' }, r.events.length ? r.events.map((e) => h('span', { class: 'chip' }, e)) : h('span', { class: 'muted' }, 'none')),
        r.schedules.length ? [h('dt', {}, 'schedules'), h('dd', {}, r.schedules.map((s) =>
          h('div', { class: 'schedule' }, h('code', {}, s.key), ' next ', s.next ? when(s.next) : h('span', { class: 'muted' }, 'never')))) ] : null,
        h('dt', {}, 'runs'), h('dd', {}, r.runs + ' runs, ',
          h('span', { class: r.errors ? 'pill bad' : '' }, r.errors + ' errors'), ', ',
          h('span', { class: r.aborts ? 'pill bad' : '' }, r.aborts + ' aborts'),
          r.aborts ? h('span', { class: 'muted small' }, ' (' + Object.entries(r.limits_hit || {}).map(([k, n]) => k + ' limit × ' + n).join(', ') + ')') : null,
          h('span', { class: 'muted small' }, ' · ' + Math.round(r.memory_bytes / 1024) + ' KiB'))),
      r.last_error ? h('pre', { class: 'err' }, r.last_error) : null,
    ))), 'No rules loaded.');
  }

  function traceNode(t) {
    const key = t.event_id;
    const details = h('details', { class: 'row trace', 'data-event': t.event_id },
      h('summary', { class: 'head' },
        h('span', { class: 'muted small' }, clock(t.at)),
        h('code', {}, t.event),
        h('span', { class: 'grow' }, t.summary || ''),
        t.rules.length ? t.rules.map((r) => pill(r.rule + ': ' + r.outcome, outcomeKind(r.outcome))) : pill('no rule listens', 'warn')),
      h('div', { class: 'small' },
        h('div', { class: 'muted' }, 'event ', h('code', {}, t.event_id), ' at ', t.at),
        t.message_ids.length ? h('div', {}, 'messages: ', t.message_ids.map((m) => h('code', {}, m + ' '))) : null,
        t.notes.map((n) => h('div', { class: 'muted' }, 'note: ' + n)),
        t.rules.length ? null : h('div', { class: 'muted' }, 'no rule listens for ' + t.event),
        t.rules.map((r) => h('div', { class: 'run ' + r.outcome },
          h('div', {}, h('b', {}, r.rule), ' ', pill(r.outcome, outcomeKind(r.outcome)),
            r.duration_ms !== null && r.duration_ms !== undefined ? h('span', { class: 'muted' }, ' ' + r.duration_ms + ' ms') : null),
          r.detail ? h('pre', { class: r.outcome === 'skipped' ? '' : 'err' }, (r.outcome === 'skipped' ? 'why: ' : 'error: ') + r.detail) : null,
          r.actions.length ? h('ul', {}, r.actions.map((a) => h('li', {}, a))) : h('div', { class: 'muted' }, 'no actions')))));
    if (openTraces.has(key)) details.open = true;
    details.addEventListener('toggle', () => { if (details.open) openTraces.add(key); else openTraces.delete(key); });
    return details;
  }

  function renderTraces(traces) {
    count('events-count', traces.length);
    fill('events-body', traces.map(traceNode), 'No events yet.');
  }

  function renderTimers(timers) {
    count('timers-count', timers.length);
    fill('timers-body', timers.map((t) => h('div', { class: 'row timer', 'data-timer': t.id },
      h('div', { class: 'head' }, h('code', {}, t.rule + ' · timer.' + t.name), h('span', { class: 'grow' }), h('span', {}, 'due ', when(t.due))),
      h('div', { class: 'muted small' }, t.id + ' · set ' + clock(t.created_at) + ' · payload ', h('code', {}, JSON.stringify(t.payload))))), 'No pending timers.');
  }

  function renderMessages(messages) {
    count('messages-count', messages.length);
    fill('messages-body', messages.map((m) => h('div', { class: 'row message', 'data-message': m.id, 'data-history-length': m.history.length },
      h('div', { class: 'head' }, pill(m.status, statusKind(m.status)), h('code', {}, m.phone),
        h('span', { class: 'grow muted small' }, m.rule + (m.attempt > 1 ? ' · attempt ' + m.attempt : '') + (m.resend_of ? ' · resend of ' + m.resend_of : '')),
        h('button', { type: 'button', class: 'why', 'data-id': m.id }, 'Trace')),
      m.message ? h('div', { class: 'small' }, m.message.length > 160 ? m.message.slice(0, 160) + '…' : m.message) : null,
      m.status === 'UNKNOWN' ? h('div', { class: 'in-doubt' },
        h('span', { class: 'small' }, 'In doubt: its request went out and no answer came (a timeout, a lost connection, a restart), so it may have reached the customer. It is not sent again. '),
        h('button', { type: 'button', class: 'resolve primary', 'data-id': m.id, 'data-status': 'SUCCESS' }, 'It was delivered'), ' ',
        h('button', { type: 'button', class: 'resolve', 'data-id': m.id, 'data-status': 'FAILED' }, 'It was not delivered')) : null,
      h('div', { class: 'history' }, h('span', { class: 'muted small' }, h('code', {}, m.id), ' '),
        m.history.map((c, i) => [i ? h('span', { class: 'arrow' }, '→') : null,
          h('span', { class: 'chip', title: c.at + ' via ' + c.source }, c.status + ' ' + clock(c.at))])))), 'No messages in the ledger.');
  }

  function renderDeadLetters(letters) {
    count('dead-letters-count', letters.length);
    fill('dead-letters-body', letters.slice().reverse().map((d) => h('div', { class: 'row dead-letter', 'data-dead-letter': d.id },
      h('div', { class: 'head' }, pill(d.reason, 'bad'), h('code', {}, d.rule), h('span', { class: 'grow' }, d.event),
        h('button', { type: 'button', class: 'replay primary', 'data-id': d.id }, 'Replay')),
      h('pre', { class: 'err' }, d.error),
      h('div', { class: 'muted small' }, clock(d.at) + ' · ' + d.id + ' · event ', h('code', {}, d.event_id)))), 'No dead letters.');
  }

  function renderMetrics(text) {
    const rows = [];
    for (const line of text.split('\n')) {
      if (!line.startsWith('sidobot_') || /_bucket[{ ]/.test(line)) continue;
      const i = line.lastIndexOf(' ');
      const value = Number(line.slice(i + 1));
      rows.push(h('tr', {}, h('td', { class: 'mono' }, line.slice(0, i)),
        h('td', { class: 'n mono' }, Number.isInteger(value) ? value : value.toFixed(3))));
    }
    fill('metrics-body', rows.length ? [h('table', { class: 'metrics' }, h('tbody', {}, rows))] : [], 'No metrics yet.');
  }

  // --- refresh loop ------------------------------------------------------------------------
  function setLive(text, kind) { const el = $('live'); el.textContent = text; el.className = 'pill ' + kind; }
  function banner(text) { $('banner').textContent = text || ''; $('banner').hidden = !text; }

  function showLogin(message) {
    token = '';
    sessionStorage.removeItem(KEY);
    $('main').hidden = true; $('nav').hidden = true; $('pause').hidden = true; $('logout').hidden = true;
    $('login').hidden = false;
    banner(message);
    setLive('signed out', '');
    $('token').focus();
  }

  async function refresh() {
    clearTimeout(timer);
    timer = null;
    if (!token) return;
    try {
      const [overview, rules, traces, timers, messages, letters, metrics, doubtful] = await Promise.all([
        api('/api/overview'), api('/api/rules'), api('/api/traces?limit=40'), api('/api/timers'),
        api('/api/messages?limit=40'), api('/api/dead-letters'), api('/metrics').catch(() => ''),
        api('/api/messages?status=UNKNOWN&limit=100'),
      ]);
      serverNow = Date.parse(overview.now) || Date.now();
      fetchedAt = Date.now();
      renderOverview(overview);
      renderRules(rules.rules, rules.reload);
      renderTraces(traces.traces);
      renderTimers(timers.timers);
      // Messages in doubt first, however old: each waits for someone to decide.
      const recent = messages.messages.filter((m) => m.status !== 'UNKNOWN');
      renderMessages(doubtful.messages.concat(recent));
      renderDeadLetters(letters.dead_letters);
      renderMetrics(metrics);
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
      $('live').title = $('updated').textContent;
      banner('');
      setLive(paused ? 'paused' : 'live', paused ? 'warn' : 'ok');
    } catch (e) {
      if (e.status === 401) return showLogin('The engine refused this token: type it again.');
      if (e.status === 403) { banner(e.message); setLive('admin API off', 'bad'); return; }
      banner(e.status === 503 ? 'The engine is starting or stopping: ' + e.message : 'Cannot reach the engine: ' + e.message);
      setLive('offline', 'bad');
    }
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    timer = paused || document.hidden || !token ? null : setTimeout(refresh, POLL_MS);
  }

  function start() {
    $('login').hidden = true;
    $('main').hidden = false; $('nav').hidden = false; $('pause').hidden = false; $('logout').hidden = false;
    setLive('loading', 'info');
    refresh();
  }

  async function findTrace(id) {
    const box = $('found');
    box.hidden = false;
    $('find-clear').hidden = false;
    box.replaceChildren(h('div', { class: 'empty' }, 'Looking for ' + id + '…'));
    try {
      const body = await api('/api/traces/' + id.split('/').map(encodeURIComponent).join('/'));
      box.replaceChildren(h('div', { class: 'muted small' }, 'Traces for ', h('code', {}, id), ':'),
        h('div', { class: 'list' }, body.traces.map((t) => { const n = traceNode(t); n.open = true; return n; })), h('br'));
    } catch (e) {
      if (e.status === 401) return showLogin('The engine refused this token: type it again.');
      box.replaceChildren(h('div', { class: 'empty' }, e.message));
    }
  }

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    token = $('token').value.trim();
    $('token').value = '';
    if (!token) return;
    sessionStorage.setItem(KEY, token);
    banner('');
    start();
  });
  $('logout').addEventListener('click', () => { clearTimeout(timer); showLogin(''); });
  $('pause').addEventListener('click', () => {
    paused = !paused;
    $('pause').textContent = paused ? 'Resume' : 'Pause';
    setLive(paused ? 'paused' : 'live', paused ? 'warn' : 'ok');
    if (paused) clearTimeout(timer); else refresh();
  });
  $('find-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = $('find').value.trim();
    if (id) findTrace(id);
  });
  $('find-clear').addEventListener('click', () => { $('found').hidden = true; $('find-clear').hidden = true; $('find').value = ''; });
  document.addEventListener('click', async (ev) => {
    const button = ev.target.closest('button');
    if (!button) return;
    if (button.classList.contains('why')) {
      $('find').value = button.dataset.id;
      findTrace(button.dataset.id);
      $('events').scrollIntoView();
    } else if (button.classList.contains('resolve')) {
      const status = button.dataset.status;
      button.disabled = true;
      try {
        await api('/api/messages/' + encodeURIComponent(button.dataset.id) + '/resolve',
          { method: 'POST', headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' }, body: JSON.stringify({ status: status }) });
        refresh();
      } catch (e) {
        button.disabled = false;
        banner('Resolving ' + button.dataset.id + ' failed: ' + e.message);
      }
    } else if (button.classList.contains('replay')) {
      button.disabled = true;
      button.textContent = 'Replaying…';
      try {
        await api('/api/dead-letters/' + encodeURIComponent(button.dataset.id) + '/replay', { method: 'POST', headers: { Authorization: 'Bearer ' + token } });
        button.textContent = 'Replayed';
        refresh();
      } catch (e) {
        button.disabled = false;
        button.textContent = 'Replay';
        banner('Replay of ' + button.dataset.id + ' failed: ' + e.message);
      }
    }
  });
  document.addEventListener('visibilitychange', () => { if (!document.hidden && token && !paused) refresh(); });

  if (token) start(); else showLogin('');
})();
"""#
}
