// mware operator console: the whole site in one page, live.
// Every value is put in the page as text (textContent), never as HTML. The operator's
// token lives in this tab's sessionStorage only and goes out only in the Authorization
// header of an action the operator confirmed.
'use strict';

const S = {
  base: '', // origin of the instance this page talks to ('' = the one it came from)
  manifest: null,
  cluster: null,
  statuses: {}, // group -> /api/v1/status of its active instance
  panels: {}, // group/service/index of its panel -> document
  monitoring: null,
  token: sessionStorage.getItem('mware-operator-token') || '',
  es: null,
  timer: null,
  tried: [],
  shown: {}, // group -> active instance shown
  here: null, // name of the instance S.base reaches
};
window.mwareShown = []; // {group, active, at} each time the page shows a new active instance

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== false && v !== undefined && v !== null) e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function origin(addr) {
  return addr ? 'http://' + addr : '';
}

// Where to reach a member: the instance this page talks to is reached as it was (same
// origin, whatever name the browser used), the others by their site address.
function baseOf(m) {
  return m && m.name === S.here ? S.base : origin(m && m.address);
}

async function api(path, opts, base) {
  const o = opts || {};
  const headers = Object.assign({}, o.headers || {});
  if (o.auth && S.token) headers['Authorization'] = 'Bearer ' + S.token;
  if (o.body !== undefined) headers['Content-Type'] = 'application/json';
  const url = (base === undefined ? S.base : base) + path;
  const r = await fetch(url, { method: o.method || 'GET', headers, body: o.body === undefined ? undefined : JSON.stringify(o.body), cache: 'no-store' });
  let body = null;
  const text = await r.text();
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = { error: text }; }
  return { ok: r.ok, status: r.status, body };
}

// A service's panels: `service_panels` lists them all; a daemon of an older version
// sends only `panels` (one per service).
function panelsOf(name) {
  const m = S.manifest;
  if (m.service_panels && m.service_panels[name]) return m.service_panels[name];
  return m.panels && m.panels[name] ? [m.panels[name]] : [];
}

