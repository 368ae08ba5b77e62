// REST: time(), publish (single and array), history pagination, and invalid credentials (REST + realtime).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FORMATS, SETTLE_MS, TEST_TIMEOUT, fmtErr, sleep, uniqueName, useServer, waitFor, withTimeout } from './support/helpers.mjs';

const ctx = useServer();
const WRONG_KEY = 'test.k1:wrongsecret';

for (const format of FORMATS) {
  describe(`REST [${format}]`, () => {
    test('time() returns the server time', { timeout: TEST_TIMEOUT }, async () => {
      const before = Date.now();
      const time = await withTimeout(ctx.rest(format).time(), 20_000, 'time()');
      const afterMs = Date.now();
      assert.equal(typeof time, 'number');
      assert.ok(time >= before - 60_000 && time <= afterMs + 60_000, `server time ${time} is close to local time ${before}`);
    });

    test('publish a single message and an array; realtime subscribers receive them; history pages forwards and backwards', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('rest');
      const subscriber = await ctx.realtime(t, format);
      const live = [];
      await subscriber.channels.get(name).subscribe((msg) => live.push(`${msg.name}:${msg.data}`));

      const channel = ctx.rest(format).channels.get(name);
      const single = await withTimeout(channel.publish('m0', 'd0'), 20_000, 'single publish');
      assert.ok(single && Array.isArray(single.serials), `single publish returns {serials}, got ${JSON.stringify(single)}`);
      const array = await withTimeout(
        channel.publish([
          { name: 'm1', data: 'd1' },
          { name: 'm2', data: 'd2' },
          { name: 'm3', data: { n: 3 } },
          { name: 'm4', data: 'd4' },
        ]),
        20_000,
        'array publish',
      );
      assert.ok(array && Array.isArray(array.serials), `array publish returns {serials}, got ${JSON.stringify(array)}`);

      const expectedLive = ['m0:d0', 'm1:d1', 'm2:d2', 'm3:[object Object]', 'm4:d4'];
      await waitFor(() => live.length >= 5, { what: 'REST-published messages at the realtime subscriber', describeState: () => JSON.stringify(live) });
      await sleep(SETTLE_MS);
      assert.deepEqual(live, expectedLive, 'realtime subscriber receives REST publishes in order');

      // forwards, limit 2: [m0,m1] [m2,m3] [m4]
      const pages = [];
      let page = await channel.history({ limit: 2, direction: 'forwards' });
      for (let guard = 0; ; guard++) {
        assert.ok(guard < 10, 'pagination terminates');
        pages.push(page.items.map((m) => m.name));
        if (!page.hasNext()) {
          assert.equal(page.isLast(), true, 'isLast() on the final page');
          break;
        }
        assert.equal(page.isLast(), false, 'isLast() false while hasNext()');
        page = await page.next();
        assert.ok(page, 'next() returns a page while hasNext() is true');
      }
      assert.deepEqual(pages, [['m0', 'm1'], ['m2', 'm3'], ['m4']], 'forwards pages');
      assert.equal(await page.next(), null, 'next() after the last page gives null');

      // default direction is backwards (newest first)
      const back = await channel.history({ limit: 2 });
      assert.deepEqual(back.items.map((m) => m.name), ['m4', 'm3'], 'backwards first page');
      assert.deepEqual(back.items[1].data, { n: 3 }, 'JSON data survives REST publish + history');
      assert.equal(back.hasNext(), true);
      const back2 = await back.next();
      assert.deepEqual(back2.items.map((m) => m.name), ['m2', 'm1'], 'backwards second page');
    });

    test('an invalid key gives 40101 on REST', { timeout: TEST_TIMEOUT }, async () => {
      const channel = ctx.rest(format, { key: WRONG_KEY }).channels.get(uniqueName('badkey'));
      for (const [what, call] of [
        ['publish', () => channel.publish('x', 'y')],
        ['history', () => channel.history()],
      ]) {
        await assert.rejects(withTimeout(call(), 20_000, `REST ${what} with a wrong key`), (err) => {
          assert.equal(err?.code, 40101, `REST ${what}: expected 40101, got ${fmtErr(err)}`);
          assert.equal(err?.statusCode, 401, `REST ${what}: statusCode`);
          return true;
        });
      }
    });

    test('an invalid key makes the realtime connection fail with 40101', { timeout: TEST_TIMEOUT }, async (t) => {
      const client = await ctx.realtime(t, format, { key: WRONG_KEY }, { waitConnected: false });
      const states = [];
      client.connection.on((sc) => states.push(`${sc.current}${sc.reason ? `(${sc.reason.code})` : ''}`));
      await withTimeout(client.connection.whenState('failed'), 20_000, () => `connection to fail; states so far: ${states.join(' -> ')}`);
      assert.equal(client.connection.errorReason?.code, 40101, `errorReason ${fmtErr(client.connection.errorReason)}`);
      assert.ok(!states.includes('connected'), `never connected: ${states.join(' -> ')}`);
    });
  });
}
