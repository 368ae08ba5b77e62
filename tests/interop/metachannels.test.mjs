// Metachannels with the unchanged ably-js: [meta]channel.lifecycle (channel.opened / channel.region.active, and
// channel.occupancy while someone watches) and [meta]connection.lifecycle (connection.opened / connection.closed).
// Clients may subscribe (the [meta]* capability) but never publish.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Ably, FORMATS, TEST_TIMEOUT, uniqueName, useServer, waitFor, withTimeout } from './support/helpers.mjs';
import { randomAlnum } from './support/server.mjs';

// As on Ably, "*" names every ordinary channel but no qualified one: watching metachannels needs "[meta]*" (or "[*]*").
const WATCHER_KEY = `test.watcher:${randomAlnum(24)}`;
const ctx = useServer({
  extraArgs: [`--Tokenwire:Keys:0:Key=${WATCHER_KEY}`, '--Tokenwire:Keys:0:Capability={"[meta]*":["subscribe"],"*":["*"]}'],
});

for (const format of FORMATS) {
  describe(`metachannels [${format}]`, () => {
    test('channel lifecycle and occupancy events, connection lifecycle events', { timeout: TEST_TIMEOUT }, async (t) => {
      const watcher = await ctx.realtime(t, format, { key: WATCHER_KEY });
      const channelEvents = [];
      const connectionEvents = [];
      await watcher.channels.get('[meta]channel.lifecycle').subscribe((m) => channelEvents.push(m));
      await watcher.channels.get('[meta]connection.lifecycle').subscribe((m) => connectionEvents.push(m));

      const name = uniqueName('lifecycle');
      const user = await ctx.realtime(t, format, { clientId: 'user-7' });
      await user.channels.get(name).attach();
      await waitFor(() => channelEvents.some((m) => m.name === 'channel.opened' && m.data.channelId === name), {
        what: 'channel.opened', describeState: () => channelEvents.map((m) => `${m.name}:${m.data.channelId}`).join(),
      });
      const opened = channelEvents.find((m) => m.name === 'channel.opened' && m.data.channelId === name);
      assert.equal(opened.data.status.isActive, true);
      assert.ok(channelEvents.some((m) => m.name === 'channel.region.active' && m.data.channelId === name));
      await waitFor(() => channelEvents.some((m) => m.name === 'channel.occupancy' && m.data.channelId === name && m.data.status.occupancy.metrics.connections === 1), {
        what: 'channel.occupancy with one connection',
      });

      await waitFor(() => connectionEvents.some((m) => m.name === 'connection.opened' && m.data.connectionId === user.connection.id), { what: 'connection.opened' });
      assert.equal(connectionEvents.find((m) => m.data.connectionId === user.connection.id).data.clientId, 'user-7');
      const id = user.connection.id;
      user.close();
      await waitFor(() => connectionEvents.some((m) => m.name === 'connection.closed' && m.data.connectionId === id), { what: 'connection.closed', timeout: 30_000 });

      // Never publishable, and other [meta] channels are not offered.
      await assert.rejects(watcher.channels.get('[meta]channel.lifecycle').publish('x', 'y'), (e) => e.code === 40160);
      const unknown = watcher.channels.get('[meta]log');
      await assert.rejects(withTimeout(unknown.attach(), 20_000, 'attach [meta]log'), (e) => e.code === 40010);
    });

    test('a capability without [meta] cannot subscribe to metachannels', { timeout: TEST_TIMEOUT }, async (t) => {
      const rootOnly = await ctx.realtime(t, format);
      await assert.rejects(withTimeout(rootOnly.channels.get('[meta]connection.lifecycle').attach(), 20_000, 'attach'), (e) => e.code === 40160);
      const token = await ctx.rest(format).auth.requestToken({ capability: { '*': ['subscribe'] } });
      const limited = new Ably.Realtime(ctx.options(format, { key: undefined, token: token.token }));
      t.after(() => limited.close());
      await assert.rejects(withTimeout(limited.channels.get('[meta]channel.lifecycle').attach(), 20_000, 'attach'), (e) => e.code === 40160);
    });
  });
}
