// The conformance harness's preload (tests/conformance/redirect-hosts.cjs), which lets ably-js's own suite reach the
// sandbox's echo stand-ins offline: here the real ably-js, in a child process with that preload, asks
// https://echo.ably.io for a JWT and uses it, and an unroutable address hangs until the client's timeout.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { TEST_TIMEOUT, useServer } from './support/helpers.mjs';
import { REPO_ROOT } from './support/server.mjs';

const PRELOAD = join(REPO_ROOT, 'tests', 'conformance', 'redirect-hosts.cjs');
const ctx = useServer({ extraArgs: ['--sandbox'] });

/** Runs `script` (CommonJS, may await) in a node process with the preload; resolves with its parsed stdout. */
async function withPreload(script, env) {
  const { stdout } = await promisify(execFile)(process.execPath, ['--require', PRELOAD, '-e', `(async () => { ${script} })().catch((e) => { console.error(e); process.exit(1); })`], {
    cwd: join(REPO_ROOT, 'tests', 'interop'),
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return JSON.parse(stdout);
}

describe('conformance preload (redirect-hosts.cjs)', () => {
  test('https://echo.ably.io goes to the sandbox: ably-js gets a JWT from createJWT and uses it', { timeout: TEST_TIMEOUT }, async () => {
    const [keyName, keySecret] = ctx.server.key.split(':');
    const result = await withPreload(`
      const Ably = require('ably');
      const base = { endpoint: '127.0.0.1', port: ${ctx.server.port}, tls: false };
      const authUrl = 'https://echo.ably.io/createJWT?keyName=${encodeURIComponent(keyName)}&keySecret=${encodeURIComponent(keySecret)}&clientId=via-echo';
      const details = await new Ably.Rest({ ...base, authUrl }).auth.requestToken();
      const rest = new Ably.Rest({ ...base, token: details.token });
      const stats = await rest.stats();
      const claims = JSON.parse(Buffer.from(details.token.split('.')[1], 'base64url'));
      console.log(JSON.stringify({ clientId: claims['x-ably-clientId'], stats: Array.isArray(stats.items) }));
    `, { HOST_REDIRECTS: `echo.ably.io=${ctx.server.httpUrl}/echo` });
    assert.deepEqual(result, { clientId: 'via-echo', stats: true });
  });

  test('a blackholed host hangs until the request timeout instead of being refused', { timeout: TEST_TIMEOUT }, async () => {
    const result = await withPreload(`
      const Ably = require('ably');
      const res = await new Ably.Rest({ key: 'a.b:c', httpRequestTimeout: 1500 })
        .http.doUri('get', 'http://10.255.255.1:${ctx.server.port}/time', null, null, null);
      console.log(JSON.stringify({ code: res.error && res.error.code }));
    `, { BLACKHOLE_HOSTS: '10.255.255.1' });
    assert.equal(result.code, 'ETIMEDOUT'); // offline, without the preload: ECONNREFUSED at once
  });
});
