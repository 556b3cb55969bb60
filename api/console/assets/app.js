// redback console: plain JavaScript over the admin API (docs/API.md).
// The bearer token lives in this script's memory only: no cookie (so no
// CSRF to defend against), nothing in localStorage; a reload asks for a
// new code. Every text from the API is put into the page as text, never
// as HTML.
'use strict';

const state = {
  token: null,
  target: null,      // the chosen target's name
  targets: [],
  reauth: null,      // the pending re-login, shared by every 401
  archives: [],      // the chosen target's archives (newest first)
  sort: { key: 'created_at', dir: -1 },
  browse: null,      // the archive browser's state
  timers: [],        // the current view's refreshes
};

// ---- small helpers ----------------------------------------------------

const $ = (id) => document.getElementById(id);

// el builds an element: attrs holds attributes ("class", "aria-*", ...),
// "text" (its text), and "on" (event handlers); children are nodes or
// strings (as text).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return e;
}

function bytes(n) {
  if (n === undefined || n === null) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(n < 10 ? 2 : 1) : String(n)) + ' ' + u[i];
}

function num(n) { return n === undefined || n === null ? '–' : Number(n).toLocaleString('en'); }

function seconds(s) {
  if (s === undefined || s === null) return '–';
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
  if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' min';
  return Math.floor(s / 86400) + ' d ' + Math.round((s % 86400) / 3600) + ' h';
}

function ago(iso) {
  if (!iso) return '–';
  const s = (Date.now() - Date.parse(iso)) / 1000;
  return s < 0 ? 'in ' + seconds(-s) : seconds(s) + ' ago';
}

function when(iso) {
  if (!iso) return '–';
  return new Date(iso).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
}

function isCode(c) { return /^[0-9]{6}$/.test(c); }

// ---- the API ----------------------------------------------------------

class APIError extends Error {
  constructor(status, message, body) { super(message); this.status = status; this.body = body; }
}

// call sends one API request. opts: body (JSON), code (X-TOTP-Code),
// query (an object or URLSearchParams), noTarget, blob. A 401 opens the
// re-login dialog and sends the request again once logged in: the page
// and what was typed stay as they were.
async function call(method, path, opts = {}) {
  const q = new URLSearchParams(opts.query || {});
  if (!opts.noTarget && state.target) q.set('target', state.target);
  const url = path + (q.toString() ? '?' + q.toString() : '');
  for (;;) {
    const headers = {};
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    if (opts.code) headers['X-TOTP-Code'] = opts.code;
    let body;
    if (opts.body !== undefined) { headers['Content-Type'] = 'application/json'; body = JSON.stringify(opts.body); }
    const res = await fetch(url, { method, headers, body, credentials: 'omit', cache: 'no-store', redirect: 'error' });
    if (res.status === 401 && path !== '/api/auth/login') {
      await relogin();
      continue;
    }
    if (opts.blob && res.ok) return res.blob();
    let data = {};
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok && !(opts.acceptFailed && data && data.filename !== undefined)) {
      throw new APIError(res.status, data.error || res.statusText || 'request failed', data);
    }
    return data;
  }
}

// relogin shows the re-login dialog (once, whoever asks) and resolves
// when a new token is in hand.
function relogin() {
  if (!state.token) return Promise.reject(new Error('logged out'));
  if (!state.reauth) {
    state.reauth = new Promise((resolve, reject) => {
      const d = $('reauth');
      $('reauth-code').value = '';
      $('reauth-error').textContent = '';
      const done = () => { d.close(); state.reauth = null; };
      state.reauthDone = { resolve: () => { done(); resolve(); }, reject: (e) => { done(); reject(e); } };
      d.showModal();
      $('reauth-code').focus();
    });
  }
  return state.reauth;
}

async function login(code) {
  const res = await call('POST', '/api/auth/login', { body: { code }, noTarget: true });
  state.token = res.token;
  state.expiresAt = res.expires_at;
}

function logout() {
  const tok = state.token;
  state.token = null;
  if (tok) fetch('/api/auth/logout', { method: 'POST', headers: { Authorization: 'Bearer ' + tok }, credentials: 'omit' }).catch(() => {});
  if (state.reauthDone) state.reauthDone.reject(new Error('logged out'));
  stopTimers();
  $('view').replaceChildren();
  $('activity').replaceChildren();
  $('view').hidden = true;
  $('top').hidden = true;
  $('login').hidden = false;
  $('login-code').value = '';
  $('login-code').focus();
}

// ---- live progress of jobs --------------------------------------------

