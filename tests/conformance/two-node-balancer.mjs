// two-node-balancer.mjs PORT NODE_A_PORT NODE_B_PORT
//
// A loopback balancer that spreads one sandbox's clients over two Tokenwire nodes sharing Redis, for running ably-js's
// own tests against a scale-out deployment (run-two-nodes.sh):
//   - WebSocket connections alternate between the nodes (a test's clients land on different nodes);
//   - other HTTP requests (REST, comet) alternate too, each request to the next node, streamed both ways;
//   - POST /apps goes to node A, then the same app (its appId, keys and namespaces from A's answer, without the
//     presence fixtures, which live in Redis already) is created on node B, so both nodes know its keys;
//   - DELETE /apps/{id} goes to both.
// The sandbox's answer names the balancer as the endpoint (the Host header passes through).
import http from 'node:http';
import net from 'node:net';

const [port, a, b] = process.argv.slice(2).map(Number);
if (!port || !a || !b) {
  console.error('usage: two-node-balancer.mjs PORT NODE_A_PORT NODE_B_PORT');
  process.exit(2);
}

const nodes = [a, b];
let next = 0;
const pick = () => nodes[next++ % nodes.length];
const stats = { ws: [0, 0], http: [0, 0] };

function forward(targetPort, req, body) {
  return new Promise((resolve, reject) => {
    const out = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    out.on('error', reject);
    out.end(body);
  });
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks);
}

const server = http.createServer(async (req, res) => {
  try {
    const body = await readBody(req);
    let answer;
    if (req.method === 'POST' && req.url.split('?')[0] === '/apps') {
      answer = await forward(a, req, body);
      if (answer.status === 201) {
        const setup = body.length ? JSON.parse(body.toString()) : {};
        const created = JSON.parse(answer.body.toString());
        const replica = { ...setup, appId: created.appId, channels: [] };
        replica.keys = (setup.keys ?? [{}]).map((k, i) => ({ ...k, keyStr: created.keys[i].keyStr }));
        const headers = { ...req.headers, 'content-type': 'application/json' };
        delete headers['content-length'];
        const copy = await forward(b, { ...req, headers }, Buffer.from(JSON.stringify(replica)));
        if (copy.status !== 201) throw new Error(`node B refused the app: ${copy.status} ${copy.body}`);
      }
    } else if (req.method === 'DELETE' && req.url.startsWith('/apps/')) {
      answer = await forward(a, req, body);
      await forward(b, req, body);
    } else {
      // Streamed, not buffered: a comet streaming recv passes its frames as they come.
      const target = pick();
      stats.http[nodes.indexOf(target)]++;
      const out = http.request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers }, (upstream) => {
        res.writeHead(upstream.statusCode, upstream.headers);
        upstream.pipe(res);
      });
      out.on('error', (e) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(String(e));
      });
      res.on('close', () => out.destroy());
      out.end(body);
      return;
    }

    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
  } catch (e) {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(String(e));
  }
});

// WebSocket upgrades: the raw request is replayed to the chosen node and the sockets are piped.
server.on('upgrade', (req, socket, head) => {
  const target = pick();
  stats.ws[nodes.indexOf(target)]++;
  const upstream = net.connect(target, '127.0.0.1', () => {
    let lines = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    upstream.write(lines + '\r\n');
    if (head?.length) upstream.write(head);
    socket.pipe(upstream).pipe(socket);
  });
  const close = () => {
    socket.destroy();
    upstream.destroy();
  };
  upstream.on('error', close);
  socket.on('error', close);
  upstream.on('close', close);
  socket.on('close', close);
});

server.listen(port, '127.0.0.1', () => console.log(`balancing 127.0.0.1:${port} over nodes ${a} and ${b}`));
process.on('SIGTERM', () => {
  console.log(`websocket connections per node: ${stats.ws.join(' / ')}; other HTTP requests per node: ${stats.http.join(' / ')}`);
  process.exit(0);
});
