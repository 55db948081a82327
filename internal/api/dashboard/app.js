// The khub dashboard. It reads everything through the hub's public API with
// the admin token as a bearer header. It builds the page with DOM calls and
// text nodes only, never innerHTML, so article text, names and webhook
// errors are always shown as text.
'use strict';

// The admin token is kept in sessionStorage, not in a cookie. The API
// authenticates bearer headers only. A cookie would be sent by the browser
// with every request to the hub, including requests forged by other sites,
// so it would need CSRF defences. An HttpOnly cookie would also need a
// session endpoint that the hub does not have, and a Secure cookie is not
// sent over the plain HTTP that a hub on loopback serves. Session storage is
// per tab, is cleared when the tab closes, and is sent nowhere unless this
// script sends it. A script injected into the page could read it, so the
// page's Content-Security-Policy forbids inline and foreign scripts.
const TOKEN_KEY = 'khub.adminToken';

// REFRESH_MS is how often the views reload while the tab is visible.
const REFRESH_MS = 30000;
// SPARK_TTL_MS is how long a row's 24-hour staleness series is reused. Its
// samples are 15 minutes apart, so reloading it more often shows little new.
const SPARK_TTL_MS = 5 * 60000;
// CHART_TTL_MS is how long the selected integration's series is reused.
const CHART_TTL_MS = 60000;
// MAX_CURSOR is the largest after value the change feed accepts (2^62).
// The feed rejects an after beyond its head with a 400 that names the head.
const MAX_CURSOR = '4611686018427387904';
const CHANGES_PAGE = 50;
// RANGES maps the chart's range to the sample step sent to the staleness
// endpoint, so that each chart has from 60 to 100 points.
const RANGES = {
  '1h': { seconds: 3600, step: '1m', label: 'the last hour' },
  '24h': { seconds: 86400, step: '15m', label: 'the last 24 hours' },
  '168h': { seconds: 604800, step: '2h', label: 'the last 7 days' },
};

const state = {
  token: '',
  integrations: [],
  byId: new Map(),
  sortKey: 'staleness',
  sortDir: -1,
  filter: '',
  stateFilter: '',
  page: 0,
  pageSize: 25,
  selected: '',
  series: new Map(), // "id|range" → {at, result}
  changesAfter: null, // null follows the newest page
  head: 0,
  timer: 0,
};

const $ = (id) => document.getElementById(id);

// el builds an HTML element. Attributes whose value is null, undefined or
// false are left out, and children that are strings become text nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

// svg builds an SVG element.
function svg(tag, attrs, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(node, attrs);
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
}

// ---- formatting ------------------------------------------------------------

// parseDuration reads a Go duration such as "1h30m0s" into seconds.
function parseDuration(text) {
  if (!text) return 0;
  const units = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  let total = 0;
  for (const m of String(text).matchAll(/([0-9.]+)(ns|us|µs|ms|s|m|h)/g)) total += parseFloat(m[1]) * units[m[2]];
  return total;
}

// fmtDuration writes seconds as at most two units, such as "2h 5m".
function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '—';
  let s = Math.round(seconds);
  if (s < 1) return seconds > 0 ? `${Math.round(seconds * 1000)}ms` : '0s';
  const parts = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]]) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
    if (parts.length === 2) break;
    if (parts.length === 1 && s === 0) break;
  }
  return parts.join(' ');
}

function pad2(n) { return String(n).padStart(2, '0'); }

// fmtTime writes a timestamp in local time, to the second.
function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

function timeEl(iso) {
  return iso ? el('time', { datetime: iso }, fmtTime(iso)) : '—';
}

function setStatus(text) { $('status').textContent = text; }

// ---- API -------------------------------------------------------------------

class APIError extends Error {
  constructor(status, body) {
    const detail = (body && body.error) || {};
    super(detail.message || `the hub answered ${status}`);
    this.status = status;
    this.code = detail.code || '';
  }
}

// api calls the hub with the admin token and returns the decoded JSON. A
// 401 means the token is no longer valid, so the dashboard signs out.
async function api(path, options = {}) {
  const resp = await fetch(path, {
    method: options.method || 'GET',
    headers: { Authorization: `Bearer ${options.token || state.token}`, Accept: 'application/json' },
    cache: 'no-store',
  });
  let body = null;
  try { body = await resp.json(); } catch { body = null; }
  if (resp.status === 401 && !options.token) {
    signOut('The hub no longer accepts the token: sign in again.');
  }
  if (!resp.ok) throw new APIError(resp.status, body);
  return body;
}