// progressBox renders a job's progress into box: keys done of the total,
// the rate and the time left.
function progressBox(box, job) {
  const p = job.progress || {};
  const total = p.keys_total > 0 ? p.keys_total : 0;
  const label = job.kind + (job.filename ? ' of ' + job.filename : '') + ' (' + job.status + ')';
  const bar = el('progress', { max: total || 1, 'aria-label': label });
  if (job.status !== 'running') bar.value = total || 1; // ended: full
  else if (total) bar.value = Math.min(p.keys_done, total);
  const parts = [];
  if (p.keys_done || total) parts.push(num(p.keys_done) + (total ? ' of ' + num(total) : '') + ' keys');
  if (job.keys_per_second) parts.push(num(Math.round(job.keys_per_second)) + ' keys/s');
  if (job.eta_seconds !== undefined && job.eta_seconds !== null) parts.push(seconds(job.eta_seconds) + ' left');
  parts.push(seconds(job.duration_seconds) + (job.status === 'running' ? ' so far' : ''));
  box.replaceChildren(el('div', { class: 'job-label', text: label }), bar, el('div', { class: 'job-figures', text: parts.join(' · ') }));
}

// summary says in a line how a finished job went.
function summary(job) {
  const r = job.result || {};
  if (job.status !== 'succeeded') return 'Failed: ' + (job.error || r.error || 'unknown error');
  switch (job.kind) {
    case 'backup': return 'Done: ' + num(r.keys_count) + ' keys, ' + bytes(r.size) + '.';
    case 'verify': return 'Verified: ' + num(r.keys_count) + ' keys (' + r.integrity + ').';
    case 'restore': return (r.dry_run ? 'Dry run: would restore ' : 'Done: restored ') + num(r.restored_count) + ', skipped ' + num(r.skipped_count) +
      ', errors ' + num(r.error_count) + ', left out ' + num(r.filtered_count) + '.';
  }
  return 'Done.';
}

// follow polls job id until it ends, drawing its progress into box;
// it resolves with the finished job.
async function follow(id, box) {
  for (;;) {
    const job = await call('GET', '/api/jobs/' + id, { noTarget: true });
    if (box) progressBox(box, job);
    if (job.status !== 'running') return job;
    await new Promise((r) => setTimeout(r, 400));
  }
}

// start runs an async job (create, verify, restore) and follows it in the
// activity bar (and in box when given), then tells how it ended.
async function start(path, body, opts = {}) {
  const res = await call('POST', path, { body: Object.assign({ async: true }, body), code: opts.code });
  const act = el('div', { class: 'job' });
  $('activity').append(act);
  try {
    const job = await follow(res.job_id, opts.box || act);
    if (opts.box) progressBox(act, job);
    act.classList.add(job.status);
    act.append(el('div', { class: 'job-end', text: summary(job) }),
      el('button', { type: 'button', class: 'quiet small', text: 'Dismiss', on: { click: () => act.remove() } }));
    // Successes leave by themselves after a while; failures stay.
    if (job.status === 'succeeded') setTimeout(() => act.remove(), 20000);
    return job;
  } catch (e) {
    act.remove();
    throw e;
  }
}

function notice(text, kind) {
  const n = el('div', { class: 'job ' + (kind || '') }, el('div', { class: 'job-end', text }),
    el('button', { type: 'button', class: 'quiet small', text: 'Dismiss', on: { click: () => n.remove() } }));
  $('activity').append(n);
}

// ---- confirmations with a fresh code -----------------------------------

// confirmWithCode asks to confirm a destructive action with a fresh code,
// then runs act(code); the dialog stays open (with the error) while act
// fails.
function confirmWithCode(title, text, okLabel, act) {
  const d = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = okLabel;
  $('confirm-code').value = '';
  $('confirm-error').textContent = '';
  state.confirmAct = act;
  d.showModal();
  $('confirm-code').focus();
}

// ---- views --------------------------------------------------------------

function stopTimers() { for (const t of state.timers) clearInterval(t); state.timers = []; }

function every(ms, fn) { state.timers.push(setInterval(fn, ms)); }

