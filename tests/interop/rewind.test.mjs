// Rewind on attach: params {rewind:'2m' | '20' | '2s'}, at most 100 messages, then live messages; hasBacklog.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FORMATS, SETTLE_MS, TEST_TIMEOUT, sleep, uniqueName, useServer, waitFor, withTimeout } from './support/helpers.mjs';

const ctx = useServer();
const OLD = 150;

const range = (from, to) => Array.from({ length: to - from }, (_, i) => `tok-${from + i}`);

/** Publish tok-0..tok-(n-1) and wait for every ACK. */
async function publishOld(channel, n) {
  const pending = [];
  for (let i = 0; i < n; i++) pending.push(channel.publish('token', `tok-${i}`));
  await withTimeout(Promise.all(pending), 30_000, `${n} publishes to be acknowledged`);
}

/** A fresh client whose FIRST get of the channel carries the rewind param; records attached state changes. */
async function rewindSubscriber(t, format, name, rewind) {
  const client = await ctx.realtime(t, format);
  const channel = client.channels.get(name, { params: { rewind } });
  const attachedChanges = [];
  channel.on('attached', (sc) => attachedChanges.push(sc));
  const got = [];
  await withTimeout(
    channel.subscribe((msg) => got.push(msg.data)),
    20_000,
    `attach with rewind=${rewind}`,
  );
  return { channel, got, attachedChanges };
}

for (const format of FORMATS) {
  describe(`rewind [${format}]`, () => {
    test("rewind '2m' delivers the newest 100 of 150 in order, then live messages; hasBacklog true", { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('rewind-2m');
      const publisher = await ctx.realtime(t, format, { echoMessages: false });
      const pubChannel = publisher.channels.get(name);
      await publishOld(pubChannel, OLD);

      const sub = await rewindSubscriber(t, format, name, '2m');
      await waitFor(() => sub.got.length >= 100, {
        what: '100 rewound messages',
        describeState: () => `${sub.got.length} received`,
      });
      await sleep(SETTLE_MS);
      assert.deepEqual(sub.got, range(50, OLD), 'exactly tokens 50..149, oldest first');
      assert.equal(sub.attachedChanges.length, 1, 'one attached state change');
      assert.equal(sub.attachedChanges[0].hasBacklog, true, 'attached state change has hasBacklog=true');

      const live = ['live-0', 'live-1', 'live-2'];
      for (const data of live) await pubChannel.publish('token', data);
      await waitFor(() => sub.got.length >= 100 + live.length, {
        what: 'live messages after the rewound ones',
        describeState: () => JSON.stringify(sub.got.slice(100)),
      });
      await sleep(SETTLE_MS);
      assert.deepEqual(sub.got, [...range(50, OLD), ...live], 'rewound messages followed by live ones, no duplicates');
    });

    test("rewind '20' delivers exactly the last 20; hasBacklog true", { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('rewind-20');
      const publisher = await ctx.realtime(t, format, { echoMessages: false });
      const pubChannel = publisher.channels.get(name);
      await publishOld(pubChannel, OLD);

      const sub = await rewindSubscriber(t, format, name, '20');
      await waitFor(() => sub.got.length >= 20, {
        what: '20 rewound messages',
        describeState: () => `${sub.got.length} received`,
      });
      await sleep(SETTLE_MS);
      assert.deepEqual(sub.got, range(OLD - 20, OLD), 'exactly tokens 130..149, oldest first');
      assert.equal(sub.attachedChanges[0]?.hasBacklog, true, 'attached state change has hasBacklog=true');

      await pubChannel.publish('token', 'live-0');
      await waitFor(() => sub.got.length >= 21, { what: 'a live message after the rewound ones' });
      await sleep(SETTLE_MS);
      assert.deepEqual(sub.got, [...range(OLD - 20, OLD), 'live-0']);
    });

    test("rewind '2s' after a 3 s pause delivers nothing old, but live messages; hasBacklog false", { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('rewind-2s');
      const publisher = await ctx.realtime(t, format, { echoMessages: false });
      const pubChannel = publisher.channels.get(name);
      await publishOld(pubChannel, OLD);
      await sleep(3000);

      const sub = await rewindSubscriber(t, format, name, '2s');
      await sleep(1000);
      assert.deepEqual(sub.got, [], 'no message older than 2 s is rewound');
      assert.equal(!!sub.attachedChanges[0]?.hasBacklog, false, 'attached state change has no backlog');

      await pubChannel.publish('token', 'live-0');
      await waitFor(() => sub.got.length >= 1, { what: 'the live message' });
      await sleep(SETTLE_MS);
      assert.deepEqual(sub.got, ['live-0']);
    });
  });
}
