// Messages larger than maxMessageSize (64 KiB) are refused with 40009; the connection stays usable.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FORMATS, SETTLE_MS, TEST_TIMEOUT, fmtErr, sleep, uniqueName, useServer, waitFor, withTimeout } from './support/helpers.mjs';

const ctx = useServer();
const BIG = 'x'.repeat(70 * 1024);

/** Expect `promise` to reject with ErrorInfo code 40009. */
async function rejects40009(promise, what) {
  await assert.rejects(withTimeout(promise, 20_000, what), (err) => {
    assert.equal(err?.code, 40009, `${what}: expected code 40009, got ${fmtErr(err)}`);
    return true;
  });
}

async function subscriberOn(t, format, name) {
  const client = await ctx.realtime(t, format);
  const got = [];
  await client.channels.get(name).subscribe((msg) => got.push({ name: msg.name, size: typeof msg.data === 'string' ? msg.data.length : -1 }));
  return got;
}

for (const format of FORMATS) {
  describe(`message size limit [${format}]`, () => {
    test('a 70 KiB message is rejected with 40009 and the next publish on the same connection is delivered', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('size');
      const got = await subscriberOn(t, format, name);
      const publisher = await ctx.realtime(t, format);
      const channel = publisher.channels.get(name);
      await channel.attach();
      const connectionId = publisher.connection.id;

      await rejects40009(channel.publish('big', BIG), 'publish of 70 KiB');
      await withTimeout(channel.publish('small', 'ok'), 20_000, 'the next publish');

      await waitFor(() => got.length >= 1, { what: 'the small message at the subscriber' });
      await sleep(SETTLE_MS);
      assert.deepEqual(got, [{ name: 'small', size: 2 }], 'only the small message is delivered');
      assert.equal(publisher.connection.state, 'connected');
      assert.equal(publisher.connection.id, connectionId, 'same connection');
      assert.equal(channel.state, 'attached');
    });

    test('the server itself refuses a 70 KiB realtime message (client-side check bypassed) with 40009', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('size-srv');
      const got = await subscriberOn(t, format, name);
      const publisher = await ctx.realtime(t, format);
      const channel = publisher.channels.get(name);
      await channel.attach();
      const connectionId = publisher.connection.id;
      const advertised = publisher.connection.connectionManager?.connectionDetails?.maxMessageSize;
      assert.equal(publisher.options.maxMessageSize, advertised ?? 65536, 'client uses the server-advertised maxMessageSize');
      assert.ok(publisher.options.maxMessageSize < BIG.length, `advertised maxMessageSize ${publisher.options.maxMessageSize} is below 70 KiB`);

      publisher.options.maxMessageSize = 16 * 1024 * 1024; // let the message reach the server
      await rejects40009(channel.publish('big', BIG), 'server NACK for 70 KiB');
      await withTimeout(channel.publish('small', 'ok'), 20_000, 'the next publish');

      await waitFor(() => got.length >= 1, { what: 'the small message at the subscriber' });
      await sleep(SETTLE_MS);
      assert.deepEqual(got, [{ name: 'small', size: 2 }], 'only the small message is delivered');
      assert.equal(publisher.connection.state, 'connected');
      assert.equal(publisher.connection.id, connectionId, 'same connection');
    });

    test('REST: the server refuses a 70 KiB publish with 40009 (client-side check bypassed); a small one succeeds', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('size-rest');
      const got = await subscriberOn(t, format, name);
      const rest = ctx.rest(format, { maxMessageSize: 16 * 1024 * 1024 });
      const channel = rest.channels.get(name);
      await rejects40009(channel.publish('big', BIG), 'REST publish of 70 KiB');
      await withTimeout(channel.publish('small', 'ok'), 20_000, 'the next REST publish');
      await waitFor(() => got.length >= 1, { what: 'the small message at the subscriber' });
      await sleep(SETTLE_MS);
      assert.deepEqual(got, [{ name: 'small', size: 2 }], 'only the small message is delivered');
    });
  });
}