async function route() {
  if (!state.token) return;
  stopTimers();
  const [view, ...rest] = (location.hash.replace(/^#/, '') || 'dashboard').split('/');
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.view === view || (view === 'browse' && a.dataset.view === 'archives')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const v = $('view');
  try {
    if (view === 'archives') await archivesView(v);
    else if (view === 'browse') await browseView(v, decodeURIComponent(rest.join('/')));
    else if (view === 'operations') await operationsView(v);
    else await dashboardView(v);
  } catch (e) {
    v.replaceChildren(el('p', { class: 'error', role: 'alert', text: 'Could not load this page: ' + e.message }));
  }
}

async function loadTargets() {
  const res = await call('GET', '/api/targets', { noTarget: true });
  state.targets = res.targets;
  if (!state.target || !state.targets.some((t) => t.name === state.target)) state.target = state.targets[0].name;
  const sel = $('target');
  sel.replaceChildren(...state.targets.map((t) => el('option', { value: t.name, text: t.name, selected: t.name === state.target })));
  sel.closest('label').hidden = state.targets.length < 2;
}

async function loadArchives() {
  const res = await call('GET', '/api/backup/list');
  state.archives = res.backups.slice().reverse();
  return state.archives;
}

// ---- dashboard ----

async function dashboardView(v) {
  await loadTargets();
  const lists = await Promise.all(state.targets.map((t) =>
    call('GET', '/api/backup/list', { noTarget: true, query: { target: t.name } }).then((r) => r.backups, () => null)));
  const cards = state.targets.map((t, i) => targetCard(t, lists[i]));
  const mine = lists[state.targets.findIndex((t) => t.name === state.target)] || [];
  v.replaceChildren(
    el('h1', { text: 'Dashboard' }),
    el('div', { class: 'cards' }, cards),
    el('h2', { text: 'History of ' + state.target }),
    el('div', { class: 'charts' },
      chart('Archive size', mine, (b) => b.size, bytes),
      chart('Keys', mine, (b) => b.keys_count, num),
      chart('Backup duration', mine, (b) => b.duration_seconds, seconds, true)));
  v.hidden = false;
  every(15000, () => { if (!document.querySelector('dialog[open]')) route(); });
}

function targetCard(t, backups) {
  const newest = backups && backups.length ? backups[backups.length - 1] : null;
  const health = { ok: 'Healthy', warning: 'Needs attention', error: 'Failing' }[t.health] || t.health;
  const rows = [
    ['Redis', t.redis],
    ['Storage', t.storage || '–'],
    ['Archives', String(t.total_backups)],
    ['Newest archive', newest ? newest.filename : 'none'],
  ];
  if (newest) {
    rows.push(['Age', ago(newest.created_at)], ['Size', bytes(newest.size)], ['Keys', num(newest.keys_count)],
      ['Verified', newest.verified ? 'yes, ' + when(newest.verified_at) : 'no'],
      ['Restore drill', drillText(newest)]);
  }
  rows.push(['Next scheduled run', t.next_run ? when(t.next_run) + ' (' + ago(t.next_run) + ')' : 'not scheduled'],
    ['Last scheduled run', t.last_run ? t.last_run.outcome + ', ' + when(t.last_run.started_at) : 'none yet']);
  if (t.running_job) rows.push(['Running', 'job ' + t.running_job]);
  return el('section', { class: 'card health-' + t.health, 'aria-labelledby': 'card-' + t.name },
    el('h2', { id: 'card-' + t.name }, t.name, ' ', el('span', { class: 'badge ' + t.health, text: health })),
    t.warnings && t.warnings.length ? el('ul', { class: 'warnings', 'aria-label': 'Warnings' }, t.warnings.map((w) => el('li', { text: w }))) : null,
    el('dl', {}, rows.map(([k, val]) => [el('dt', { text: k }), el('dd', { text: val })])),
    el('button', { type: 'button', text: 'Back up now', on: { click: (e) => backupNow(t.name, e.target) } }));
}

async function backupNow(target, button) {
  const prev = state.target;
  state.target = target;
  if (button) button.disabled = true;
  try {
    const job = await start('/api/backup/create', {});
    state.target = prev;
    if (job.status === 'succeeded') route();
  } catch (e) {
    state.target = prev;
    notice('Backup not started: ' + e.message, 'failed');
  } finally {
    if (button) button.disabled = false;
  }
}

// chart draws values over time as an SVG line (or bars), with the axes'
// extremes written out and a text summary for screen readers.
function chart(title, backups, value, fmt, bars) {
  const pts = (backups || []).filter((b) => typeof value(b) === 'number').map((b) => ({ t: Date.parse(b.created_at), v: value(b) }));
  const fig = el('figure', { class: 'chart' }, el('figcaption', { text: title }));
  if (pts.length === 0) { fig.append(el('p', { class: 'muted', text: 'No data yet.' })); return fig; }
  const W = 320, H = 140, L = 14, R = 14, T = 20, B = 22;
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
  const vmax = Math.max(...pts.map((p) => p.v)) || 1;
  const x = (t) => (t1 === t0 ? L + (W - L - R) / 2 : L + (t - t0) / (t1 - t0) * (W - L - R));
  const y = (v) => T + (1 - v / vmax) * (H - T - B);
  const ns = 'http://www.w3.org/2000/svg';
  const s = (tag, attrs) => { const n = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v)); return n; };
  const last = pts[pts.length - 1];
  const desc = title + ': ' + pts.length + ' archives; newest ' + fmt(last.v) + ', highest ' + fmt(vmax) + '.';
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': desc, class: 'chart-svg' });
  svg.append(s('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' }));
  if (bars) {
    const w = Math.max(2, Math.min(16, (W - L - R) / pts.length - 2));
    for (const p of pts) svg.append(s('rect', { x: x(p.t) - w / 2, y: y(p.v), width: w, height: Math.max(1, H - B - y(p.v)), class: 'bar' }));
  } else {
    svg.append(s('polyline', { points: pts.map((p) => x(p.t).toFixed(1) + ',' + y(p.v).toFixed(1)).join(' '), class: 'line' }));
    for (const p of pts) svg.append(s('circle', { cx: x(p.t), cy: y(p.v), r: 2.5, class: 'dot' }));
  }
  const label = (tx, px, py, anchor) => { const n = s('text', { x: px, y: py, 'text-anchor': anchor, class: 'tick' }); n.textContent = tx; return n; };
  svg.append(s('line', { x1: L, y1: T, x2: W - R, y2: T, class: 'grid' }));
  svg.append(label('max ' + fmt(vmax), L, T - 6, 'start'));
  svg.append(label(new Date(t0).toISOString().slice(5, 16).replace('T', ' '), L, H - 6, 'start'));
  if (t1 !== t0) svg.append(label(new Date(t1).toISOString().slice(5, 16).replace('T', ' '), W - R, H - 6, 'end'));
  fig.append(svg, el('p', { class: 'sr-only', text: desc }));
  return fig;
}

