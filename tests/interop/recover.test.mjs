// Connection recovery (RTN16): a new client instance takes over a dropped connection with the recovery key of the
// old one (connection.createRecoveryKey()), keeps the connection id, gets every message it missed exactly once,
// and continues the old msgSerial sequence. An unknown recovery key gives a new connection with 80018, an expired
// one (older than connectionStateTtl) a new connection with 80008.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  Ably,
  FORMATS,
  SETTLE_MS,
  TEST_TIMEOUT,
  closeRealtime,
  fmtErr,
  sequenceReport,
  sleep,
  uniqueName,
  useServer,
  waitFor,
  withTimeout,
} from './support/helpers.mjs';
import { startProxy } from './support/proxy.mjs';

const ctx = useServer();
// A second server whose resume state expires after 2 s (connectionStateTtl), for the expired-key case.
const SHORT_TTL_MS = 2000;
const shortTtl = useServer({ extraArgs: ['--Tokenwire:ConnectionStateTtl=00:00:02'] });

const range = (prefix, from, to) => Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);

async function publishAll(channel, items) {
  await withTimeout(Promise.all(items.map((data) => channel.publish('token', data))), 20_000, `${items.length} publishes to be acknowledged`);
}

/** A Realtime client that is not waited for; closed when `t` ends. */
function newRealtime(t, options) {
  const client = new Ably.Realtime(options);
  t.after(() => closeRealtime(client));
  return client;
}

async function whenConnected(client, what) {
  await withTimeout(
    client.connection.whenState('connected'),
    20_000,
    () => `${what} to connect; state ${client.connection.state}, error ${fmtErr(client.connection.errorReason)}`,
  );
}

