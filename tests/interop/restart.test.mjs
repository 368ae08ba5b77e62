// Server restarts. A SIGKILLed server restarted on the same data folder keeps every acknowledged message of a
// persisted channel (history in order, rewind) and continues the serial order after the old serials. On SIGTERM
// the server tells connected clients to reconnect (DISCONNECTED) and exits with code 0.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  Ably,
  FORMATS,
  SETTLE_MS,
  closeRealtime,
  fmtErr,
  sequenceReport,
  sleep,
  uniqueName,
  waitFor,
  withTimeout,
} from './support/helpers.mjs';
import { clientOptionsFor, randomKey, startServer } from './support/server.mjs';

const OLD = 300;
const range = (prefix, from, to) => Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);

/** A fresh data folder, removed (with every server started on it stopped first) when `t` ends. */
async function useDataDir(t) {
  const dataDir = await mkdtemp(join(tmpdir(), 'tokenwire-restart-'));
  const servers = [];
  t.after(async () => {
    for (const server of servers) await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  });
  const key = randomKey();
  return {
    dataDir,
    key,
    async start() {
      const server = await startServer({ dataDir, key });
      servers.push(server);
      return server;
    },
  };
}

async function connect(t, server, format, extra = {}) {
  const client = new Ably.Realtime(clientOptionsFor(server.port, server.key, format, extra));
  t.after(() => closeRealtime(client));
  await withTimeout(client.connection.whenState('connected'), 20_000, () => `client to connect; state ${client.connection.state}, error ${fmtErr(client.connection.errorReason)}`);
  return client;
}

/** Every page of REST history, forwards, `limit` per page. Returns the messages and the page sizes. */
async function allHistoryForwards(rest, name, limit) {
  const items = [];
  const pageSizes = [];
  let page = await rest.channels.get(name).history({ direction: 'forwards', limit });
  for (let guard = 0; ; guard++) {
    assert.ok(guard < 50, 'history pagination terminates');
    pageSizes.push(page.items.length);
    items.push(...page.items);
    if (!page.hasNext()) break;
    page = await page.next();
    assert.ok(page, 'next() returns a page while hasNext() is true');
  }
  return { items, pageSizes };
}