// ---- archives ----

async function archivesView(v) {
  await loadArchives();
  const filter = el('input', { id: 'archive-filter', type: 'search', placeholder: 'part of a name, e.g. 20240105' });
  const onlyVerified = el('input', { id: 'archive-verified', type: 'checkbox' });
  const table = el('table', { class: 'archives' });
  const draw = () => drawArchives(table, filter.value.trim(), onlyVerified.checked);
  filter.addEventListener('input', draw);
  onlyVerified.addEventListener('change', draw);
  v.replaceChildren(
    el('h1', { text: 'Archives of ' + state.target }),
    el('div', { class: 'toolbar' },
      el('label', { for: 'archive-filter', text: 'Filter' }), filter,
      el('label', { class: 'inline' }, onlyVerified, ' verified only'),
      el('button', { type: 'button', text: 'Back up now', on: { click: async (e) => { await backupNow(state.target, e.target); } } })),
    table);
  draw();
  v.hidden = false;
}

const columns = [
  ['created_at', 'Created'], ['filename', 'Name'], ['size', 'Size'], ['keys_count', 'Keys'],
  ['duration_seconds', 'Took'], ['verified', 'Verified'], ['drilled_at', 'Drilled'],
];

// drillText says how an archive's newest restore drill went (redback drill).
function drillText(b) {
  if (!b.drill_result) return 'never drilled';
  return (b.drill_result === 'passed' ? 'restorable (passed)' : 'FAILED') + ', ' + when(b.drilled_at) +
    (b.drill_error ? ': ' + b.drill_error : '');
}

function drawArchives(table, filter, onlyVerified) {
  const { key, dir } = state.sort;
  const rows = state.archives.filter((b) => (!filter || b.filename.includes(filter)) && (!onlyVerified || b.verified))
    .sort((a, b) => { const x = a[key] ?? -1, y = b[key] ?? -1; return (x < y ? -1 : x > y ? 1 : 0) * dir; });
  const head = el('tr', {}, columns.map(([k, label]) => el('th', { scope: 'col', 'aria-sort': k === key ? (dir > 0 ? 'ascending' : 'descending') : 'none' },
    el('button', { type: 'button', class: 'sort', on: { click: () => { state.sort = { key: k, dir: k === key ? -dir : 1 }; drawArchives(table, filter, onlyVerified); table.querySelector(`th:nth-child(${columns.findIndex((c) => c[0] === k) + 1}) button`).focus(); } } },
      label, el('span', { 'aria-hidden': 'true', text: k === key ? (dir > 0 ? ' ▲' : ' ▼') : '' })))),
    el('th', { scope: 'col', text: 'Actions' }));
  const body = rows.map((b) => el('tr', { 'data-name': b.filename },
    el('td', { 'data-label': 'Created', text: when(b.created_at) }),
    el('td', { 'data-label': 'Name' }, el('code', { text: b.filename }), b.encrypted ? el('span', { class: 'badge', text: 'encrypted' }) : null,
      b.suspect ? el('span', { class: 'badge warning', title: b.suspect, text: 'suspect' }) : null,
      b.pinned ? el('span', { class: 'badge', title: b.note || 'pinned: never pruned', text: 'pinned' }) : null,
      b.note ? el('div', { class: 'note', text: b.note }) : null),
    el('td', { 'data-label': 'Size', text: bytes(b.size) }),
    el('td', { 'data-label': 'Keys', text: num(b.keys_count) }),
    el('td', { 'data-label': 'Took', text: seconds(b.duration_seconds) }),
    el('td', { 'data-label': 'Verified', text: b.verified ? 'yes' : 'no' }),
    el('td', { 'data-label': 'Drilled', class: b.drill_result === 'failed' ? 'failed' : null, text: drillText(b) }),
    el('td', { 'data-label': 'Actions', class: 'actions' },
      el('a', { href: '#browse/' + encodeURIComponent(b.filename), class: 'button', 'aria-label': 'Browse ' + b.filename, text: 'Browse' }),
      el('button', { type: 'button', 'aria-label': 'Download ' + b.filename, text: 'Download', on: { click: (e) => download(b.filename, e.target) } }),
      el('button', { type: 'button', 'aria-label': 'Verify ' + b.filename, text: 'Verify', on: { click: (e) => verify(b.filename, e.target) } }),
      el('button', { type: 'button', 'aria-label': 'Restore ' + b.filename, text: 'Restore', on: { click: () => openRestore(b.filename, {}) } }),
      el('button', { type: 'button', class: 'danger', 'aria-label': 'Delete ' + b.filename, text: 'Delete', on: { click: () => deleteArchive(b.filename) } }))));
  table.replaceChildren(el('caption', { text: rows.length + ' of ' + state.archives.length + ' archives' }), el('thead', {}, head),
    el('tbody', {}, body.length ? body : el('tr', {}, el('td', { colspan: columns.length + 1, text: 'No archive.' }))));
}