// ---- sign-in -----------------------------------------------------------------

async function signIn(token) {
  const error = $('login-error');
  error.textContent = '';
  token = token.trim();
  if (!token) {
    error.textContent = 'Enter the admin token.';
    return;
  }

  // Listing the integrations checks the token and loads the first view
  // at once. It can take seconds on a hub with many integrations, because
  // the hub measures each one's staleness.
  const button = $('login-form').querySelector('button');
  button.disabled = true;
  button.textContent = 'Signing in…';
  let list;
  try {
    list = await api('/v1/integrations', { token });
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    if (e.status === 401) error.textContent = 'The hub does not accept this token: check it and try again.';
    else if (e.status === 403) error.textContent = 'This is an integration\'s pull token: the dashboard needs the admin token.';
    else error.textContent = `Sign-in failed: ${e.message}`;
    $('login').hidden = false;
    $('token').focus();
    return;
  } finally {
    button.disabled = false;
    button.textContent = 'Sign in';
  }

  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token').value = '';
  $('login').hidden = true;
  $('app').hidden = false;
  $('nav').hidden = false;
  $('signout').hidden = false;
  setIntegrations(list.integrations || []);
  renderAll();
  loadChanges();
  onHash();
  schedule();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = '';
  state.integrations = [];
  state.byId.clear();
  state.series.clear();
  state.selected = '';
  clearTimeout(state.timer);
  $('app').hidden = true;
  $('nav').hidden = true;
  $('signout').hidden = true;
  $('login').hidden = false;
  $('int-rows').replaceChildren();
  $('login-error').textContent = message || '';
  $('token').focus();
}

// ---- integrations table ------------------------------------------------------

function setIntegrations(list) {
  state.integrations = list;
  state.byId = new Map(list.map((i) => [i.id, i]));
  $('int-total').textContent = String(list.length);
}

async function loadIntegrations() {
  const list = await api('/v1/integrations');
  setIntegrations(list.integrations || []);
}

function stateOf(i) { return i.state || ''; }

// STATE_ORDER sorts the states that need an operator first.
const STATE_ORDER = { disabled: 0, paused: 1, active: 2, '': 3 };

const SORTS = {
  name: (a, b) => a.name.localeCompare(b.name),
  pattern: (a, b) => a.pattern.localeCompare(b.pattern),
  window: (a, b) => parseDuration(a.freshness.window) - parseDuration(b.freshness.window),
  staleness: (a, b) => a.freshness.staleness_seconds - b.freshness.staleness_seconds,
  within: (a, b) => Number(a.freshness.within_window) - Number(b.freshness.within_window),
  state: (a, b) => STATE_ORDER[stateOf(b)] - STATE_ORDER[stateOf(a)],
};

function visibleIntegrations() {
  const f = state.filter.toLowerCase();
  const want = state.stateFilter;
  const rows = state.integrations.filter((i) => {
    if (want === 'outside' && i.freshness.within_window) return false;
    if (want === 'pull' && stateOf(i) !== '') return false;
    if (want && want !== 'outside' && want !== 'pull' && stateOf(i) !== want) return false;
    if (!f) return true;
    return [i.name, i.id, i.pattern, stateOf(i), i.last_error || '', i.state_reason || '']
      .some((v) => v.toLowerCase().includes(f));
  });
  const cmp = SORTS[state.sortKey];
  rows.sort((a, b) => state.sortDir * cmp(a, b) || a.name.localeCompare(b.name));
  return rows;
}

