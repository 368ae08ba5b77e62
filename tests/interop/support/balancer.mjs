// An HTTP load balancer without affinity, for the scale-out tests: every request goes to the next node in turn
// (round robin), whatever connection key its path names. Bodies stream both ways, so a comet streaming recv passes
// its frames as they come. HTTP only (no WebSocket upgrades): the comet transport is what needs it.
//
//   const balancer = await startBalancer([nodeA.port, nodeB.port]);
//   new Ably.Realtime(clientOptionsFor(balancer.port, key, format, { transports: ['comet'] }));
//   balancer.requests   // per node: how many requests it was given
//   balancer.completed  // the answered requests: { path, node, status }, in the order they ended
//   await balancer.close();

import { createServer, request } from 'node:http';

/** @param {number[]} ports the nodes' ports on 127.0.0.1 */
export async function startBalancer(ports) {
  let next = 0;
  const requests = ports.map(() => 0);
  const completed = [];
  const server = createServer((req, res) => {
    const i = next++ % ports.length;
    requests[i]++;
    const upstream = request({ host: '127.0.0.1', port: ports[i], method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
      answer.on('end', () => completed.push({ path: req.url, node: i, status: answer.statusCode }));
    });
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    requests,
    completed,
    /** Lets requests in flight finish (a client's close request, say) for up to 2 s, then cuts what is left. */
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), 2000);
      await closed;
      clearTimeout(timer);
    },
  };
}