async function download(name, button) {
  button.disabled = true;
  try {
    const blob = await call('GET', '/api/backup/download/' + encodeURIComponent(name), { blob: true });
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (e) {
    notice('Download failed: ' + e.message, 'failed');
  } finally {
    button.disabled = false;
  }
}

async function verify(name, button) {
  button.disabled = true;
  try {
    await start('/api/backup/verify/' + encodeURIComponent(name), {});
    if (location.hash.startsWith('#archives')) route();
  } catch (e) {
    notice('Verify not started: ' + e.message, 'failed');
  } finally {
    button.disabled = false;
  }
}

function deleteArchive(name) {
  confirmWithCode('Delete this archive?', name + ' and its manifest will be deleted. This cannot be undone.', 'Delete', async (code) => {
    await call('DELETE', '/api/backup/delete/' + encodeURIComponent(name), { code });
    notice(name + ' deleted.', 'succeeded');
    if (location.hash.startsWith('#browse')) location.hash = '#archives';
    else route();
  });
}

// ---- archive browser ----

const pageSizes = [50, 100, 500];

async function browseView(v, name) {
  const b = state.browse && state.browse.name === name && state.browse.target === state.target ? state.browse
    : { name, target: state.target, match: '', type: '', db: '', limit: 50, cursors: ['0'], selected: new Map() };
  state.browse = b;
  const match = el('input', { id: 'browse-match', type: 'search', value: b.match, placeholder: 'user:42:*', spellcheck: 'false' });
  const type = el('select', { id: 'browse-type' }, ['', 'string', 'hash', 'list', 'set', 'zset', 'stream'].map((t) => el('option', { value: t, text: t || 'any', selected: t === b.type })));
  const db = el('input', { id: 'browse-db', type: 'number', min: 0, value: b.db, placeholder: 'all' });
  const limit = el('select', { id: 'browse-limit' }, pageSizes.map((n) => el('option', { value: n, text: n, selected: n === b.limit })));
  const table = el('table', { class: 'keys' });
  const pager = el('div', { class: 'pager' });
  const detail = el('section', { class: 'detail', 'aria-live': 'polite', 'aria-label': 'Key' });
  const selInfo = el('span', { id: 'browse-selected' });
  const form = el('form', { class: 'toolbar', role: 'search', on: { submit: (e) => { e.preventDefault(); b.match = match.value; b.type = type.value; b.db = db.value; b.limit = Number(limit.value); b.cursors = ['0']; load(); } } },
    el('label', { for: 'browse-match', text: 'Pattern' }), match,
    el('label', { for: 'browse-type', text: 'Type' }), type,
    el('label', { for: 'browse-db', text: 'DB' }), db,
    el('label', { for: 'browse-limit', text: 'Per page' }), limit,
    el('button', { type: 'submit', text: 'Search' }));
  const restoreSel = el('button', { type: 'button', id: 'restore-selected', text: 'Restore selected keys', on: { click: () => openRestore(name, { match: [...b.selected.values()].map((k) => globEscape(k.escaped)), db: b.selected.size && new Set([...b.selected.values()].map((k) => k.db)).size === 1 ? [...b.selected.values()][0].db : '' }) } });
  const restoreAll = el('button', { type: 'button', text: 'Restore keys matching the search', on: { click: () => openRestore(name, { match: b.match ? [b.match] : [], type: b.type, db: b.db }) } });
  const updateSel = () => { selInfo.textContent = b.selected.size + ' selected'; restoreSel.disabled = b.selected.size === 0; };
  v.replaceChildren(
    el('p', {}, el('a', { href: '#archives', text: '← Archives' })),
    el('h1', {}, 'Inside ', el('code', { text: name })),
    form, el('div', { class: 'toolbar' }, selInfo, restoreSel, restoreAll),
    el('div', { class: 'split' }, el('div', {}, table, pager), detail));
  updateSel();
  v.hidden = false;

  async function load() {
    const q = new URLSearchParams({ cursor: b.cursors[b.cursors.length - 1], limit: String(b.limit) });
    if (b.match) q.append('match', b.match);
    if (b.type) q.append('type', b.type);
    if (b.db !== '') q.set('db', b.db);
    table.replaceChildren(el('caption', { text: 'Reading the archive…' }));
    let res;
    try {
      res = await call('GET', '/api/backup/keys/' + encodeURIComponent(name), { query: q });
    } catch (e) {
      table.replaceChildren(el('caption', { class: 'error', role: 'alert', text: e.message }));
      return;
    }
    const page = b.cursors.length;
    const rows = res.keys.map((k) => {
      const id = k.db + ':' + k.escaped;
      const box = el('input', { type: 'checkbox', 'aria-label': 'Select ' + k.escaped, checked: b.selected.has(id), on: { change: (e) => { if (e.target.checked) b.selected.set(id, k); else b.selected.delete(id); updateSel(); } } });
      return el('tr', {},
        el('td', { 'data-label': 'Select' }, box),
        el('td', { 'data-label': 'DB', text: k.db }),
        el('td', { 'data-label': 'Key' }, el('button', { type: 'button', class: 'link', text: k.escaped, on: { click: () => showKey(name, k, detail) } })),
        el('td', { 'data-label': 'Type', text: k.type }),
        el('td', { 'data-label': 'TTL', text: k.ttl === null || k.ttl === undefined ? 'none' : seconds(k.ttl) }),
        el('td', { 'data-label': 'Elements', text: num(k.elements) }),
        el('td', { 'data-label': 'Size', text: bytes(k.size) }));
    });
    table.replaceChildren(
      el('caption', { text: 'Page ' + page + ': ' + res.count + ' keys (' + num(res.scanned) + ' read)' + (res.cursor === '0' ? ', end of the archive' : '') }),
      el('thead', {}, el('tr', {}, ['Select', 'DB', 'Key', 'Type', 'TTL', 'Elements', 'Size'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 7, text: 'No key matches.' }))));
    pager.replaceChildren(
      el('button', { type: 'button', text: 'Previous page', disabled: page === 1, on: { click: () => { b.cursors.pop(); load(); } } }),
      el('button', { type: 'button', text: 'Next page', disabled: res.cursor === '0', on: { click: () => { b.cursors.push(res.cursor); load(); } } }));
  }
  await load();
}