function renderTable() {
  const rows = visibleIntegrations();
  const pages = Math.max(1, Math.ceil(rows.length / state.pageSize));
  state.page = Math.min(state.page, pages - 1);
  const start = state.page * state.pageSize;
  const shown = rows.slice(start, start + state.pageSize);

  const focusedId = document.activeElement && document.activeElement.closest('#int-rows tr')
    ? document.activeElement.closest('tr').dataset.id : '';
  const body = $('int-rows');
  body.replaceChildren(...shown.map(row));
  if (focusedId) {
    const again = body.querySelector(`tr[data-id="${CSS.escape(focusedId)}"] a`);
    if (again) again.focus();
  }

  const total = state.integrations.length;
  const range = rows.length ? `${start + 1}–${start + shown.length}` : '0';
  const of = rows.length === total ? `${total}` : `${rows.length} matching, ${total} in total`;
  $('page-info').textContent = `Page ${state.page + 1} of ${pages}: rows ${range} of ${of}`;
  $('int-caption').textContent = `Integrations, sorted by ${sortLabel()}; rows ${range} of ${of}`;
  $('prev').disabled = state.page === 0;
  $('next').disabled = state.page >= pages - 1;
  for (const th of document.querySelectorAll('#int-table th[data-sort]')) {
    const key = th.dataset.sort;
    let sort = 'none';
    if (key === state.sortKey) sort = state.sortDir < 0 ? 'descending' : 'ascending';
    th.setAttribute('aria-sort', sort);
  }
  loadSparks(shown.map((i) => i.id));
}

function sortLabel() {
  const names = { name: 'name', pattern: 'pattern', window: 'window', staleness: 'staleness', within: 'within window', state: 'state' };
  return `${names[state.sortKey]}, ${state.sortDir < 0 ? 'descending' : 'ascending'}`;
}

function integrationLink(i, view) {
  const href = `#i=${encodeURIComponent(i.id)}${view ? `&view=${view}` : ''}`;
  return href;
}

function row(i) {
  const f = i.freshness;
  const st = stateOf(i);
  const alerting = i.slo && i.slo.alerting;
  return el('tr', { 'data-id': i.id, class: i.id === state.selected ? 'selected' : null, 'aria-current': i.id === state.selected ? 'true' : null },
    el('th', { scope: 'row' }, el('a', { href: integrationLink(i) }, i.name), el('span', { class: 'id' }, i.id)),
    el('td', null, i.pattern),
    el('td', { class: 'num' }, fmtDuration(parseDuration(f.window))),
    el('td', { class: 'num', 'data-seconds': f.staleness_seconds }, fmtDuration(f.staleness_seconds)),
    el('td', null, f.within_window ? el('span', { class: 'ok' }, '✓ yes') : el('span', { class: 'bad' }, '✗ no'),
      alerting ? el('span', { class: 'badge bad' }, 'alerting') : null),
    el('td', null, st ? el('span', { class: `state ${st}` }, st) : el('span', { class: 'muted', title: 'pull integrations have no delivery state' }, '—')),
    el('td', { class: 'err' }, i.last_error ? el('span', { title: i.last_error }, clip(i.last_error, 80)) : ''),
    el('td', { class: 'spark-cell' }, el('span', { class: 'muted' }, '…')),
    el('td', null, i.pattern === 'pull' ? el('span', { class: 'muted' }, '—')
      : el('a', { href: integrationLink(i, 'deliveries') }, 'Deliveries', el('span', { class: 'visually-hidden' }, ` of ${i.name}`))),
  );
}

function plural(n, word) { return `${n} ${word}${n === 1 ? '' : 's'}`; }

function clip(text, n) { return text.length > n ? `${text.slice(0, n - 1)}…` : text; }

// ---- staleness series and charts -----------------------------------------------

// loadSeries fetches an integration's staleness samples over a range from
// GET /v1/integrations/{id}/staleness. When the hub does not record samples
// (an older hub returns 404), the result has no samples and the chart shows
// "no samples yet".
async function loadSeries(id, rangeKey, ttl) {
  const key = `${id}|${rangeKey}`;
  const cached = state.series.get(key);
  if (cached && Date.now() - cached.at < ttl) return cached.result;
  const r = RANGES[rangeKey];
  const until = new Date();
  const since = new Date(until.getTime() - r.seconds * 1000);
  let result = { samples: [], window_seconds: 0, since, until, error: '' };
  try {
    const body = await api(`/v1/integrations/${encodeURIComponent(id)}/staleness?since=${encodeURIComponent(since.toISOString())}&step=${r.step}`);
    result = { samples: (body && body.samples) || [], window_seconds: (body && body.window_seconds) || 0, since, until, error: '' };
  } catch (e) {
    if (e.status !== 404 && e.status !== 405 && e.status !== 501) result.error = e.message;
  }
  state.series.set(key, { at: Date.now(), result });
  return result;
}

