// The Tokenwire admin page: one server-sent event stream (/admin/api/stream) with a snapshot every second, and the
// selected channel's last messages (/admin/api/messages). Plain DOM and SVG: no framework, no build step, no CDN.
'use strict';

const $ = (id) => document.getElementById(id);
let selected = null; // { app, name }

function text(el, value) { el.textContent = value; }

function cell(row, value, cls) {
  const td = document.createElement('td');
  td.textContent = value === null || value === undefined ? '' : String(value);
  if (cls) td.className = cls;
  td.title = td.textContent;
  row.appendChild(td);
  return td;
}

function fill(tbody, rows, columns, empty, onRow) {
  tbody.replaceChildren();
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = cell(tr, empty, 'empty');
    td.colSpan = columns;
    tbody.appendChild(tr);
    return;
  }
  for (const r of rows) {
    const tr = document.createElement('tr');
    onRow(tr, r);
    tbody.appendChild(tr);
  }
}

function bytes(n) {
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KB';
  return (n / 1024 / 1024).toFixed(1) + ' MB';
}

function duration(s) {
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min';
  return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(name, attrs, parent) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  parent.appendChild(el);
  return el;
}

// A line chart of mean and max per slot (points are oldest first; null where a slot had no sample).
function chart(el, points) {
  el.replaceChildren();
  const w = 600, h = 180, left = 40, bottom = 18, top = 8;
  const values = points.flatMap((p) => [p.meanMs, p.maxMs]).filter((v) => v !== null);
  const samples = points.reduce((n, p) => n + p.count, 0);
  el.dataset.samples = String(samples);
  const peak = values.length ? Math.max(...values) : 1;
  const scale = niceCeiling(peak);
  for (let i = 0; i <= 4; i++) {
    const y = top + (h - top - bottom) * (1 - i / 4);
    svg('line', { x1: left, x2: w, y1: y, y2: y, class: 'grid' }, el);
    svg('text', { x: left - 4, y: y + 3, 'text-anchor': 'end', class: 'axis' }, el).textContent = formatMs(scale * i / 4);
  }
  const n = points.length;
  const x = (i) => left + (w - left) * (n <= 1 ? 1 : i / (n - 1));
  const y = (v) => top + (h - top - bottom) * (1 - v / scale);
  for (const [label, i] of [['10 min ago', 0], ['5 min', Math.floor(n / 2)], ['now', n - 1]]) {
    svg('text', { x: x(i), y: h - 4, 'text-anchor': i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle', class: 'axis' }, el).textContent = label;
  }
  if (!values.length) {
    svg('text', { x: (w + left) / 2, y: h / 2, 'text-anchor': 'middle', class: 'empty' }, el).textContent = 'no responses yet';
    return;
  }
  for (const [key, cls] of [['maxMs', 'max'], ['meanMs', 'mean']]) {
    let d = '';
    let pen = false;
    points.forEach((p, i) => {
      const v = p[key];
      if (v === null) { pen = false; return; }
      d += (pen ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(v).toFixed(1) + ' ';
      pen = true;
    });
    if (d) svg('path', { d, class: cls }, el);
  }
  points.forEach((p, i) => { if (p.meanMs !== null) svg('circle', { cx: x(i), cy: y(p.meanMs), r: 2.5, class: 'dot' }, el); });
}

function niceCeiling(v) {
  const steps = [1, 2, 2.5, 5, 10];
  const magnitude = Math.pow(10, Math.floor(Math.log10(Math.max(v, 0.001))));
  for (const s of steps) if (s * magnitude >= v) return s * magnitude;
  return 10 * magnitude;
}

function formatMs(v) { return v >= 1000 ? (v / 1000).toFixed(1) + ' s' : (v >= 10 ? Math.round(v) : v.toFixed(1)) + ' ms'; }

function render(o) {
  text($('server'), o.serverId + ' · up ' + duration(o.uptimeSeconds));
  text($('connections'), o.connections.connected);
  // Connections are each on one node, so their sum over the nodes is the cluster's (channels are not: one can live on all).
  const allConnections = o.nodes.reduce((n, node) => n + node.connections, 0);
  text($('connections-sub'), o.connections.disconnected + ' awaiting resume' + (o.nodes.length > 1 ? ` · ${allConnections} on all ${o.nodes.length} nodes` : ''));
  text($('channels'), o.channelCount);
  text($('attachments'), o.attachments);
  text($('presence'), o.presenceMembers);
  text($('responses-count'), o.responses.length);
  text($('published'), o.counters.messagesPublished);
  const nacks = Object.values(o.counters.nacksByCode).reduce((a, b) => a + b, 0);
  text($('nacks'), nacks + ' refused (NACK)');
  // Every node on the Redis engine (this one first, the others as of their last report, every 5 s); on one node, itself.
  const others = o.nodes.length - 1;
  text($('nodes-sub'), others === 0 ? '(this node alone)' : `(this node and ${others} other${others === 1 ? '' : 's'} sharing its Redis)`);
  fill($('nodes').tBodies[0], o.nodes, 11, 'no node', (tr, n) => {
    cell(tr, (n.node || 'local') + (n.current ? ' (this node)' : '')); cell(tr, n.serverId); cell(tr, n.host); cell(tr, n.version);
    cell(tr, duration(n.uptimeSeconds), 'num'); cell(tr, n.connections, 'num'); cell(tr, n.channels, 'num'); cell(tr, n.attachments, 'num');
    cell(tr, n.presenceMembers, 'num'); cell(tr, n.messagesPublished, 'num'); cell(tr, n.current ? 'now' : n.reportAgeSeconds.toFixed(0) + ' s ago', 'num');
    if (n.current) tr.className = 'current';
  });
  chart($('chart-ttft'), o.charts.timeToFirstToken);
  chart($('chart-gap'), o.charts.interTokenGap);
  fill($('responses').tBodies[0], o.responses, 7, 'no response in progress', (tr, r) => {
    cell(tr, r.channel); cell(tr, r.id); cell(tr, r.pattern === 'per_token' ? 'message per token' : 'message per response');
    cell(tr, r.tokens, 'num'); cell(tr, r.tokensPerSecond.toFixed(1), 'num'); cell(tr, r.ageSeconds.toFixed(1), 'num'); cell(tr, r.idleSeconds.toFixed(1), 'num');
  });
  if (!selected && o.channels.length) select(o.channels[0]);
  fill($('channel-list').tBodies[0], o.channels, 5, 'no live channel', (tr, c) => {
    cell(tr, c.name); cell(tr, c.app); cell(tr, c.subscribers, 'num'); cell(tr, c.presenceMembers, 'num'); cell(tr, bytes(c.hotWindowBytes), 'num');
    if (selected && selected.app === c.app && selected.name === c.name) tr.className = 'selected';
    tr.addEventListener('click', () => select(c));
  });
}

function select(c) {
  selected = { app: c.app, name: c.name };
  text($('selected'), 'on ' + c.name);
  loadMessages();
}

async function loadMessages() {
  if (!selected) return;
  const { app, name } = selected;
  const response = await fetch('/admin/api/messages?limit=15&app=' + encodeURIComponent(app) + '&channel=' + encodeURIComponent(name));
  if (!response.ok || !selected || selected.name !== name) return;
  const body = await response.json();
  fill($('messages').tBodies[0], body.messages, 5, 'no recent message', (tr, m) => {
    cell(tr, m.timestamp ? new Date(m.timestamp).toLocaleTimeString() : '');
    cell(tr, m.action ? m.action.toLowerCase() : ''); cell(tr, m.name); cell(tr, m.clientId); cell(tr, m.data);
  });
}

function connect() {
  const events = new EventSource('/admin/api/stream');
  events.onmessage = (e) => {
    $('live').className = 'live on';
    text($('live'), 'live');
    render(JSON.parse(e.data));
  };
  events.onerror = () => {
    $('live').className = 'live off';
    text($('live'), 'reconnecting…');
  };
}

connect();
setInterval(loadMessages, 2000);