// globEscape makes a key's escaped form a pattern that matches only it.
function globEscape(s) { return s.replace(/[*?[\]]/g, (c) => '\\' + c); }

// text shows an archive byte string: text, or base64 for other bytes.
function bytesText(s) {
  if (typeof s !== 'string') return JSON.stringify(s);
  return s.startsWith('\u0000b64:') ? '(bytes, base64) ' + s.slice(5) : s;
}

async function showKey(name, k, box) {
  box.replaceChildren(el('p', { text: 'Reading ' + k.escaped + '…' }));
  let res;
  try {
    res = await call('GET', '/api/backup/show/' + encodeURIComponent(name), { query: { key: k.escaped, db: String(k.db), limit: '100' } });
  } catch (e) {
    box.replaceChildren(el('p', { class: 'error', role: 'alert', text: e.message }));
    return;
  }
  const facts = [['Type', res.type], ['DB', String(res.db)], ['TTL', res.ttl === null || res.ttl === undefined ? 'none' : seconds(res.ttl)],
    ['Expires at', res.expire_at ? new Date(res.expire_at).toISOString() : '–'], ['Elements', num(res.elements)], ['Size in the archive', bytes(res.size)]];
  let value;
  if (!Array.isArray(res.value)) {
    value = el('pre', { class: 'value', text: bytesText(res.value) });
  } else {
    const head = { hash: ['Field', 'Value', 'Field expires'], zset: ['Member', 'Score'], stream: ['ID', 'Fields'] }[res.type] || ['Item'];
    const cells = (row) => {
      if (!Array.isArray(row)) return [bytesText(row)];
      if (res.type === 'stream') return [row[0], row[1].map(bytesText).join(' ')];
      return row.map((c, i) => (res.type === 'hash' && i === 2 ? new Date(c).toISOString() : bytesText(c)));
    };
    value = el('table', { class: 'value' }, el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, res.value.map((row) => el('tr', {}, cells(row).map((c) => el('td', { text: c }))))));
  }
  const parts = [el('h2', {}, el('code', { text: res.escaped })), el('dl', {}, facts.map(([a, b]) => [el('dt', { text: a }), el('dd', { text: b })])),
    el('h3', { text: 'Value' + (res.truncated ? ' (the first ' + (Array.isArray(res.value) ? res.value.length : '64 KiB') + ')' : '') }), value];
  if (res.stream) {
    const st = res.stream;
    parts.push(el('h3', { text: 'Stream state' }), el('dl', {}, [['Last ID', st.last_id], ['Entries added', num(st.entries_added)]].map(([a, b]) => [el('dt', { text: a }), el('dd', { text: b })])));
    for (const g of st.groups || []) {
      parts.push(el('h4', {}, 'Group ', el('code', { text: g.name })),
        el('p', { text: 'Last delivered ' + g.last_delivered_id + ', ' + num(g.pending_count) + ' pending, consumers: ' + ((g.consumers || []).map((c) => c.name).join(', ') || 'none') }));
    }
  }
  parts.push(el('button', { type: 'button', text: 'Restore this key', on: { click: () => openRestore(name, { match: [globEscape(res.escaped)], db: res.db }) } }));
  box.replaceChildren(...parts);
}