// Sparklines load four at a time, and only for rows still on the page, so
// paging quickly through 500 integrations does not queue 500 requests.
const sparkQueue = [];
let sparkActive = 0;

function loadSparks(ids) {
  sparkQueue.length = 0;
  sparkQueue.push(...ids);
  for (let n = sparkActive; n < 4; n++) nextSpark();
}

async function nextSpark() {
  const id = sparkQueue.shift();
  if (id === undefined) return;
  sparkActive++;
  try {
    const cell = sparkCell(id);
    if (cell) {
      const series = await loadSeries(id, '24h', SPARK_TTL_MS);
      const i = state.byId.get(id);
      const target = sparkCell(id);
      if (target && i) target.replaceChildren(sparkline(i, series));
    }
  } finally {
    sparkActive--;
    nextSpark();
  }
}

function sparkCell(id) {
  return document.querySelector(`#int-rows tr[data-id="${CSS.escape(id)}"] .spark-cell`);
}

function windowOf(i, series) {
  return series.window_seconds || parseDuration(i.freshness.window);
}

function sparkline(i, series) {
  if (series.error) return el('span', { class: 'muted', title: series.error }, 'samples unavailable');
  if (!series.samples.length) return el('span', { class: 'muted' }, 'no samples yet');
  return chart(i, series, { width: 140, height: 30, spark: true });
}

// chart draws staleness samples as an SVG line over time, with the
// freshness window as a dashed line. Samples outside the window are
// marked, and the SVG's label sums the series up for screen readers.
function chart(i, series, opts) {
  const { width: W, height: H, spark } = opts;
  const pad = spark ? { l: 2, r: 2, t: 3, b: 3 } : { l: 64, r: 16, t: 16, b: 32 };
  const windowSec = windowOf(i, series);
  const samples = series.samples
    .map((s) => ({ t: new Date(s.at).getTime(), v: Number(s.staleness_seconds) || 0, within: s.within_window }))
    .filter((s) => !Number.isNaN(s.t))
    .sort((a, b) => a.t - b.t);
  const t0 = series.since.getTime();
  const t1 = series.until.getTime();
  const peak = samples.reduce((m, s) => Math.max(m, s.v), 0);
  const top = Math.max(windowSec * 1.25, peak * 1.05, 1);
  const x = (t) => pad.l + ((t - t0) / Math.max(t1 - t0, 1)) * (W - pad.l - pad.r);
  const y = (v) => H - pad.b - (v / top) * (H - pad.t - pad.b);
  const inside = samples.filter((s) => s.within ?? s.v <= windowSec).length;

  const summary = samples.length
    ? `Staleness of ${i.name} over ${spark ? 'the last 24 hours' : RANGES[opts.range].label}: ${plural(samples.length, 'sample')}, highest ${fmtDuration(peak)}, ${inside} within the ${fmtDuration(windowSec)} window.`
    : `Staleness of ${i.name}: no samples yet. The window is ${fmtDuration(windowSec)}.`;
  const root = svg('svg', {
    class: spark ? 'chart spark' : 'chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H,
    role: 'img', 'aria-label': summary, 'data-samples': samples.length,
  }, svg('title', null, summary));

  if (!spark) {
    root.append(
      svg('line', { class: 'axis', x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b }),
      svg('line', { class: 'axis', x1: pad.l, y1: pad.t, x2: pad.l, y2: H - pad.b }),
      svg('text', { class: 'tick', x: pad.l - 6, y: H - pad.b, 'text-anchor': 'end', 'dominant-baseline': 'middle' }, '0s'),
      svg('text', { class: 'tick', x: pad.l - 6, y: pad.t, 'text-anchor': 'end', 'dominant-baseline': 'middle' }, fmtDuration(top)),
      svg('text', { class: 'tick', x: pad.l, y: H - 8, 'text-anchor': 'start' }, fmtTime(series.since.toISOString())),
      svg('text', { class: 'tick', x: W - pad.r, y: H - 8, 'text-anchor': 'end' }, `now, ${fmtTime(series.until.toISOString())}`),
    );
  }
  if (windowSec > 0) {
    root.append(svg('line', { class: 'window', x1: pad.l, y1: y(windowSec), x2: W - pad.r, y2: y(windowSec) }));
    if (!spark) {
      root.append(svg('text', { class: 'window-label', x: W - pad.r - 4, y: y(windowSec) - 5, 'text-anchor': 'end' }, `window ${fmtDuration(windowSec)}`));
    }
  }
  if (!samples.length) {
    root.append(svg('text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no samples yet'));
    return root;
  }
  const points = samples.map((s) => `${x(s.t).toFixed(1)},${y(s.v).toFixed(1)}`).join(' ');
  root.append(svg('polyline', { class: 'line', points }));
  // A line needs two points, so the newest sample also gets a dot and a
  // single sample stays visible.
  const newest = samples[samples.length - 1];
  root.append(svg('circle', { class: 'newest', cx: x(newest.t).toFixed(1), cy: y(newest.v).toFixed(1), r: spark ? 2 : 3.5 }));
  if (!spark) {
    for (const s of samples) {
      if (s.within ?? s.v <= windowSec) continue;
      root.append(svg('circle', { class: 'outside', cx: x(s.t).toFixed(1), cy: y(s.v).toFixed(1), r: 3 },
        svg('title', null, `${fmtTime(new Date(s.t).toISOString())}: ${fmtDuration(s.v)}, outside the window`)));
    }
  }
  return root;
}

