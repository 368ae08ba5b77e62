// JWTs and authUrl behaviours with the real ably-js, through the sandbox's stand-in for Ably's echo server (/echo): what
// ably-js's own realtime/auth, rest/auth and connectivity tests check against echo.ably.io, runnable offline and in CI.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Ably, FORMATS, TEST_TIMEOUT, fmtErr, uniqueName, useServer, waitFor, withTimeout } from './support/helpers.mjs';

const ctx = useServer({ extraArgs: ['--sandbox'] });

/** Client options without the key: these clients authenticate with what the echo gives them. */
function tokenOptions(format, extra = {}) {
  const { key, ...options } = ctx.options(format, extra);
  void key;
  return options;
}

function keyParts() {
  const [keyName, keySecret] = ctx.server.key.split(':');
  return { keyName, keySecret };
}

function echoUrl(path, params = {}) {
  const url = new URL(`/echo${path}`, ctx.server.httpUrl);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, String(v));
  return url.toString();
}

async function createJwt(params) {
  const response = await fetch(echoUrl('/createJWT', { ...keyParts(), ...params }));
  assert.equal(response.status, 200, await response.clone().text());
  return response.text();
}

/** The states a client goes through (update events, which keep the state, are left out). */
function stateChanges(client) {
  const seen = [];
  client.connection.on((change) => {
    if (change.current !== change.previous) seen.push(change.current);
  });
  return seen;
}

