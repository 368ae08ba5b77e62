// The comet transport with the real ably-js: what browsers fall back to when WebSockets are blocked (xhr_polling) and
// what Node offers as `comet`. In Node, ably-js 2.x names its comet transport 'comet' (there is no 'xhr_polling' or
// 'xhr_streaming' in Node: asking for them leaves no transport) and streams each recv; `transportParams: {stream:
// false}` makes it poll instead, exactly as the browsers' xhr_polling does. Comet is JSON on the wire whatever
// useBinaryProtocol says, so both settings run (the binary one still uses msgpack for REST).
//
// Every test checks that the client really is on comet (its active transport), then: publish/subscribe with a
// WebSocket peer, resume through cut HTTP connections (support/proxy.mjs) with nothing lost, duplicated or reordered,
// presence, history, the fallback from a blocked WebSocket (support/ws-blocking-proxy.mjs), and a connection that
// moves from comet to WebSocket (when the network unblocks WebSockets, and by recover) with every message once.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FORMATS, SETTLE_MS, fmtErr, seededRandom, sequenceReport, sleep, uniqueName, useServer, waitFor, withTimeout } from './support/helpers.mjs';
import { startProxy } from './support/proxy.mjs';
import { startWsBlockingProxy } from './support/ws-blocking-proxy.mjs';

const ctx = useServer();

const MODES = {
  streaming: { transports: ['comet'] },
  polling: { transports: ['comet'], transportParams: { stream: false } },
};

// A cut while still connecting waits disconnectedRetryTimeout before the next try (15 s by default): keep it short.
const PROXIED = { disconnectedRetryTimeout: 1000 };

const tokenRange = (n, prefix = 'tok') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

function transportOf(client) {
  return client.connection.connectionManager.activeProtocol?.getTransport();
}

function assertComet(client, mode) {
  const transport = transportOf(client);
  assert.equal(transport?.shortName, 'comet', `the client is on comet (it is on ${transport?.shortName})`);
  assert.equal(Boolean(transport.stream), mode === 'streaming', `the comet transport ${mode === 'streaming' ? 'streams' : 'polls'}`);
}

/** Follows a client's connection: the ids it had and the transports it connected on. */
function watch(client) {
  const w = { ids: new Set(), transports: [], states: [] };
  client.connection.on((change) => {
    w.states.push(change.current);
    if (change.current === 'connected') {
      w.ids.add(client.connection.id);
      w.transports.push(transportOf(client)?.shortName);
    }
  });
  return w;
}

