// redirect-hosts.cjs: a Node preload (`node --require` / `mocha --require`) for the conformance run.
//
// ably-js's tests call a few public hosts: Ably's echo server (https://echo.ably.io: createJWT, authUrl echoes,
// /respondwith, /methods) and the connectivity-check hosts (internet-up over HTTPS, ws-up over WSS: the `ws` package
// opens a wss:// socket with https.request, so its upgrade request is redirected too). Offline they cannot be reached. This module sends
// the HTTPS requests for those hosts to a local plain-HTTP base URL instead, for example
//   HOST_REDIRECTS="echo.ably.io=http://127.0.0.1:8080/echo internet-up.ably-realtime.com=http://127.0.0.1:8080/echo"
// so https://echo.ably.io/createJWT?x=1 becomes http://127.0.0.1:8080/echo/createJWT?x=1. Method, headers,
// body, timeouts and the response are untouched, so ably-js and its tests run unmodified.
//
// Only https requests on the default port (443) are redirected: a client pointed at one of these hosts on another
// port or over ws:// (failure.test.js uses echo.ably.io as a fallback host that must fail) still fails as it would.
//
// BLACKHOLE_HOSTS="10.255.255.1" makes connections to those hosts hang until the caller's timeout, as an
// unroutable address does on a routed network (offline the kernel refuses them at once, with ECONNREFUSED).
'use strict';

const http = require('http');
const https = require('https');
const net = require('net');

const redirects = new Map();
for (const entry of (process.env.HOST_REDIRECTS || '').split(/\s+/).filter(Boolean)) {
  const at = entry.indexOf('=');
  if (at <= 0) throw new Error(`redirect-hosts: bad HOST_REDIRECTS entry '${entry}' (want host=http://base)`);
  const base = new URL(entry.slice(at + 1));
  if (base.protocol !== 'http:') throw new Error(`redirect-hosts: '${entry}': the target must be an http:// URL`);
  redirects.set(entry.slice(0, at).toLowerCase(), base);
}
const blackholes = new Set((process.env.BLACKHOLE_HOSTS || '').split(/\s+/).filter(Boolean));

// The Node ClientRequest options that carry over to the redirected request; everything else (agent, TLS
// settings, createConnection, host/port/path) belongs to the original destination.
const KEPT = ['method', 'headers', 'signal', 'timeout', 'setHost', 'maxHeaderSize', 'insecureHTTPParser', 'joinDuplicateHeaders'];

/** The destination of an http(s).request call: (url[, options][, cb]) or (options[, cb]). */
function destination(args) {
  let url = null;
  let options = {};
  if (typeof args[0] === 'string' || args[0] instanceof URL) {
    url = new URL(args[0]);
    if (args[1] && typeof args[1] === 'object') options = args[1];
  } else if (args[0] && typeof args[0] === 'object') {
    options = args[0];
  }
  const host = String(options.hostname || options.host || (url && url.hostname) || '').replace(/:\d+$/, '').toLowerCase();
  const port = Number(options.port || (url && url.port) || 443);
  const path = options.path || (url ? url.pathname + url.search : '/');
  const callback = args.find((a) => typeof a === 'function');
  return { host, port, path, options, callback };
}

function redirected(target, base) {
  const path = base.pathname.replace(/\/$/, '') + (target.path.startsWith('/') ? target.path : '/' + target.path);
  const options = { protocol: 'http:', hostname: base.hostname, port: base.port || 80, path };
  for (const k of KEPT) if (target.options[k] !== undefined) options[k] = target.options[k];
  return http.request(options, target.callback);
}

const originalRequest = https.request;
https.request = function request(...args) {
  const target = destination(args);
  const base = redirects.get(target.host);
  if (base && target.port === 443) return redirected(target, base);
  return originalRequest.apply(this, args);
};
https.get = function get(...args) {
  const req = https.request(...args);
  req.end();
  return req;
};

if (blackholes.size > 0) {
  // A listening socket that never accepts: the connect completes in the backlog and no byte ever comes back,
  // so the caller's request timeout decides, as with an address that routes nowhere.
  const sink = net.createServer(() => {}).listen(0, '127.0.0.1');
  sink.unref();
  const originalConnect = net.Socket.prototype.connect;
  // Forms: connect(options[, cb]), connect(port[, host][, cb]), and the [options, cb] array net.createConnection passes.
  net.Socket.prototype.connect = function connect(...args) {
    const holder = Array.isArray(args[0]) ? args[0] : args;
    const options = holder[0] && typeof holder[0] === 'object' ? holder[0] : null;
    const host = options ? options.host : typeof holder[1] === 'string' ? holder[1] : null;
    const address = sink.address(); // null only in the instant before the sink is bound
    if (host && blackholes.has(host) && address) {
      if (options) holder[0] = { ...options, host: '127.0.0.1', port: address.port };
      else { holder[0] = address.port; holder[1] = '127.0.0.1'; }
    }
    return originalConnect.apply(this, args);
  };
}
