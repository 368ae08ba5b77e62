// Auth and capabilities with the real ably-js: browsers get subscribe-only tokens from the app's authUrl,
// agents publish with keys, tokens expire mid-stream and are renewed without losing a message, JWTs work.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Ably, FORMATS, SETTLE_MS, TEST_TIMEOUT, sleep, useServer, waitFor, withTimeout } from './support/helpers.mjs';
import { randomAlnum } from './support/server.mjs';

const AGENT_KEY = `test.agent:${randomAlnum(24)}`;
const MINTER_KEY = `test.minter:${randomAlnum(24)}`;
const ctx = useServer({
  extraArgs: [
    `--Tokenwire:Keys:0:Key=${AGENT_KEY}`,
    '--Tokenwire:Keys:0:Capability={"chat:*":["publish"]}',
    `--Tokenwire:Keys:1:Key=${MINTER_KEY}`,
    '--Tokenwire:Keys:1:Capability={"chat:*":["subscribe","history"]}',
  ],
});

// The app's own token endpoint (what the demo server provides): it signs a TokenRequest for the browser with the
// minter key; the key itself never leaves this process. ?ttl= and ?room= shape the token.
let authServer;
let authUrl;
let tokenRequests = 0;
before(async () => {
  authServer = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const room = url.searchParams.get('room') ?? '1';
    const ttl = Number(url.searchParams.get('ttl') ?? 3_600_000);
    const rest = new Ably.Rest({ ...ctx.options('json'), key: MINTER_KEY });
    const tokenRequest = await rest.auth.createTokenRequest({ clientId: `browser-${room}`, ttl, capability: { [`chat:${room}`]: ['subscribe', 'history'] } });
    tokenRequests++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(tokenRequest));
  });
  await new Promise((r) => authServer.listen(0, '127.0.0.1', r));
  authUrl = `http://127.0.0.1:${authServer.address().port}/token`;
});
after(() => new Promise((r) => authServer.close(r)));

function browserOptions(room, ttl) {
  const { key, ...rest } = ctx.options('json');
  void key;
  const url = `${authUrl}?room=${room}${ttl ? `&ttl=${ttl}` : ''}`;
  return { ...rest, authUrl: url };
}