// ---- restore dialog ----

function restoreBody() {
  const lines = (id) => $(id).value.split('\n').map((s) => s.trim()).filter(Boolean);
  const body = { filename: state.restoreName, overwrite: document.querySelector('input[name="restore-mode"]:checked').value === 'overwrite' };
  const m = lines('restore-match'), x = lines('restore-exclude');
  if (m.length) body.match = m;
  if (x.length) body.exclude = x;
  if ($('restore-type').value) body.types = [$('restore-type').value];
  if ($('restore-db').value !== '') body.db = Number($('restore-db').value);
  if ($('restore-to').value !== '') body.db_map = { [String($('restore-db').value === '' ? 0 : Number($('restore-db').value))]: Number($('restore-to').value) };
  if ($('restore-ttl').value) body.ttl = $('restore-ttl').value;
  return body;
}

function openRestore(name, pre) {
  state.restoreName = name;
  $('restore-name').textContent = name;
  $('restore-match').value = (pre.match || []).join('\n');
  $('restore-exclude').value = '';
  $('restore-type').value = pre.type || '';
  $('restore-db').value = pre.db === undefined ? '' : pre.db;
  $('restore-to').value = '';
  document.querySelector('input[name="restore-mode"][value="skip"]').checked = true;
  $('restore-ttl').value = '';
  $('restore-code').value = '';
  $('restore-code-row').hidden = true;
  $('restore-progress').replaceChildren();
  $('restore-report').replaceChildren();
  $('restore-error').textContent = '';
  $('restore-real').disabled = true;
  state.dryRunOf = null;
  $('restore').showModal();
  $('restore-dry').focus();
}

function report(title, r) {
  const rows = [['Would restore / restored', r.restored_count], ['Skipped (they exist)', r.skipped_count], ['Errors', r.error_count],
    ['Left out by the selection', r.filtered_count], ['Expired', r.expired_count], ['Keys in the archive', r.total_keys]];
  return el('section', { class: 'report', 'aria-label': title }, el('h3', { text: title }),
    el('dl', {}, rows.map(([a, b]) => [el('dt', { text: a }), el('dd', { text: num(b) })])),
    (r.errors || []).length ? el('ul', { class: 'warnings' }, r.errors.map((e) => el('li', { text: e }))) : null,
    (r.warnings || []).length ? el('ul', { class: 'warnings' }, r.warnings.map((e) => el('li', { text: e }))) : null);
}

async function runRestore(dry) {
  const body = restoreBody();
  const key = JSON.stringify(body);
  $('restore-error').textContent = '';
  let code;
  if (!dry && body.overwrite) {
    code = $('restore-code').value.trim();
    if (!isCode(code)) { $('restore-error').textContent = 'Overwriting needs a fresh six-digit code.'; $('restore-code').focus(); return; }
  }
  body.dry_run = dry;
  for (const b of [$('restore-dry'), $('restore-real')]) b.disabled = true;
  try {
    // A dry run needs no code even when it would overwrite: it writes nothing.
    const job = await start('/api/backup/restore', body, { code: dry ? undefined : code, box: $('restore-progress') });
    if (job.status !== 'succeeded' && !job.result) throw new Error(job.error || 'the restore failed');
    $('restore-report').replaceChildren(report(dry ? 'Dry run: nothing was written' : 'Restored', job.result));
    if (job.status !== 'succeeded') $('restore-error').textContent = job.error || 'some keys failed';
    state.dryRunOf = dry && job.status === 'succeeded' ? key : null;
    $('restore-code').value = '';
  } catch (e) {
    $('restore-error').textContent = e.message;
  } finally {
    $('restore-dry').disabled = false;
    $('restore-real').disabled = state.dryRunOf !== key || !dry;
  }
}