// ---- selected integration ------------------------------------------------------

function onHash() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const id = params.get('i');
  if (!id || !state.token) return;
  select(id, params.get('view'));
}

async function select(id, view) {
  state.selected = id;
  let i = state.byId.get(id);
  if (!i) {
    try {
      i = await api(`/v1/integrations/${encodeURIComponent(id)}`);
    } catch (e) {
      setStatus(`Integration ${id}: ${e.message}`);
      return;
    }
  }
  $('detail').hidden = false;
  for (const tr of document.querySelectorAll('#int-rows tr')) {
    const on = tr.dataset.id === id;
    tr.classList.toggle('selected', on);
    if (on) tr.setAttribute('aria-current', 'true'); else tr.removeAttribute('aria-current');
  }
  renderDetail(i);
  const heading = view === 'deliveries' ? $('deliv-h') : $('detail-h');
  heading.focus();
  await Promise.all([renderChart(i), loadDeliveries(i)]);
}

function fact(name, value) {
  return [el('dt', null, name), el('dd', null, value)];
}

function renderDetail(i) {
  const f = i.freshness;
  $('detail-h').textContent = `Integration ${i.name}`;
  $('detail-facts').replaceChildren(
    ...fact('Id', el('code', null, i.id)),
    ...fact('Pattern', i.pattern),
    ...fact('Why this pattern', (i.reasons || []).join(' ') || '—'),
    ...fact('Freshness window', fmtDuration(parseDuration(f.window))),
    ...fact('Staleness now', `${fmtDuration(f.staleness_seconds)} (${f.within_window ? 'within' : 'outside'} the window)`),
    ...fact('State', stateOf(i) ? `${stateOf(i)}${i.state_reason ? `: ${i.state_reason}` : ''}` : 'pull: no webhooks'),
    ...fact('State since', timeEl(i.state_since)),
    ...fact('Last success', timeEl(i.last_success_at)),
    ...fact('Last error', i.last_error ? `${i.last_error} (${fmtTime(i.last_error_at)})` : '—'),
    ...fact('Webhook', i.webhook ? el('code', null, i.webhook.url) : '—'),
  );
  $('detail-actions').replaceChildren(resumeButton(i) || '');
  const slo = i.slo;
  $('slo').replaceChildren(...(slo ? [
    ...fact('Staleness', fmtDuration(slo.staleness_seconds)),
    ...fact('Worst in the last hour', fmtDuration(slo.worst_hour_seconds)),
    ...fact('Worst in the last day', fmtDuration(slo.worst_day_seconds)),
    ...fact('Within the window over the last day', `${(100 * (slo.within_window_ratio_day || 0)).toFixed(1)}%`),
    ...fact('Alerting', slo.alerting ? 'yes' : 'no'),
  ] : fact('Recording', 'no samples yet')));
}

function resumeButton(i) {
  const st = stateOf(i);
  if (st !== 'paused' && st !== 'disabled') return null;
  return el('button', { type: 'button', class: 'resume', 'data-id': i.id, onclick: () => resume(i) },
    'Resume', el('span', { class: 'visually-hidden' }, ` ${i.name}`));
}