for (const format of FORMATS) {
  describe(`server restart [${format}]`, () => {
    test(`SIGKILL, restart on the same data folder: ${OLD} persisted messages intact, serials continue after the old ones, rewind works`, { timeout: 120_000 }, async (t) => {
      const data = await useDataDir(t);
      const name = `persisted:restart-${uniqueName('r')}`;

      const first = await data.start();
      const publisher = await connect(t, first, format, { echoMessages: false });
      const pubChannel = publisher.channels.get(name);
      const oldTokens = range('tok', 0, OLD);
      const results = await withTimeout(
        Promise.all(oldTokens.map((data) => pubChannel.publish('token', data))),
        30_000,
        `${OLD} publishes to be acknowledged`,
      );
      const oldSerials = results.map((r) => r?.serials?.[0]);
      assert.ok(oldSerials.every((s) => typeof s === 'string'), 'every publish was acknowledged with a serial');
      const lastOldSerial = oldSerials.at(-1);

      // Crash: no shutdown, no flush. Everything acknowledged must already be on disk.
      const killed = await first.kill('SIGKILL');
      assert.equal(killed?.signal, 'SIGKILL', `the first server was killed (${JSON.stringify(killed)})`);
      await closeRealtime(publisher);

      const second = await data.start();
      const rest = new Ably.Rest(clientOptionsFor(second.port, second.key, format));

      const before = await allHistoryForwards(rest, name, 100);
      const historyReport = sequenceReport(before.items.map((m) => m.data), oldTokens);
      assert.ok(historyReport === null, `REST history (forwards, paged) after the restart has all ${OLD} messages in order:\n  ${historyReport}`);
      assert.deepEqual(before.pageSizes, [100, 100, 100], 'history pages of 100');
      assert.deepEqual(before.items.map((m) => m.serial), oldSerials, 'history serials are the serials the publishes were acknowledged with');

      // A subscriber rewinding 10 gets the newest 10 stored messages, then live ones.
      const subscriber = await connect(t, second, format);
      const subChannel = subscriber.channels.get(name, { params: { rewind: '10' } });
      const got = [];
      await withTimeout(subChannel.subscribe((msg) => got.push(msg.data)), 20_000, 'attach with rewind=10 after the restart');
      await waitFor(() => got.length >= 10, { what: '10 rewound messages', describeState: () => JSON.stringify(got) });

      const newPublisher = await connect(t, second, format, { echoMessages: false });
      const newChannel = newPublisher.channels.get(name);
      const newTokens = range('new', 0, 5);
      const newResults = await withTimeout(Promise.all(newTokens.map((data) => newChannel.publish('token', data))), 20_000, 'new publishes to be acknowledged');
      const newSerials = newResults.map((r) => r?.serials?.[0]);
      assert.ok(newSerials.every((s) => typeof s === 'string'), 'every new publish was acknowledged with a serial');
      assert.ok(newSerials[0] > lastOldSerial, `the first new serial ${newSerials[0]} sorts after the last old serial ${lastOldSerial}`);
      assert.ok(newSerials.every((s, i) => i === 0 || s > newSerials[i - 1]), `new serials increase: ${newSerials.join(', ')}`);
      assert.ok(newSerials.every((s) => !oldSerials.includes(s)), 'no serial is reused');

      const expected = [...range('tok', OLD - 10, OLD), ...newTokens];
      await waitFor(() => got.length >= expected.length || got.at(-1) === expected.at(-1), {
        what: 'the live messages after the rewound ones',
        describeState: () => JSON.stringify(got),
      });
      await sleep(SETTLE_MS);
      const rewindReport = sequenceReport(got, expected);
      assert.ok(rewindReport === null, `rewind=10 gives the last 10 stored messages, then the new live ones:\n  ${rewindReport}`);

      const after = await allHistoryForwards(rest, name, 100);
      const afterReport = sequenceReport(after.items.map((m) => m.data), [...oldTokens, ...newTokens]);
      assert.ok(afterReport === null, `history after the restart continues in order:\n  ${afterReport}`);
    });

    test('SIGKILL in the middle of an unawaited stream: after a restart, history is an in-order prefix holding every acknowledged message', { timeout: 120_000 }, async (t) => {
      const data = await useDataDir(t);
      const name = `persisted:crash-${uniqueName('c')}`;
      const total = 3000;
      const tokens = range('tok', 0, total);

      const first = await data.start();
      const publisher = await connect(t, first, format, { echoMessages: false });
      const pubChannel = publisher.channels.get(name);
      await withTimeout(pubChannel.attach(), 20_000, 'attach');
      const acked = new Set();
      const pending = [];
      // 100 publishes every 20 ms (about 600 ms for all); the server is killed about half-way.
      const streamed = (async () => {
        for (let i = 0; i < total; i += 100) {
          for (let k = i; k < i + 100; k++) {
            pending.push(pubChannel.publish('token', tokens[k]).then(() => acked.add(k), () => {}));
          }
          await sleep(20);
        }
      })();
      await waitFor(() => acked.size >= 1000, { timeout: 20_000, what: '1000 acknowledged publishes before the kill', describeState: () => `${acked.size} acknowledged` });
      const killed = await first.kill('SIGKILL');
      assert.equal(killed?.signal, 'SIGKILL', `the server was killed (${JSON.stringify(killed)})`);
      await waitFor(() => publisher.connection.state !== 'connected', { what: 'the publisher to notice the crash' });
      await streamed;
      const ackedAtCrash = [...acked].sort((a, b) => a - b);
      assert.deepEqual(ackedAtCrash, ackedAtCrash.map((_, i) => i), 'ACKs arrive in publish order (acknowledged = a prefix)');
      await closeRealtime(publisher);
      await Promise.allSettled(pending);

      const second = await data.start();
      const rest = new Ably.Rest(clientOptionsFor(second.port, second.key, format));
      const { items } = await allHistoryForwards(rest, name, 1000);
      const stored = items.map((m) => m.data);
      const report = sequenceReport(stored, tokens.slice(0, stored.length));
      assert.ok(report === null, `history after the crash is tok-0..tok-${stored.length - 1} in order, no gaps or duplicates:\n  ${report}`);
      assert.ok(stored.length >= ackedAtCrash.length, `every acknowledged message survived the crash: ${ackedAtCrash.length} acknowledged, ${stored.length} stored`);
      t.diagnostic(`[${format}] SIGKILL mid-stream: ${ackedAtCrash.length} acknowledged before the crash, ${stored.length} in history after the restart`);
    });

    test('SIGTERM: a connected client gets DISCONNECTED (80003) and the server exits with code 0 within 10 s', { timeout: 60_000 }, async (t) => {
      const data = await useDataDir(t);
      const server = await data.start();
      const client = await connect(t, server, format);
      await withTimeout(client.channels.get(uniqueName('sigterm')).attach(), 20_000, 'attach');

      const disconnected = new Promise((resolve) => client.connection.once('disconnected', resolve));
      const startedAt = Date.now();
      const exitPromise = server.kill('SIGTERM', 10_000);
      const change = await withTimeout(disconnected, 10_000, () => `the client to see 'disconnected' (state ${client.connection.state})`);
      assert.equal(change.reason?.code, 80003, `disconnected with reason 80003 (got ${fmtErr(change.reason)})`);
      // The server's own DISCONNECTED ("Server shutting down; reconnect"), not just a dropped socket.
      assert.match(change.reason?.message ?? '', /shutting down/i, `the reason is the server's DISCONNECTED (got ${fmtErr(change.reason)})`);

      const exit = await exitPromise;
      const exitMs = Date.now() - startedAt;
      assert.ok(exit, `the server exits within 10 s of SIGTERM\n${server.output()}`);
      assert.equal(exit.code, 0, `exit code 0 (got ${JSON.stringify(exit)})\n${server.output()}`);
      t.diagnostic(`[${format}] SIGTERM to exit: ${exitMs} ms`);
    });
  });
}
