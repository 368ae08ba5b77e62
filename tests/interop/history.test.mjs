// history({untilAttach:true}) + live messages after attach = every message exactly once, in order.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FORMATS, SETTLE_MS, TEST_TIMEOUT, sleep, uniqueName, useServer, waitFor, withTimeout } from './support/helpers.mjs';

const ctx = useServer();
const BEFORE = 300;
const AFTER = 50;

async function publishRange(channel, from, to) {
  const pending = [];
  for (let i = from; i < to; i++) pending.push(channel.publish('token', `tok-${i}`));
  await withTimeout(Promise.all(pending), 30_000, `publishes ${from}..${to - 1} to be acknowledged`);
}

for (const format of FORMATS) {
  describe(`history untilAttach [${format}]`, () => {
    test('300 before attach via paged history + 50 live after attach = all 350 exactly once, in order', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = `persisted:chat-${uniqueName('h')}`;
      const publisher = await ctx.realtime(t, format, { echoMessages: false });
      const pubChannel = publisher.channels.get(name);
      await publishRange(pubChannel, 0, BEFORE);

      const subscriber = await ctx.realtime(t, format);
      const channel = subscriber.channels.get(name);
      const live = [];
      await channel.subscribe((msg) => live.push(msg.data));

      await publishRange(pubChannel, BEFORE, BEFORE + AFTER);
      await waitFor(() => live.length >= AFTER, {
        what: `${AFTER} live messages`,
        describeState: () => `${live.length} received`,
      });
      await sleep(SETTLE_MS);

      const history = [];
      const pageSizes = [];
      let page = await channel.history({ untilAttach: true, limit: 100 });
      for (let guard = 0; ; guard++) {
        assert.ok(guard < 20, 'history pagination terminates');
        pageSizes.push(page.items.length);
        assert.ok(page.items.length <= 100, 'a page holds at most `limit` items');
        history.push(...page.items.map((m) => m.data));
        if (!page.hasNext()) break;
        page = await page.next();
        assert.ok(page, 'next() returns a page while hasNext() is true');
      }
      assert.deepEqual(pageSizes, [100, 100, 100], 'history pages (newest first)');

      const all = [...history.reverse(), ...live];
      const expected = Array.from({ length: BEFORE + AFTER }, (_, i) => `tok-${i}`);
      assert.deepEqual(all, expected, 'untilAttach history reversed + live = all tokens once, in order');
    });
  });
}