// ---- operations ----

async function operationsView(v) {
  const table = el('table', { class: 'history' });
  const draw = async () => {
    const res = await call('GET', '/api/jobs', { noTarget: true, query: { limit: '100' } });
    table.replaceChildren(el('caption', { text: 'Recent operations (the agent remembers an hour of them)' }),
      el('thead', {}, el('tr', {}, ['Started', 'Operation', 'Target', 'Archive', 'By', 'Took', 'Outcome'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, res.jobs.length ? res.jobs.map((j) => el('tr', { class: j.status },
        el('td', { 'data-label': 'Started', text: when(j.started_at) }),
        el('td', { 'data-label': 'Operation', text: j.kind + (j.result && j.result.dry_run ? ' (dry run)' : '') }),
        el('td', { 'data-label': 'Target', text: j.target }),
        el('td', { 'data-label': 'Archive' }, j.filename ? el('code', { text: j.filename }) : '–'),
        el('td', { 'data-label': 'By', text: j.by || '–' }),
        el('td', { 'data-label': 'Took', text: seconds(j.duration_seconds) }),
        el('td', { 'data-label': 'Outcome' }, j.status === 'running' ? progressCell(j) : j.status + (j.error ? ': ' + j.error : ''))))
        : el('tr', {}, el('td', { colspan: 7, text: 'Nothing yet.' }))));
  };
  v.replaceChildren(el('h1', { text: 'Operations' }),
    el('div', { class: 'toolbar' }, el('button', { type: 'button', text: 'Back up ' + state.target + ' now', on: { click: async (e) => { await backupNow(state.target, e.target); draw(); } } })),
    table);
  v.hidden = false;
  await draw();
  every(2000, () => draw().catch(() => {}));
}

function progressCell(j) {
  const box = el('div', { class: 'progress-box' });
  progressBox(box, j);
  return box;
}

// ---- wiring ---------------------------------------------------------------

async function enter() {
  $('login').hidden = true;
  $('top').hidden = false;
  await loadTargets();
  route();
  $('main').focus();
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const code = $('login-code').value.trim();
    $('login-error').textContent = '';
    if (!isCode(code)) { $('login-error').textContent = 'A code is six digits.'; return; }
    try {
      await login(code);
      await enter();
    } catch (err) {
      $('login-error').textContent = err.status === 401 ? 'That code was not accepted (wrong, or already used: wait for the next one).' : err.message;
    }
  });
  $('reauth-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const code = $('reauth-code').value.trim();
    if (!isCode(code)) { $('reauth-error').textContent = 'A code is six digits.'; return; }
    try {
      await login(code);
      state.reauthDone.resolve();
    } catch (err) {
      $('reauth-error').textContent = err.status === 401 ? 'That code was not accepted (wrong, or already used: wait for the next one).' : err.message;
    }
  });
  $('reauth').addEventListener('cancel', (e) => e.preventDefault()); // Esc does not drop the work
  $('reauth-quit').addEventListener('click', logout);
  $('logout').addEventListener('click', logout);
  $('target').addEventListener('change', (e) => { state.target = e.target.value; state.browse = null; if (location.hash.startsWith('#browse')) location.hash = '#archives'; else route(); });
  window.addEventListener('hashchange', route);

  $('confirm-cancel').addEventListener('click', () => $('confirm').close());
  $('confirm-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const code = $('confirm-code').value.trim();
    if (!isCode(code)) { $('confirm-error').textContent = 'A code is six digits.'; return; }
    $('confirm-ok').disabled = true;
    try {
      await state.confirmAct(code);
      $('confirm').close();
    } catch (err) {
      $('confirm-error').textContent = err.message;
      $('confirm-code').value = '';
    } finally {
      $('confirm-ok').disabled = false;
    }
  });

  $('restore-close').addEventListener('click', () => { $('restore').close(); if (location.hash.startsWith('#archives')) route(); });
  $('restore-dry').addEventListener('click', () => runRestore(true));
  $('restore-real').addEventListener('click', () => runRestore(false));
  $('restore-form').addEventListener('submit', (e) => e.preventDefault());
  $('restore-form').addEventListener('input', (e) => {
    if (e.target.name === 'restore-mode') $('restore-code-row').hidden = document.querySelector('input[name="restore-mode"]:checked').value !== 'overwrite';
    if (e.target.id !== 'restore-code' && state.dryRunOf !== JSON.stringify(restoreBody())) $('restore-real').disabled = true;
  });
  $('login-code').focus();
});
