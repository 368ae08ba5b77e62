// Starts a real redis-server (the Debian package) on a free loopback port for the scale-out interop tests.
// Without redis-server installed the tests fail (never skip): .ci/run installs it.

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function ping(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

/** A redis-server without persistence; `stop()` kills it and removes its folder. */
export async function startRedis() {
  const dir = await mkdtemp(join(tmpdir(), 'tokenwire-interop-redis-'));
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  const spawnError = new Promise((_, reject) => child.once('error', (e) => reject(new Error(`redis-server could not start (${e.message}); install it: apt-get install redis-server`))));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (await Promise.race([ping(port), spawnError])) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`redis-server did not answer on port ${port}:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    connectionString: `127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