function ptr(obj, pointer) {
  if (!pointer) return obj;
  let v = obj;
  for (const part of pointer.split('/').slice(1)) {
    if (v === null || v === undefined) return undefined;
    v = v[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return v;
}

function age(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return s + ' s';
  if (s < 7200) return Math.round(s / 60) + ' min';
  return Math.round(s / 3600) + ' h';
}

// A time, past or future, from now.
function when(ms) {
  const s = Math.round((ms - Date.now()) / 1000);
  if (Math.abs(s) < 2) return 'now';
  return s > 0 ? 'in ' + age(Date.now() - s * 1000) : age(ms) + ' ago';
}

function show(v, format) {
  if (format === 'count') return Array.isArray(v) ? String(v.length) : '—';
  if (v === undefined || v === null || v === '') return '—';
  if (format === 'ms_ago') return age(v);
  if (format === 'ms_at') return typeof v === 'number' ? when(v) : String(v);
  if (format === 'ms') return v + ' ms';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function health(v) {
  const s = String(v || '').toLowerCase();
  if (/^(ok|active|running|master|primary|streaming|idle|true)$/.test(s)) return 'ok';
  if (/(fail|down|unreachable|error|lost|refused)/.test(s)) return 'failing';
  return '';
}

function say(text) {
  $('answer').textContent = text;
}

// ---- data ----------------------------------------------------------------------------

async function refresh() {
  S.timer = null;
  try {
    if (!S.manifest) { S.manifest = (await api('/api/v1/console')).body; S.here = S.manifest.instance; }
    const c = await api('/api/v1/cluster');
    if (!c.ok) throw new Error((c.body && c.body.error) || 'cluster view unavailable');
    S.cluster = c.body;
    const jobs = S.cluster.groups.map(async (g) => {
      const active = g.members.find((m) => m.active);
      if (!active) { delete S.statuses[g.group]; return; }
      const base = baseOf(active);
      const st = await api('/api/v1/status', {}, base).catch(() => null);
      if (!st || !st.ok) return;
      S.statuses[g.group] = st.body;
      for (const svc of st.body.services || []) {
        const ps = panelsOf(svc.name);
        for (let i = 0; i < ps.length; i++) {
          const p = ps[i];
          const key = g.group + '/' + svc.name + '/' + i;
          if (!p.source) { S.panels[key] = svc.detail; continue; }
          if (svc.state !== 'running' && svc.state !== 'idle') { delete S.panels[key]; continue; }
          // A panel whose reads show what a site does not publish (a call's numbers) needs
          // the token; it is sent when the operator saved one.
          const d = await api(p.source, { auth: true }, base).catch(() => null);
          if (d && d.ok) S.panels[key] = d.body;
          else if (d && d.status === 401) S.panels[key] = LOCKED;
        }
      }
    });
    const mon = api('/api/v1/monitoring').then((m) => { S.monitoring = m.ok ? m.body : null; }).catch(() => {});
    await Promise.all(jobs.concat([mon]));
    render();
  } catch (e) {
    console.error(e);
    $('conn').textContent = 'cannot read the cluster view from ' + (S.base || location.host) + ': ' + e.message;
  }
}

function soon() {
  if (!S.timer) S.timer = setTimeout(refresh, 40);
}

// ---- live updates, surviving the loss of the instance the page came from ------------

function connect() {
  if (S.es) S.es.close();
  const label = S.base ? S.base.replace('http://', '') : location.host;
  const es = new EventSource(S.base + '/api/v1/events');
  S.es = es;
  es.onopen = () => { $('conn').textContent = 'live from ' + label; S.tried = []; soon(); };
  const on = (ev) => {
    let e = null;
    try { e = JSON.parse(ev.data); } catch (_) { /* lagged: text */ }
    const line = e ? eventText(e) : ev.data;
    const list = $('events');
    list.prepend(el('li', {}, new Date().toLocaleTimeString() + '  ' + line));
    while (list.children.length > 50) list.lastChild.remove();
    soon();
  };
  for (const t of ['activity', 'service', 'config', 'item', 'cluster', 'lagged']) es.addEventListener(t, on);
  es.onerror = () => {
    if (es.readyState === EventSource.OPEN) return;
    es.close();
    failover(label);
  };
}

function eventText(e) {
  switch (e.type) {
    case 'activity': return e.instance + (e.active ? ' became active (epoch ' + e.epoch + ')' : ' is passive') + ': ' + e.reason;
    case 'service': return e.instance + ': ' + e.service + ' ' + e.state + ': ' + e.reason;
    case 'cluster': return 'group ' + e.group + ': active ' + (e.active || 'none') + (e.epoch ? ' (epoch ' + e.epoch + ')' : '');
    case 'item': return e.source + ' ' + e.item + ' ' + e.state + ': ' + e.reason;
    case 'config': return e.instance + ': config reloaded from ' + e.source;
    default: return JSON.stringify(e);
  }
}

// The instance this page talks to stopped answering: try the other members it knows.
function failover(lost) {
  const members = [];
  for (const g of (S.cluster && S.cluster.groups) || []) for (const m of g.members) if (m.address && m.name !== S.here) members.push(m);
  S.tried.push(S.here);
  let next = members.find((m) => !S.tried.includes(m.name));
  if (!next) { S.tried = []; next = members[0]; }
  if (!next) { setTimeout(connect, 1000); return; }
  $('conn').textContent = 'lost ' + lost + '; trying ' + next.name + ' at ' + next.address;
  S.base = origin(next.address);
  S.here = next.name;
  setTimeout(connect, 300);
}

// ---- rendering ------------------------------------------------------------------------

function problems() {
  const out = [];
  // With monitoring, its view is the site's state (persisted, with since when and why).
  const m = S.monitoring;
  if (m && Array.isArray(m.items)) {
    for (const i of m.items) {
      if (i.state === 'ok') continue;
      const kind = i.state === 'failing' ? 'failing' : 'warning';
      out.push([kind, (i.group ? 'group ' + i.group + ' · ' : '') + i.kind + ' ' + i.name + ': ' + i.state + (i.since_ms ? ' for ' + age(i.since_ms) : '') + ' — ' + i.reason + (i.stale ? ' (not checked now: its group has no active instance)' : '')]);
    }
    return out;
  }
  for (const g of S.cluster.groups) {
    if (!g.active) out.push(['failing', 'group ' + g.group + ' has no active instance: its services and domains are not served']);
    for (const m of g.members) if (!m.live && !m.active) out.push(['warning', 'instance ' + m.name + ' of group ' + g.group + ' is down']);
    const st = S.statuses[g.group];
    for (const s of (st && st.services) || []) if (s.state === 'failed') out.push(['failing', s.name + ' failed on ' + st.instance + ': ' + s.reason]);
  }
  return out;
}

function render() {
  $('site').textContent = S.cluster.site;
  document.title = 'mware ' + S.cluster.site;
  const p = problems();
  const worst = p.some((x) => x[0] === 'failing') ? 'failing' : p.length ? 'warning' : 'ok';
  const badge = $('state');
  badge.textContent = worst === 'ok' ? 'all well' : worst;
  badge.className = 'badge ' + worst;
  $('problems').replaceChildren(...(p.length ? p.map(([k, t]) => el('li', { class: k }, t)) : [el('li', { class: 'none' }, 'nothing is wrong')]));
  renderGroups();
  renderDomains();
  renderPanels();
}

function renderGroups() {
  const cards = S.cluster.groups.map((g) => {
    if (S.shown[g.group] !== g.active) {
      S.shown[g.group] = g.active;
      window.mwareShown.push({ group: g.group, active: g.active, at: Date.now() });
    }
    const rows = g.members.map((m) => el('tr', { 'data-instance': m.name },
      el('td', {}, m.name), el('td', {}, m.order), el('td', {}, m.address || '—'),
      el('td', { class: m.live ? 'ok' : 'failing' }, m.live ? 'live' : 'down'),
      el('td', { class: m.active ? 'ok' : '' }, m.active ? 'ACTIVE' : 'passive')));
    const t = g.last_transition;
    const sw = el('button', { type: 'button', disabled: !S.token || !g.active, title: S.token ? 'hand over to the next instance in order' : 'type the operator token first', onclick: () => switchover(g) }, 'Switch over');
    return el('div', { class: 'card', 'data-group': g.group },
      el('h3', {}, 'Group ' + g.group, el('span', { class: 'badge ' + (g.active ? 'ok' : 'failing'), 'data-active': g.active || '' }, g.active ? 'active: ' + g.active : 'no active instance'), sw),
      el('p', { class: 'muted' }, g.active ? 'epoch ' + g.epoch + ', active for ' + age(g.since_ms) : 'nobody serves this group now',
        t ? ' · last transition: ' + (t.to || t.instance || '') + ' — ' + (t.reason || '') : ''),
      el('div', { class: 'scroll' }, el('table', {}, el('thead', {}, el('tr', {}, ['instance', 'order', 'address', 'live', 'state'].map((h) => el('th', {}, h)))), el('tbody', {}, rows))));
  });
  $('groups').replaceChildren(...cards);
}

function renderDomains() {
  const rows = [];
  for (const g of S.cluster.groups) {
    const ds = g.domains && g.domains.length ? g.domains : ['(everything no other group names)'];
    for (const d of ds) rows.push(el('tr', {}, el('td', {}, d), el('td', {}, 'group ' + g.group), el('td', {}, g.active || 'none')));
  }
  $('domains').replaceChildren(el('div', { class: 'scroll' }, el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'domain (and subtree)'), el('th', {}, 'group'), el('th', {}, 'served by'))), el('tbody', {}, rows))));
}