async function resume(i) {
  try {
    const updated = await api(`/v1/integrations/${encodeURIComponent(i.id)}/resume`, { method: 'POST' });
    setStatus(`Resumed ${i.name}: it is ${updated.state || 'active'} now.`);
    // Show the response at once, because the full reload that follows can
    // take seconds on a hub with many integrations.
    setIntegrations(state.integrations.map((x) => (x.id === updated.id ? updated : x)));
    renderAll();
    if (state.selected === updated.id) renderDetail(updated);
  } catch (e) {
    setStatus(`Could not resume ${i.name}: ${e.message}`);
  }
  refresh();
}

async function renderChart(i) {
  const rangeKey = $('range').value;
  const box = $('chart');
  box.setAttribute('aria-busy', 'true');
  const series = await loadSeries(i.id, rangeKey, CHART_TTL_MS);
  if (state.selected !== i.id) return;
  box.removeAttribute('aria-busy');
  box.replaceChildren(chart(i, series, { width: 720, height: 220, spark: false, range: rangeKey }),
    series.error ? el('p', { class: 'error' }, `The samples could not be read: ${series.error}`) : '');
}

async function loadDeliveries(i) {
  const body = $('deliv-rows');
  const note = $('deliv-note');
  if (i.pattern === 'pull') {
    body.replaceChildren();
    note.textContent = 'A pull integration receives no webhooks, so it has no deliveries.';
    return;
  }
  const status = $('deliv-status').value;
  let list;
  try {
    list = await api(`/v1/integrations/${encodeURIComponent(i.id)}/deliveries?limit=50${status ? `&status=${status}` : ''}`);
  } catch (e) {
    note.textContent = `The deliveries could not be read: ${e.message}`;
    return;
  }
  if (state.selected !== i.id) return;
  const rows = list.deliveries || [];
  note.textContent = rows.length ? '' : `No ${status || ''} deliveries yet.`.replace('  ', ' ');
  body.replaceChildren(...rows.map((d) => el('tr', { class: d.outcome === 'delivered' ? null : d.outcome },
    el('td', null, timeEl(d.started_at)),
    el('td', null, el('code', null, d.event_id)),
    el('td', null, `${d.article_id} v${d.version}`),
    el('td', null, d.type),
    el('td', { class: 'num' }, String(d.attempt)),
    el('td', { class: 'num' }, d.status_code ? String(d.status_code) : '—'),
    el('td', { class: 'num' }, `${d.latency_ms.toFixed(1)} ms`),
    el('td', null, el('span', { class: `outcome ${d.outcome}` }, d.outcome)),
    el('td', { class: 'err' }, d.error || ''),
  )));
}

// ---- paused and disabled ----------------------------------------------------------

function renderAttention() {
  const stuck = state.integrations.filter((i) => i.state === 'paused' || i.state === 'disabled')
    .sort((a, b) => STATE_ORDER[stateOf(a)] - STATE_ORDER[stateOf(b)] || a.name.localeCompare(b.name));
  $('attention-note').textContent = stuck.length
    ? `${plural(stuck.length, 'integration')} not sending webhooks. A paused one probes its tool and resumes by itself; a disabled one waits for Resume.`
    : 'Every push integration is sending.';
  $('attention-list').replaceChildren(...stuck.map((i) => el('li', { 'data-id': i.id },
    el('a', { href: integrationLink(i) }, i.name), ' ',
    el('span', { class: `state ${i.state}` }, i.state),
    i.state_since ? [' since ', timeEl(i.state_since)] : '',
    i.state_reason ? el('span', { class: 'reason' }, `: ${i.state_reason}`) : '',
    ' ', resumeButton(i))));
}

// ---- recent changes ------------------------------------------------------------------

// headCursor returns the newest cursor of the change log from GET
// /v1/cursor. A hub without that call rejects an after beyond the newest
// change with a 400 that names the head cursor, so that is the fallback.
// When neither works, it returns null and the first page is shown.
async function headCursor() {
  try {
    const c = await api('/v1/cursor');
    if (c && typeof c.head === 'number') return c.head;
  } catch (e) {
    if (e.status === 401) throw e;
  }
  try {
    await api(`/v1/changes?after=${MAX_CURSOR}&limit=1`);
  } catch (e) {
    const m = e.status === 400 && /cursor (\d+)/.exec(e.message);
    if (m) return Number(m[1]);
  }
  return null;
}

