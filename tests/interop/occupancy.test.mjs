// Occupancy with the unchanged ably-js: the `occupancy` channel param (and the `[?occupancy=metrics]` qualified name)
// delivers `[meta]occupancy` events — on attach, at once when a count goes from zero to more or back, debounced
// otherwise — agreeing with REST channel.status(); the channel-metadata capability is required.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Ably, FORMATS, TEST_TIMEOUT, uniqueName, useServer, waitFor, withTimeout } from './support/helpers.mjs';

// A 5 s debounce, so "at once" and "debounced" are told apart with room to spare on a loaded machine (the default is 1 s).
const DEBOUNCE_MS = 5_000;
const ctx = useServer({ extraArgs: ['--Tokenwire:OccupancyEventInterval=00:00:05'] });

for (const format of FORMATS) {
  describe(`occupancy [${format}]`, () => {
    test('occupancy=metrics events follow attachments and presence, and match channel.status()', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('occupancy');
      const watcher = await ctx.realtime(t, format);
      const events = [];
      const watched = watcher.channels.get(name, { params: { occupancy: 'metrics' } });
      await watched.subscribe('[meta]occupancy', (m) => events.push(m.data.metrics));
      await waitFor(() => events.length >= 1, { what: 'the event on attach' });
      assert.equal(events[0].connections, 1);
      assert.equal(events[0].subscribers, 1);
      assert.equal(events[0].presenceMembers, 0);

      // A second subscriber: not a zero crossing, so debounced, but it arrives.
      const viewer = await ctx.realtime(t, format, { clientId: 'viewer' });
      const viewed = viewer.channels.get(name);
      await viewed.attach();
      await waitFor(() => events.at(-1).connections === 2, { what: 'connections 2', describeState: () => JSON.stringify(events) });

      // The first presence member is a zero crossing: at once.
      const before = Date.now();
      await viewed.presence.enter('hi');
      await waitFor(() => events.at(-1).presenceMembers === 1, { what: 'presenceMembers 1', describeState: () => JSON.stringify(events) });
      assert.ok(Date.now() - before < DEBOUNCE_MS - 1_000, 'a mode change is not debounced');

      const status = await ctx.rest(format).channels.get(name).status();
      assert.deepEqual(status.status.occupancy.metrics, events.at(-1), 'REST status and the event agree');

      // Everyone else leaves: the watcher sees its channel back to itself.
      await viewed.detach();
      await waitFor(() => events.at(-1).connections === 1 && events.at(-1).presenceMembers === 0, { what: 'back to one connection', describeState: () => JSON.stringify(events) });
    });

    test('the [?occupancy=metrics] qualified name works; without channel-metadata the attach is refused', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('occupancy-q');
      const client = await ctx.realtime(t, format);
      const qualified = client.channels.get(`[?occupancy=metrics]${name}`);
      const events = [];
      await qualified.subscribe('[meta]occupancy', (m) => events.push(m.data.metrics));
      await waitFor(() => events.length >= 1, { what: 'an event on the qualified channel' });
      assert.equal(events[0].connections, 1);

      const rest = ctx.rest(format);
      const token = await rest.auth.requestToken({ capability: { [name]: ['subscribe'] } });
      const limited = new Ably.Realtime(ctx.options(format, { key: undefined, token: token.token }));
      t.after(() => limited.close());
      const refused = limited.channels.get(name, { params: { occupancy: 'metrics' } });
      await assert.rejects(withTimeout(refused.attach(), 20_000, 'the refused attach'), (e) => e.code === 40160);
    });
  });
}