function renderPanels() {
  const out = [];
  for (const g of S.cluster.groups) {
    const st = S.statuses[g.group];
    for (const svc of (st && st.services) || []) {
      const ps = panelsOf(svc.name);
      // One card per panel; a service without a panel gets its state line.
      (ps.length ? ps : [null]).forEach((p, i) => {
        const head = el('h3', {}, (p ? p.title : svc.name) + ' — group ' + g.group, el('span', { class: 'badge ' + (health(svc.state) || 'warning') }, svc.state));
        const card = el('div', { class: 'card', 'data-service': svc.name, 'data-panel': p ? p.title : '', 'data-group': g.group }, head);
        if (i === 0) card.append(el('p', { class: 'muted' }, svc.reason));
        const doc = S.panels[g.group + '/' + svc.name + '/' + i];
        if (p && doc !== undefined) card.append(table(p, doc, g));
        out.push(card);
      });
    }
  }
  $('panels').replaceChildren(...(out.length ? out : [el('p', { class: 'muted' }, 'no service reports yet')]));
}

// The panel document of a panel whose reads need a token the page does not have.
const LOCKED = Object.freeze({});

function table(p, doc, g) {
  if (doc === LOCKED) return el('p', { class: 'muted', 'data-locked': '' }, 'this panel needs a token: enter it above to see it');
  let rows = p.rows ? ptr(doc, p.rows) : [doc];
  if (!Array.isArray(rows)) rows = [];
  if (!rows.length) return el('p', { class: 'muted' }, p.empty);
  const width = p.columns.length + (p.actions.length ? 1 : 0);
  const body = [];
  for (const r of rows) {
    body.push(row(p.columns, p.actions, r, g));
    // Nested rows (a conference's participants) under their row, with their own actions;
    // an action's {/../x} reads the parent row.
    const n = p.nested;
    const kids = n ? ptr(r, n.rows) : null;
    if (Array.isArray(kids) && kids.length) {
      const inner = kids.map((k) => row(n.columns, n.actions, Object.assign({}, k, { '..': r }), g));
      const head = n.columns.map((c) => el('th', {}, c.title)).concat(n.actions.length ? [el('th', {}, '')] : []);
      body.push(el('tr', { class: 'nested' }, el('td', { colspan: width },
        el('table', { class: 'nested' }, el('thead', {}, el('tr', {}, head)), el('tbody', {}, inner)))));
    }
  }
  const head = p.columns.map((c) => el('th', {}, c.title)).concat(p.actions.length ? [el('th', {}, '')] : []);
  const tbl = el('div', { class: 'scroll' }, el('table', {}, el('thead', {}, el('tr', {}, head)), el('tbody', {}, body)));
  // A paged list: the document holds the first rows only; say how many there are in all.
  const total = p.total ? ptr(doc, p.total) : null;
  if (typeof total !== 'number' || total <= rows.length) return tbl;
  return el('div', {}, el('p', { class: 'muted', 'data-total': total }, 'showing ' + rows.length + ' of ' + total), tbl);
}