for (const [mode, modeOptions] of Object.entries(MODES)) {
  for (const format of FORMATS) {
    describe(`comet ${mode} [${format}]`, () => {
      test('publish and subscribe with a WebSocket peer, both ways: every token once, in order, data intact', { timeout: 60_000 }, async (t) => {
        const name = uniqueName('comet-pubsub');
        const comet = await ctx.realtime(t, format, modeOptions);
        assertComet(comet, mode);
        const ws = await ctx.realtime(t, format);
        assert.equal(transportOf(ws).shortName, 'web_socket');

        const onComet = [];
        const onWs = [];
        await comet.channels.get(name).subscribe('token', (m) => onComet.push(m.data));
        await ws.channels.get(name).subscribe('from-comet', (m) => onWs.push(m.data));

        // 300 tokens from the WebSocket peer, never awaited one by one.
        const expected = tokenRange(300);
        const wsChannel = ws.channels.get(name);
        await Promise.all(expected.map((tok) => wsChannel.publish('token', tok)));
        // 300 from the comet client: ably-js batches what it queued while a send was in flight into one send.
        const fromComet = tokenRange(300, 'c');
        const results = await Promise.all(fromComet.map((tok) => comet.channels.get(name).publish('from-comet', tok)));
        assert.ok(results.every((r) => typeof r?.serials?.[0] === 'string'), 'every comet publish resolves with its serial');

        await waitFor(() => onComet.length >= expected.length && onWs.length >= fromComet.length, {
          what: 'both sides to receive every token',
          describeState: () => `comet got ${onComet.length}, ws got ${onWs.length}`,
        });
        await sleep(SETTLE_MS);
        assert.equal(sequenceReport(onComet, expected), null, `comet subscriber: ${sequenceReport(onComet, expected)}`);
        assert.equal(sequenceReport(onWs, fromComet), null, `WebSocket subscriber: ${sequenceReport(onWs, fromComet)}`);

        // Data fidelity over the JSON comet wire: binary, JSON objects, extras.
        const got = new Promise((resolve) => comet.channels.get(name).subscribe('data', (m) => resolve(m)));
        await wsChannel.publish({ name: 'data', data: Buffer.from([0, 1, 2, 250, 255]), extras: { headers: { responseId: 'r1' } } });
        const message = await withTimeout(got, 10_000, 'the binary message');
        assert.deepEqual([...Buffer.from(message.data)], [0, 1, 2, 250, 255]);
        assert.deepEqual(message.extras, { headers: { responseId: 'r1' } });
        assertComet(comet, mode);
      });

      test('connections cut every 0.5-1.5 s: the comet subscriber and the comet publisher resume, every token once, in order, same connection', { timeout: 90_000 }, async (t) => {
        const name = uniqueName('comet-resume');
        const subProxy = await startProxy(ctx.server.port);
        const pubProxy = await startProxy(ctx.server.port);
        t.after(() => Promise.all([subProxy.close(), pubProxy.close()]));
        const subscriber = await ctx.realtime(t, format, { ...modeOptions, ...PROXIED }, { port: subProxy.port });
        const publisher = await ctx.realtime(t, format, { ...modeOptions, ...PROXIED, echoMessages: false }, { port: pubProxy.port });
        assertComet(subscriber, mode);
        assertComet(publisher, mode);
        const subWatch = watch(subscriber);
        const pubWatch = watch(publisher);
        const subId = subscriber.connection.id;
        const pubId = publisher.connection.id;

        const got = [];
        const channel = subscriber.channels.get(name);
        await channel.subscribe((m) => got.push(m.data));
        let continuityLost = 0;
        channel.on('attached', (change) => change.resumed || continuityLost++);
        channel.on('update', (change) => change.resumed || continuityLost++);

        const TOKENS = 1500;
        const expected = tokenRange(TOKENS);
        let streaming = true;
        const rand = seededRandom(19);
        const cutter = (async () => {
          while (streaming) {
            await sleep(500 + Math.floor(rand() * 1000));
            if (!streaming) break;
            const proxy = rand() < 0.5 ? subProxy : pubProxy;
            if (rand() < 0.5) proxy.cutAll();
            else await proxy.dropThenCut({ direction: 'down', ms: 50 + Math.floor(rand() * 200) });
          }
        })();
        const pubChannel = publisher.channels.get(name);
        const publishes = [];
        try {
          // 15 tokens every 50 ms: about 5 s of stream, several cuts in it.
          for (let i = 0; i < TOKENS; i += 15) {
            for (let j = i; j < Math.min(TOKENS, i + 15); j++) publishes.push(pubChannel.publish('token', expected[j]));
            await sleep(50);
          }
          const results = await withTimeout(Promise.allSettled(publishes), 60_000, 'every publish to settle');
          const rejected = results.filter((r) => r.status === 'rejected');
          assert.equal(rejected.length, 0, `publishes rejected: ${rejected.length}, first ${fmtErr(rejected[0]?.reason)}`);
        } finally {
          streaming = false;
          await cutter;
        }

        await waitFor(() => got.at(-1) === expected.at(-1), { timeout: 30_000, what: 'the last token', describeState: () => `${got.length} received; sub ${subWatch.states.slice(-5)}` });
        await sleep(SETTLE_MS);
        assert.equal(sequenceReport(got, expected), null, `subscriber: ${sequenceReport(got, expected)}`);
        assert.deepEqual([...subWatch.ids], [subId], 'the subscriber resumed its connection every time');
        assert.deepEqual([...pubWatch.ids], [pubId], 'the publisher resumed its connection every time');
        assert.equal(continuityLost, 0, 'channel continuity was never lost');
        const cuts = subProxy.stats.cutConnections + pubProxy.stats.cutConnections;
        assert.ok(cuts >= 3, `the HTTP connections were cut at least 3 times (${cuts})`);
        assert.ok(subWatch.transports.length + pubWatch.transports.length >= 2, 'the clients reconnected');
        assert.ok([...subWatch.transports, ...pubWatch.transports].every((s) => s === 'comet'), 'every reconnect was on comet');
        t.diagnostic(`[comet ${mode} ${format}] ${TOKENS} tokens, ${cuts} connections cut, reconnects sub ${subWatch.transports.length} pub ${pubWatch.transports.length}`);
      });

      test('presence: enter, update and leave over comet, seen by a WebSocket client', { timeout: 60_000 }, async (t) => {
        const name = uniqueName('comet-presence');
        const comet = await ctx.realtime(t, format, { ...modeOptions, clientId: 'comet-member' });
        assertComet(comet, mode);
        const ws = await ctx.realtime(t, format, { clientId: 'ws-member' });
        const wsChannel = ws.channels.get(name);
        const events = [];
        await wsChannel.presence.subscribe((m) => events.push(`${m.action}:${m.clientId}:${m.data ?? ''}`));
        await wsChannel.presence.enter('here');

        const cometChannel = comet.channels.get(name);
        await cometChannel.presence.enter('hello');
        await cometChannel.presence.update('typing');
        await waitFor(() => events.includes('update:comet-member:typing'), { what: 'the update', describeState: () => events.join(', ') });
        const members = await cometChannel.presence.get();
        assert.deepEqual(members.map((m) => m.clientId).sort(), ['comet-member', 'ws-member'], 'the comet client sees both members');
        await cometChannel.presence.leave();
        await waitFor(() => events.includes('leave:comet-member:typing'), { what: 'the leave', describeState: () => events.join(', ') });
        assert.deepEqual(events.filter((e) => e.includes('comet-member')), ['enter:comet-member:hello', 'update:comet-member:typing', 'leave:comet-member:typing']);
        assert.deepEqual((await wsChannel.presence.get()).map((m) => m.clientId), ['ws-member']);
      });

      test('history: a comet subscriber pages back to its attach point (untilAttach)', { timeout: 60_000 }, async (t) => {
        const name = `persisted:${uniqueName('comet-history')}`;
        const publisher = await ctx.realtime(t, format, modeOptions);
        assertComet(publisher, mode);
        const channel = publisher.channels.get(name);
        await Promise.all(tokenRange(30).map((tok) => channel.publish('token', tok)));

        const subscriber = await ctx.realtime(t, format, modeOptions);
        const subChannel = subscriber.channels.get(name);
        await subChannel.attach();
        await channel.publish('token', 'after-attach');
        const page = await subChannel.history({ untilAttach: true, limit: 100 });
        assert.deepEqual(page.items.map((m) => m.data).reverse(), tokenRange(30), 'history up to the attach point, nothing after it');
      });
    });
  }
}