for (const format of FORMATS) {
  describe(`connection recovery [${format}]`, () => {
    test('recover with the recovery key of a dropped client: same connection id, missed messages once, msgSerial continues', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('recover');
      const publisher = await ctx.realtime(t, format, { echoMessages: false });
      const pubChannel = publisher.channels.get(name);

      // The old client goes through a proxy, so its network can be taken away without it closing the connection.
      const proxy = await startProxy(ctx.server.port);
      t.after(() => proxy.close());
      const old = await ctx.realtime(t, format, {}, { port: proxy.port });
      const oldChannel = old.channels.get(name);
      const oldGot = [];
      await oldChannel.subscribe((msg) => oldGot.push(msg.data));
      // The old client publishes too, so its msgSerial is past 0 when the key is taken.
      await publishAll(oldChannel, range('own', 0, 3));
      await publishAll(pubChannel, range('before', 0, 10));
      await waitFor(() => oldGot.length >= 13, { what: '13 messages at the old client', describeState: () => JSON.stringify(oldGot) });

      const oldId = old.connection.id;
      const recoveryKey = old.connection.createRecoveryKey();
      assert.ok(recoveryKey, 'createRecoveryKey() returns a key while connected');
      const parsed = JSON.parse(recoveryKey);
      assert.equal(parsed.msgSerial, 3, 'the recovery key carries the next msgSerial');
      assert.ok(parsed.channelSerials[name], 'the recovery key carries the channel serial');

      // The old client loses its network for good (the proxy stops listening); it is never closed by the app.
      await proxy.close();
      await waitFor(() => old.connection.state !== 'connected', { what: 'the old client to notice the drop' });

      const missed = range('missed', 0, 20);
      await publishAll(pubChannel, missed);

      const recovered = newRealtime(t, ctx.options(format, { recover: recoveryKey }));
      await whenConnected(recovered, 'the recovering client');
      assert.equal(recovered.connection.id, oldId, `recover keeps the connection id (reason ${fmtErr(recovered.connection.errorReason)})`);
      assert.equal(recovered.connection.errorReason ?? null, null, 'no error on a successful recover');

      // RTN16j: the channel exists with its serial but is not attached until the app uses it.
      const channel = recovered.channels.get(name);
      const attachedChanges = [];
      channel.on('attached', (change) => attachedChanges.push(change));
      const got = [];
      await withTimeout(channel.subscribe((msg) => got.push(msg.data)), 20_000, 'the recovered channel to attach');
      assert.equal(attachedChanges[0]?.resumed, true, `the re-attach is RESUMED (${JSON.stringify(attachedChanges.map((c) => ({ resumed: c.resumed, reason: fmtErr(c.reason) })))})`);

      await waitFor(() => got.length >= missed.length, { what: `${missed.length} missed messages`, describeState: () => JSON.stringify(got) });

      // msgSerial continues from the key (3): the server must publish it, not take it for a re-send of serial 3.
      const own = await withTimeout(channel.publish('token', 'own-3'), 20_000, 'a publish from the recovered client');
      assert.equal(typeof own?.serials?.[0], 'string', `the publish is acknowledged with a serial (${JSON.stringify(own)})`);
      const live = range('live', 0, 5);
      await publishAll(pubChannel, live);
      const expected = [...missed, 'own-3', ...live];
      await waitFor(() => got.length >= expected.length || got.at(-1) === expected.at(-1), {
        what: 'the live messages after the missed ones',
        describeState: () => JSON.stringify(got),
      });
      await sleep(SETTLE_MS);
      const report = sequenceReport(got, expected);
      assert.ok(report === null, `the recovered client gets exactly the missed messages, then live ones:\n  ${report}`);
    });

    test('a recovery key older than connectionStateTtl gives a new connection with error 80008; the channel still re-attaches from its serial', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('recover-expired');
      const publisher = await shortTtl.realtime(t, format, { echoMessages: false });
      const pubChannel = publisher.channels.get(name);

      const proxy = await startProxy(shortTtl.server.port);
      t.after(() => proxy.close());
      const old = await shortTtl.realtime(t, format, {}, { port: proxy.port });
      assert.equal(old.connection.connectionManager?.connectionStateTtl ?? SHORT_TTL_MS, SHORT_TTL_MS, 'the server advertises connectionStateTtl 2 s');
      const oldChannel = old.channels.get(name);
      const oldGot = [];
      await oldChannel.subscribe((msg) => oldGot.push(msg.data));
      await publishAll(pubChannel, range('before', 0, 5));
      await waitFor(() => oldGot.length >= 5, { what: '5 messages at the old client' });
      const oldId = old.connection.id;
      const recoveryKey = old.connection.createRecoveryKey();
      await proxy.close();

      const missed = range('missed', 0, 5);
      await publishAll(pubChannel, missed);
      // Past the TTL and past the server's next housekeeping sweep (every 5 s), as when an app comes back long after
      // its connection expired.
      await sleep(SHORT_TTL_MS + 6000);

      const recovered = newRealtime(t, shortTtl.options(format, { recover: recoveryKey }));
      await whenConnected(recovered, 'the client recovering an expired connection');
      assert.equal(recovered.connection.errorReason?.code, 80008, `connection.errorReason is 80008 (got ${fmtErr(recovered.connection.errorReason)})`);
      assert.notEqual(recovered.connection.id, oldId, 'a new connection id');

      // The channel serial from the key is still sent on attach (RTL4c1) and the server decides channel continuity
      // on its own (RTN15c7): the channel's messages are still held, so it resumes and replays what was missed.
      const channel = recovered.channels.get(name);
      const got = [];
      await withTimeout(channel.subscribe((msg) => got.push(msg.data)), 20_000, 'attach after an expired recover');
      await publishAll(pubChannel, ['live-0']);
      const expected = [...missed, 'live-0'];
      await waitFor(() => got.length >= expected.length || got.at(-1) === 'live-0', { what: 'the missed and live messages', describeState: () => JSON.stringify(got) });
      await sleep(SETTLE_MS);
      const report = sequenceReport(got, expected);
      assert.ok(report === null, `the channel re-attaches from its serial:\n  ${report}`);
    });

    test('an unknown recovery key gives a new connection with error 80018; the client works normally', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('recover-unknown');
      const recoveryKey = JSON.stringify({ connectionKey: '_____!ablyjs_test_fake-key____', msgSerial: 3, channelSerials: {} });
      const client = newRealtime(t, ctx.options(format, { recover: recoveryKey }));
      await whenConnected(client, 'the client with an unknown recovery key');
      assert.equal(client.connection.errorReason?.code, 80018, `connection.errorReason is 80018 (got ${fmtErr(client.connection.errorReason)})`);
      assert.ok(client.connection.id, 'a new connection id');
      assert.ok(client.connection.key && !client.connection.key.startsWith('_____'), `a new connection key (${client.connection.key})`);

      // A new connection starts msgSerial again at 0 (RTN16f), and publishing and subscribing work.
      const channel = client.channels.get(name);
      const got = [];
      await withTimeout(channel.subscribe((msg) => got.push(msg.data)), 20_000, 'attach after a failed recover');
      const result = await withTimeout(channel.publish('token', 'after-failed-recover'), 20_000, 'publish after a failed recover');
      assert.equal(typeof result?.serials?.[0], 'string', `the publish is acknowledged with a serial (${JSON.stringify(result)})`);
      await waitFor(() => got.length >= 1, { what: 'the message at the subscriber' });
      await sleep(SETTLE_MS);
      assert.deepEqual(got, ['after-failed-recover']);
    });
  });
}
