// Continuous token stream: 1,000 unawaited publishes fan out to 3 subscribers, in order, exactly once.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FORMATS, SETTLE_MS, TEST_TIMEOUT, sleep, uniqueName, useServer, waitFor, withTimeout } from './support/helpers.mjs';

const ctx = useServer();
const TOKENS = 1000;

for (const format of FORMATS) {
  describe(`continuous stream [${format}]`, () => {
    test('1,000 unawaited publishes reach 3 subscribers in order, exactly once; no echo to the publisher', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('stream');
      const expected = Array.from({ length: TOKENS }, (_, i) => `tok-${i}`);

      // Subscribers attach before anything is published.
      const received = [];
      for (let s = 0; s < 3; s++) {
        const client = await ctx.realtime(t, format);
        const got = [];
        received.push(got);
        await client.channels.get(name).subscribe((msg) => got.push({ name: msg.name, data: msg.data }));
      }

      const publisher = await ctx.realtime(t, format, { echoMessages: false });
      const pubChannel = publisher.channels.get(name);
      const echoed = [];
      await pubChannel.subscribe((msg) => echoed.push(msg.data));

      const publishes = [];
      for (let i = 0; i < TOKENS; i++) publishes.push(pubChannel.publish('token', `tok-${i}`));
      const results = await withTimeout(Promise.allSettled(publishes), 30_000, 'all 1,000 publish promises to settle');
      const rejected = results.filter((r) => r.status === 'rejected');
      assert.equal(rejected.length, 0, `publishes rejected: ${rejected.length}, first: ${rejected[0]?.reason?.message}`);

      await waitFor(() => received.every((got) => got.length >= TOKENS), {
        timeout: 30_000,
        what: `each subscriber to receive ${TOKENS} messages`,
        describeState: () => received.map((got) => got.length).join(', '),
      });
      await sleep(SETTLE_MS);

      received.forEach((got, s) => {
        assert.ok(got.every((m) => m.name === 'token'), `subscriber ${s}: every message is named "token"`);
        assert.deepEqual(
          got.map((m) => m.data),
          expected,
          `subscriber ${s} receives all tokens in order, exactly once`,
        );
      });
      assert.deepEqual(echoed, [], 'publisher with echoMessages:false receives none of its own messages');
    });
  });
}