describe('comet fallback and the move to WebSocket', () => {
  for (const format of FORMATS) {
    test(`[${format}] WebSockets blocked by a proxy: ably-js falls back to comet; unblocked, the same connection moves to WebSocket with every token once`, { timeout: 90_000 }, async (t) => {
      const name = uniqueName('comet-fallback');
      const proxy = await startWsBlockingProxy(ctx.server.port);
      t.after(() => proxy.close());
      // Node offers comet only when asked for it; the connectivity check probes the proxy, which blocks it too.
      const client = await ctx.realtime(t, format, { transports: ['web_socket', 'comet'], wsConnectivityCheckUrl: `ws://127.0.0.1:${proxy.port}/`, ...PROXIED }, { port: proxy.port });
      assertComet(client, 'streaming');
      assert.ok(proxy.stats.refusedUpgrades >= 1, 'the WebSocket was tried first and refused');
      const w = watch(client);
      const id = client.connection.id;

      const got = [];
      await client.channels.get(name).subscribe((m) => got.push(m.data));
      const publisher = await ctx.realtime(t, format, { echoMessages: false });
      const pubChannel = publisher.channels.get(name);
      const expected = tokenRange(600);
      let next = 0;
      const publishSome = (n) => Promise.all(expected.slice(next, (next += n)).map((tok) => pubChannel.publish('token', tok)));

      await publishSome(200);
      await waitFor(() => got.length >= 200, { what: '200 tokens over comet' });

      // The network stops blocking WebSockets. ably-js checks WebSocket connectivity on its next connection attempt and
      // forgets its comet preference; the attempt after that is a WebSocket resume.
      proxy.allowWebSockets = true;
      for (let cut = 0; cut < 4 && transportOf(client)?.shortName !== 'web_socket'; cut++) {
        proxy.cutAll();
        await publishSome(100);
        await withTimeout(client.connection.whenState('connected'), 30_000, 'the client to reconnect');
        await waitFor(() => transportOf(client) && client.connection.state === 'connected', { what: 'an active transport' });
        await sleep(500);
      }

      assert.equal(transportOf(client)?.shortName, 'web_socket', `the connection moved to WebSocket (transports: ${w.transports.join(' > ')})`);
      await publishSome(expected.length - next);
      await waitFor(() => got.at(-1) === expected.at(-1), { timeout: 30_000, what: 'the last token', describeState: () => `${got.length} received` });
      await sleep(SETTLE_MS);
      assert.equal(sequenceReport(got, expected), null, sequenceReport(got, expected));
      assert.deepEqual([...w.ids], [id], 'one connection throughout: every reconnect resumed it');
      t.diagnostic(`[${format}] transports after the first: ${w.transports.join(' > ')}; upgrades refused ${proxy.stats.refusedUpgrades}, passed ${proxy.stats.passedUpgrades}`);
    });

    test(`[${format}] recover: a connection made on comet continues on a WebSocket client with every token once`, { timeout: 60_000 }, async (t) => {
      const name = uniqueName('comet-recover');
      const proxy = await startProxy(ctx.server.port);
      t.after(() => proxy.close());
      const before = await ctx.realtime(t, format, { ...MODES.polling }, { port: proxy.port });
      assertComet(before, 'polling');
      const got = [];
      await before.channels.get(name).subscribe((m) => got.push(m.data));
      const publisher = await ctx.realtime(t, format, { echoMessages: false });
      const pubChannel = publisher.channels.get(name);
      const expected = tokenRange(200);
      await Promise.all(expected.slice(0, 100).map((tok) => pubChannel.publish('token', tok)));
      await waitFor(() => got.length >= 100, { what: 'the first 100 tokens over comet' });

      // The page goes away without closing (its network is gone); a new page recovers the connection on a WebSocket.
      const recoveryKey = before.connection.createRecoveryKey();
      await proxy.close();
      await Promise.all(expected.slice(100).map((tok) => pubChannel.publish('token', tok)));
      const after = await ctx.realtime(t, format, { recover: recoveryKey, transports: ['web_socket'] });
      assert.equal(after.connection.id, before.connection.id, 'the recovered connection keeps its id');
      assert.equal(after.connection.errorReason, null, `recovered without error (${fmtErr(after.connection.errorReason)})`);
      await after.channels.get(name).subscribe((m) => got.push(m.data));
      await waitFor(() => got.at(-1) === expected.at(-1), { what: 'the last token', describeState: () => `${got.length} received` });
      await sleep(SETTLE_MS);
      assert.equal(sequenceReport(got, expected), null, sequenceReport(got, expected));
      before.close();
    });
  }
});