function jwt(keyStr, claims) {
  const [keyName, secret] = keyStr.split(':');
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT', kid: keyName })}.${b64(claims)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

for (const format of FORMATS) {
  const binary = format === 'msgpack';
  describe(`auth [${format}]`, () => {
    test('authUrl token: subscribes to chat:1, cannot publish there (40160) or attach chat:2 (40160); the agent key publishes', { timeout: TEST_TIMEOUT }, async (t) => {
      const room = randomAlnum(6);
      const browser = new Ably.Realtime({ ...browserOptions(room), useBinaryProtocol: binary });
      t.after(() => browser.close());
      await withTimeout(browser.connection.whenState('connected'), 20_000, 'browser to connect through authUrl');
      assert.equal(browser.auth.clientId, `browser-${room}`);

      const channel = browser.channels.get(`chat:${room}`);
      const got = [];
      await channel.subscribe((m) => got.push(m.data));

      await assert.rejects(channel.publish('token', 'forged'), (e) => e.code === 40160);
      await assert.rejects(browser.channels.get(`chat:${room}x`).attach(), (e) => e.code === 40160);
      assert.equal(browser.connection.state, 'connected', 'refusals do not drop the connection');

      const agent = await ctx.realtime(t, format, { key: AGENT_KEY });
      await agent.channels.get(`chat:${room}`).publish('token', 'from-agent');
      await waitFor(() => got.length === 1, { what: 'the agent token at the browser' });
      assert.deepEqual(got, ['from-agent']);

      // The agent key may not subscribe (publish-only capability): attach grants publish only, so no messages.
      await assert.rejects(agent.channels.get(`chat:${room}`).history(), (e) => e.code === 40160);
    });

    test('token expiry mid-stream: the subscriber renews through authUrl and gets all 1,500 tokens exactly once', { timeout: 90_000 }, async (t) => {
      const room = randomAlnum(6);
      const before = tokenRequests;
      const browser = new Ably.Realtime({ ...browserOptions(room, 2500), useBinaryProtocol: binary });
      t.after(() => browser.close());
      await withTimeout(browser.connection.whenState('connected'), 20_000, 'browser to connect');
      const connectionId = browser.connection.id;
      const got = [];
      await browser.channels.get(`chat:${room}`).subscribe((m) => got.push(m.data));

      const agent = await ctx.realtime(t, format, { key: AGENT_KEY });
      const ch = agent.channels.get(`chat:${room}`);
      const publishes = [];
      for (let i = 0; i < 1500; i++) {
        publishes.push(ch.publish('token', `t${i}`));
        if (i % 10 === 9) await sleep(60); // ~9 s of streaming: the 2.5 s token expires at least twice (the server checks expiry once a second)
      }
      await withTimeout(Promise.all(publishes), 30_000, 'all publishes acknowledged');
      await waitFor(() => got.length >= 1500, { timeout: 30_000, what: '1,500 tokens at the browser', describeState: () => `${got.length}` });
      await sleep(SETTLE_MS);
      assert.deepEqual(got, Array.from({ length: 1500 }, (_, i) => `t${i}`));
      assert.ok(tokenRequests - before >= 3, `token renewed at least twice (requests: ${tokenRequests - before})`);
      assert.equal(browser.connection.id, connectionId, 'the connection resumed (same id)');
    });

    test('Ably JWT with x-ably-capability works; in-band authorize() keeps the connection', { timeout: TEST_TIMEOUT }, async (t) => {
      const room = randomAlnum(6);
      const now = Math.floor(Date.now() / 1000);
      const makeJwt = () => jwt(MINTER_KEY, { iat: now, exp: now + 600, 'x-ably-capability': JSON.stringify({ [`chat:${room}`]: ['subscribe'] }), 'x-ably-clientId': 'jwt-user' });
      const { key, ...opts } = ctx.options(format);
      void key;
      const client = new Ably.Realtime({ ...opts, authCallback: (_params, cb) => cb(null, makeJwt()) });
      t.after(() => client.close());
      await withTimeout(client.connection.whenState('connected'), 20_000, 'JWT client to connect');
      assert.equal(client.auth.clientId, 'jwt-user');
      const channel = client.channels.get(`chat:${room}`);
      const got = [];
      await channel.subscribe((m) => got.push(m.data));
      await assert.rejects(channel.publish('x', 'y'), (e) => e.code === 40160);

      const id = client.connection.id;
      await withTimeout(client.auth.authorize(), 10_000, 'in-band re-auth');
      assert.equal(client.connection.id, id);
      assert.equal(client.connection.state, 'connected');

      const agent = await ctx.realtime(t, format, { key: AGENT_KEY });
      await agent.channels.get(`chat:${room}`).publish('token', 'after-reauth');
      await waitFor(() => got.length === 1, { what: 'delivery after re-auth' });
    });

    test('REST with a token: history allowed by capability, publish refused with 40160', { timeout: TEST_TIMEOUT }, async () => {
      const room = randomAlnum(6);
      const rest = new Ably.Rest({ ...browserOptions(room), useBinaryProtocol: binary });
      const page = await rest.channels.get(`chat:${room}`).history();
      assert.deepEqual(page.items, []);
      await assert.rejects(rest.channels.get(`chat:${room}`).publish('x', 'y'), (e) => e.code === 40160 && e.statusCode === 401);
    });

    test('a wrong-key token request is refused, and the client fails with a token error', { timeout: TEST_TIMEOUT }, async () => {
      const { key, ...opts } = ctx.options(format);
      void key;
      const bogus = `test.minter:${randomAlnum(24)}`; // right key name, wrong secret
      const client = new Ably.Realtime({
        ...opts,
        authCallback: async (_p, cb) => cb(null, await new Ably.Rest({ ...opts, key: bogus }).auth.createTokenRequest({})),
      });
      try {
        const change = await withTimeout(
          new Promise((r) => client.connection.on((c) => (c.current === 'failed' || c.current === 'disconnected') && r(c))),
          20_000,
          'connection to fail',
        );
        assert.ok([40101, 80019].includes(change.reason?.code), `code ${change.reason?.code} ${change.reason?.message}`);
        assert.ok(!String(change.reason?.message).includes(bogus.split(':')[1]), 'the secret is not echoed back');
      } finally {
        client.close();
      }
    });
  });
}
