// An HTTP proxy that forwards ordinary requests to the server but refuses every WebSocket upgrade, as corporate
// proxies and firewalls do: the upgrade request is answered 403 and its socket closed. Clients behind it must fall back
// to comet. Requests are forwarded as they stream (a comet recv response is relayed chunk by chunk).
//
//   const proxy = await startWsBlockingProxy(server.port);
//   new Ably.Realtime({ ...options, port: proxy.port });
//   proxy.stats;                  // { requests, refusedUpgrades, passedUpgrades, paths: Map(kind -> count) }
//   proxy.allowWebSockets = true; // from now on upgrades pass through (the network stopped blocking them)
//   proxy.cutAll();               // drop every live client connection, like a network drop
//   await proxy.close();

import { createServer, request } from 'node:http';
import { connect } from 'node:net';

/** @param {number} targetPort */
export async function startWsBlockingProxy(targetPort, { host = '127.0.0.1' } = {}) {
  const stats = { requests: 0, refusedUpgrades: 0, passedUpgrades: 0, paths: new Map() };
  const sockets = new Set();

  const server = createServer((req, res) => {
    stats.requests++;
    const kind = req.url.split('?')[0].replace(/\/comet\/[^/]+\/(send|recv|close|disconnect)$/, '/comet/{key}/$1');
    stats.paths.set(kind, (stats.paths.get(kind) ?? 0) + 1);
    const upstream = request(
      { host, port: targetPort, method: req.method, path: req.url, headers: req.headers },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode, upstreamRes.headers);
        upstreamRes.pipe(res);
        upstreamRes.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (req, socket, head) => {
    if (!proxy.allowWebSockets) {
      stats.refusedUpgrades++;
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 28\r\nConnection: close\r\n\r\nWebSockets are blocked here\n');
      return;
    }
    stats.passedUpgrades++;
    const upstream = connect({ host, port: targetPort }, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(lines.join('\r\n') + '\r\n\r\n');
      if (head?.length) upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    const drop = () => {
      socket.destroy();
      upstream.destroy();
    };
    upstream.on('error', drop);
    socket.on('error', drop);
    socket.on('close', drop);
    upstream.on('close', drop);
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  const proxy = {
    port: server.address().port,
    stats,
    /** When true, WebSocket upgrades are relayed to the server instead of refused. */
    allowWebSockets: false,
    /** Destroy every live client connection (and so the upstream requests they carry). Returns how many. */
    cutAll() {
      const victims = [...sockets];
      for (const socket of victims) socket.destroy();
      return victims.length;
    },
    async close() {
      for (const socket of [...sockets]) socket.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