for (const format of FORMATS) {
  const binary = format === 'msgpack';
  describe(`echo auth [${format}]`, () => {
    test('authUrl to createJWT: the JWT carries the clientId; publish and subscribe work', { timeout: TEST_TIMEOUT }, async (t) => {
      const authUrl = echoUrl('/createJWT', { ...keyParts(), clientId: 'jwt-client' });
      const client = new Ably.Realtime({ ...tokenOptions(format), authUrl, useBinaryProtocol: binary });
      t.after(() => client.close());
      await withTimeout(client.connection.whenState('connected'), 20_000, () => `connect: ${fmtErr(client.connection.errorReason)}`);
      assert.equal(client.auth.clientId, 'jwt-client');
      assert.equal(client.clientId, 'jwt-client');
      const channel = client.channels.get(uniqueName('jwt'));
      const got = [];
      await channel.subscribe((m) => got.push([m.data, m.clientId]));
      await channel.publish('greeting', 'hello');
      await waitFor(() => got.length === 1, { what: 'own message' });
      assert.deepEqual(got, [['hello', 'jwt-client']]);
    });

    test('a JWT 35 s from expiry is renewed in band (AUTH from the server, then update), same connection', { timeout: TEST_TIMEOUT }, async (t) => {
      let fetched = 0;
      const authCallback = (_params, cb) => {
        fetched++;
        createJwt({ expiresIn: 35 }).then((jwt) => cb(null, jwt), (e) => cb(e));
      };
      const client = new Ably.Realtime({ ...tokenOptions(format), authCallback, useBinaryProtocol: binary });
      t.after(() => client.close());
      const seen = stateChanges(client);
      await withTimeout(client.connection.whenState('connected'), 20_000, 'connect');
      const id = client.connection.id;
      const first = client.auth.tokenDetails.token;
      await withTimeout(new Promise((resolve) => client.connection.once('update', resolve)), 20_000, 'the update after renewal');
      assert.notEqual(client.auth.tokenDetails.token, first, 'a new token');
      assert.equal(fetched, 2);
      assert.equal(client.connection.id, id);
      assert.deepEqual(seen, ['connecting', 'connected'], 'never disconnected');
    });

    test('a JWT with 5 s to live is not renewed early: DISCONNECTED 40142, then the client renews and resumes', { timeout: TEST_TIMEOUT }, async (t) => {
      const authCallback = (_params, cb) => createJwt({ expiresIn: 5 }).then((jwt) => cb(null, jwt), (e) => cb(e));
      const client = new Ably.Realtime({ ...tokenOptions(format), authCallback, useBinaryProtocol: binary });
      t.after(() => client.close());
      await withTimeout(client.connection.whenState('connected'), 20_000, 'connect');
      const id = client.connection.id;
      const change = await withTimeout(new Promise((resolve) => client.connection.once('disconnected', resolve)), 20_000, 'disconnected');
      assert.equal(change.reason.code, 40142);
      await withTimeout(client.connection.whenState('connected'), 20_000, 'reconnect with a renewed token');
      assert.equal(client.connection.id, id, 'resumed');
    });

    test('REST: plain, application/jwt, embedded and encrypted embedded JWTs authenticate; an unknown app is 40400', { timeout: TEST_TIMEOUT }, async () => {
      const inner = await ctx.rest(format).auth.requestToken();
      for (const params of [{}, { returnType: 'jwt' }, { innerToken: inner.token }, { innerToken: inner.token, encrypted: 1 }, { jwtType: 'embedded' }]) {
        const rest = new Ably.Rest({ ...tokenOptions(format), authUrl: echoUrl('/createJWT'), authParams: { ...keyParts(), ...params }, useBinaryProtocol: binary });
        const page = await rest.stats();
        assert.ok(Array.isArray(page.items), JSON.stringify(params));
      }
      const jwt = await (await fetch(echoUrl('/createJWT', { keyName: 'invalid.invalid', keySecret: 'invalidinvalid' }))).text();
      await assert.rejects(new Ably.Rest({ ...tokenOptions(format), token: jwt, useBinaryProtocol: binary }).stats(),
        (e) => e.code === 40400 && e.statusCode === 404);
    });

    test('authUrl echoes: JSON TokenDetails (GET and POST), a plain token, a TokenRequest from query parameters', { timeout: TEST_TIMEOUT }, async (t) => {
      const rest = ctx.rest(format);
      const details = await rest.auth.requestToken();
      const tokenRequest = await rest.auth.createTokenRequest();
      const cases = [
        { authUrl: echoUrl('/', { type: 'json', body: JSON.stringify(details) }) },
        { authUrl: `${echoUrl('/')}?type=json&`, authMethod: 'POST', authParams: details },
        { authUrl: echoUrl('/', { type: 'text', body: details.token }) },
        // RSA8c1c: authParams win over the authUrl's query (keyName WRONG is replaced).
        { authUrl: echoUrl('/qs_to_body', { keyName: 'WRONG', timestamp: tokenRequest.timestamp, nonce: tokenRequest.nonce }),
          authParams: { keyName: tokenRequest.keyName, mac: tokenRequest.mac } },
      ];
      for (const options of cases) {
        const client = new Ably.Realtime({ ...tokenOptions(format), ...options, useBinaryProtocol: binary });
        t.after(() => client.close());
        await withTimeout(client.connection.whenState('connected'), 20_000, () => `connect with ${JSON.stringify(options)}: ${fmtErr(client.connection.errorReason)}`);
        client.close();
      }
    });

    test('authUrl answering 403 fails the connection (80019, cause 403); 401 leaves it disconnected', { timeout: TEST_TIMEOUT }, async (t) => {
      const forbidden = new Ably.Realtime({ ...tokenOptions(format), authUrl: echoUrl('/respondwith', { status: 403 }), useBinaryProtocol: binary });
      t.after(() => forbidden.close());
      const failed = await withTimeout(new Promise((resolve) => forbidden.connection.once('failed', resolve)), 20_000, 'failed');
      assert.equal(failed.reason.code, 80019);
      assert.equal(failed.reason.statusCode, 403);

      const unauthorized = new Ably.Realtime({ ...tokenOptions(format), authUrl: echoUrl('/respondwith', { status: 401 }), useBinaryProtocol: binary });
      t.after(() => unauthorized.close());
      const disconnected = await withTimeout(new Promise((resolve) => unauthorized.connection.once('disconnected', resolve)), 20_000, 'disconnected');
      assert.equal(disconnected.reason.code, 80019);
      assert.equal(disconnected.reason.statusCode, 401);
    });
  });
}

describe('echo connectivity check', () => {
  test('connectivityCheckUrl: 200 is up, 500 is down, the default text check answers yes', { timeout: TEST_TIMEOUT }, async () => {
    // The helper's options turn the check off (disableConnectivityCheck); these clients turn it back on.
    const check = (url) => new Ably.Realtime({ ...ctx.options('json'), disableConnectivityCheck: false, connectivityCheckUrl: url, autoConnect: false })
      .http.checkConnectivity();
    assert.equal(await check(echoUrl('/respondwith', { status: 200 })), true);
    assert.equal(await check(echoUrl('/respondwith', { status: 500 })), false);
    assert.equal(await (await fetch(echoUrl('/is-the-internet-up.txt'))).text(), 'yes\n');
  });
});