async function loadChanges() {
  const note = $('changes-note');
  try {
    const head = await headCursor();
    if (head === null && state.changesAfter === null) state.changesAfter = 0;
    state.head = head ?? state.head;
    const after = state.changesAfter === null ? Math.max(0, state.head - CHANGES_PAGE) : state.changesAfter;
    let page;
    try {
      page = await api(`/v1/changes?after=${after}&limit=${CHANGES_PAGE}`);
    } catch (e) {
      const m = e.code === 'resync_required' && /after=(\d+)/.exec(e.message);
      if (!m) throw e;
      // Retention removed the entries before this page, so start at the
      // oldest one kept.
      state.changesAfter = Number(m[1]);
      page = await api(`/v1/changes?after=${state.changesAfter}&limit=${CHANGES_PAGE}`);
    }
    const changes = page.changes || [];
    const shownAfter = state.changesAfter === null ? after : state.changesAfter;
    note.textContent = changes.length
      ? `Changes ${changes[0].cursor} to ${changes[changes.length - 1].cursor} of ${state.head}, the newest last.`
      : 'No changes yet.';
    $('changes-rows').replaceChildren(...changes.map((c) => el('tr', null,
      el('td', { class: 'num' }, String(c.cursor)),
      el('td', null, timeEl(c.time)),
      el('td', null, el('code', null, c.article_id)),
      el('td', { class: 'num' }, String(c.version)),
      el('td', null, c.type))));
    $('chg-older').disabled = shownAfter <= 0;
    $('chg-newer').disabled = state.changesAfter === null || shownAfter + CHANGES_PAGE >= state.head;
    $('chg-newest').disabled = state.changesAfter === null;
  } catch (e) {
    note.textContent = `The change log could not be read: ${e.message}`;
  }
}

function moveChanges(delta) {
  const current = state.changesAfter === null ? Math.max(0, state.head - CHANGES_PAGE) : state.changesAfter;
  const next = Math.max(0, current + delta);
  state.changesAfter = next + CHANGES_PAGE >= state.head ? null : next;
  loadChanges();
}

// ---- search --------------------------------------------------------------------------

const SEARCH_PAGE = 20;

// search shows the first page of hits for q, with the number of all
// matches; more() appends the next page.
const searchState = { q: '', next: '', shown: 0, total: 0, anyTerm: false };

async function search(q) {
  const note = $('search-note');
  const list = $('search-results');
  note.textContent = 'Searching…';
  list.replaceChildren();
  $('search-more').hidden = true;
  Object.assign(searchState, { q, next: '', shown: 0, total: 0, anyTerm: false });
  await searchPage(`/v1/search?q=${encodeURIComponent(q)}&limit=${SEARCH_PAGE}&facets=true`);
}

async function searchMore() {
  if (!searchState.next) return;
  const q = searchState.q;
  await searchPage(`/v1/search?q=${encodeURIComponent(q)}&limit=${SEARCH_PAGE}&cursor=${encodeURIComponent(searchState.next)}`);
}

async function searchPage(url) {
  const note = $('search-note');
  const list = $('search-results');
  try {
    const res = await api(url);
    const hits = res.hits || [];
    if (res.facets) {
      // Every match has one class, so the class counts add up to all.
      searchState.total = (res.facets.classes || []).reduce((n, f) => n + f.count, 0);
    }
    searchState.shown += hits.length;
    searchState.next = res.next || '';
    list.append(...hits.map((h) => el('li', null,
      el('p', { class: 'hit-title' }, el('strong', null, h.title), ' ', el('code', null, h.id)),
      el('p', { class: 'muted' }, `${h.class}, ${h.status}, version ${h.version}`),
      h.snippet_html ? el('p', { class: 'snippet' }, markedText(h.snippet_html)) : '')));
    const total = Math.max(searchState.total, searchState.shown);
    if (res.any_term) searchState.anyTerm = true;
    note.textContent = (searchState.shown < total
      ? `Showing ${searchState.shown} of ${plural(total, 'result')} for “${searchState.q}”.`
      : `${plural(total, 'result')} for “${searchState.q}”.`) +
      (searchState.anyTerm ? ' No article has every word, so these match any of them.' : '');
    $('search-more').hidden = !searchState.next;
  } catch (e) {
    note.textContent = `Search failed: ${e.message}`;
  }
}