function row(columns, actions, r, g) {
  return el('tr', {},
    columns.map((c) => { const v = ptr(r, c.value); return el('td', { class: c.format === 'state' ? health(v) : '' }, show(v, c.format)); }),
    actions.length ? el('td', {}, actions.map((a) => el('button', { type: 'button', disabled: !S.token, onclick: () => act(a, r, g) }, a.label))) : null);
}

// ---- actions ----------------------------------------------------------------------------

function fill(template, row) {
  return template.replace(/\{(\/[^}]*)\}/g, (_, p) => show(ptr(row, p)));
}

async function act(a, row, g) {
  if (!confirm(fill(a.confirm, row))) return;
  let cancelled = false;
  const body = JSON.parse(JSON.stringify(a.body), (k, v) => {
    if (typeof v !== 'string') return v;
    const q = v.match(/^\{\?(.*)\}$/);
    if (q) { const ans = prompt(q[1]); if (ans === null) cancelled = true; return ans; }
    const p = v.match(/^\{(\/.*)\}$/);
    return p ? ptr(row, p[1]) : v;
  });
  if (cancelled) return;
  const path = a.path.replace(/\{(\/[^}]*)\}/g, (_, p) => encodeURIComponent(String(ptr(row, p))));
  const active = g.members.find((m) => m.active);
  const r = await api(path, { method: a.method, body, auth: true }, baseOf(active)).catch((e) => ({ ok: false, body: { error: e.message } }));
  say(a.label + ': ' + (r.ok ? 'done' : 'refused (' + r.status + ')') + (r.ok && r.body === null ? '' : ' — ' + answerText(r.body)));
  soon();
}

async function switchover(g) {
  if (!confirm('Hand group ' + g.group + ' over from ' + g.active + ' to the next instance in order? Its services stop there first.')) return;
  const r = await api('/api/v1/groups/' + encodeURIComponent(g.group) + '/switchover', { method: 'POST', body: {}, auth: true }).catch((e) => ({ ok: false, body: { error: e.message } }));
  say('Switchover of group ' + g.group + ': ' + (r.ok ? 'requested' : 'refused (' + r.status + ')') + ' — ' + answerText(r.body));
  soon();
}

function answerText(b) {
  if (!b) return 'no answer';
  if (b.error) return b.error;
  return JSON.stringify(b);
}

// ---- wiring -----------------------------------------------------------------------------

function init() {
  $('token').value = S.token ? '••••••' : '';
  $('tokenform').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = $('token').value;
    if (v && v !== '••••••') { S.token = v; sessionStorage.setItem('mware-operator-token', v); }
    $('token').value = S.token ? '••••••' : '';
    say(S.token ? 'operator token kept in this tab only; actions are enabled' : 'read-only');
    render();
  });
  $('tokenclear').addEventListener('click', () => { S.token = ''; sessionStorage.removeItem('mware-operator-token'); $('token').value = ''; say('token forgotten: read-only'); render(); });
  $('routeform').addEventListener('submit', async (e) => {
    e.preventDefault();
    const d = $('domain').value.trim();
    if (!d) return;
    const r = await api('/api/v1/route?domain=' + encodeURIComponent(d)).catch((x) => ({ ok: false, body: { error: x.message } }));
    $('route').textContent = r.ok
      ? (r.body.canonical || d) + ' → group ' + r.body.group + ' (' + (r.body.instances || []).map((i) => i.name + (i.active ? ' active' : '')).join(', ') + ')'
      : 'refused: ' + answerText(r.body);
  });
  connect();
  refresh();
  setInterval(soon, 15000); // ages and anything an event did not announce
}

document.addEventListener('DOMContentLoaded', init);