// markedText turns a snippet_html into nodes: its text, with each match
// in a <mark>. It keeps nothing else of the markup, so a snippet can never
// add elements or attributes to the page.
function markedText(html) {
  const doc = new DOMParser().parseFromString(`<p>${html}</p>`, 'text/html');
  const out = [];
  for (const node of doc.body.firstChild.childNodes) {
    if (node.nodeName === 'MARK') out.push(el('mark', null, node.textContent));
    else out.push(node.textContent);
  }
  return out;
}

// ---- refresh ---------------------------------------------------------------------------

function renderAll() {
  renderTable();
  renderAttention();
}

// refresh reloads every view. Calls made while one runs are merged into one
// more run after it, so that a Resume is always followed by a fresh read but
// a slow hub never has several list requests from one tab at once.
let refreshing = null;
let refreshAgain = false;

function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      await refreshOnce();
    } while (refreshAgain && state.token);
  })().finally(() => { refreshing = null; });
  return refreshing;
}

async function refreshOnce() {
  if (!state.token) return;
  $('int-table').setAttribute('aria-busy', 'true');
  try {
    await loadIntegrations();
  } catch (e) {
    setStatus(`The integrations could not be read: ${e.message}`);
    return;
  } finally {
    $('int-table').removeAttribute('aria-busy');
  }
  renderAll();
  const i = state.selected && state.byId.get(state.selected);
  if (i) {
    renderDetail(i);
    renderChart(i);
    loadDeliveries(i);
  }
  loadChanges();
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(async () => {
    if (!document.hidden) await refresh();
    if (state.token) schedule();
  }, REFRESH_MS);
}

// ---- wiring ----------------------------------------------------------------------------

function init() {
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    signIn($('token').value);
  });
  $('signout').addEventListener('click', () => signOut('Signed out.'));
  $('filter').addEventListener('input', (ev) => {
    state.filter = ev.target.value;
    state.page = 0;
    renderTable();
  });
  $('state-filter').addEventListener('change', (ev) => {
    state.stateFilter = ev.target.value;
    state.page = 0;
    renderTable();
  });
  $('page-size').addEventListener('change', (ev) => {
    state.pageSize = Number(ev.target.value);
    state.page = 0;
    renderTable();
  });
  $('prev').addEventListener('click', () => { state.page--; renderTable(); });
  $('next').addEventListener('click', () => { state.page++; renderTable(); });
  $('refresh').addEventListener('click', async () => {
    setStatus('Refreshing…');
    state.series.clear();
    await refresh();
    setStatus(`Refreshed at ${fmtTime(new Date().toISOString())}.`);
  });
  for (const th of document.querySelectorAll('#int-table th[data-sort]')) {
    th.querySelector('button').addEventListener('click', () => {
      const key = th.dataset.sort;
      if (state.sortKey === key) state.sortDir = -state.sortDir;
      else {
        state.sortKey = key;
        state.sortDir = key === 'name' || key === 'pattern' ? 1 : -1;
      }
      state.page = 0;
      renderTable();
    });
  }
  $('range').addEventListener('change', () => {
    const i = state.byId.get(state.selected);
    if (i) renderChart(i);
  });
  $('deliv-status').addEventListener('change', () => {
    const i = state.byId.get(state.selected);
    if (i) loadDeliveries(i);
  });
  $('chg-older').addEventListener('click', () => moveChanges(-CHANGES_PAGE));
  $('chg-newer').addEventListener('click', () => moveChanges(CHANGES_PAGE));
  $('chg-newest').addEventListener('click', () => { state.changesAfter = null; loadChanges(); });
  $('search-more').addEventListener('click', () => searchMore());
  $('search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = $('q').value.trim();
    if (q) search(q);
  });
  window.addEventListener('hashchange', onHash);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.token) refresh();
  });

  // A token in the address bar is taken once and removed from the URL and
  // the history entry, so that it is not bookmarked or shared by copying
  // the address.
  const params = new URLSearchParams(location.search);
  const fromURL = params.get('token');
  if (fromURL !== null) {
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', `${location.pathname}${rest ? `?${rest}` : ''}${location.hash}`);
  }
  const token = fromURL || sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
}

init();
