// Extra server settings reach the server as --Tokenwire:Setting=value arguments:
// a larger MaxMessageSize is advertised to ably-js and enforced by the server.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FORMATS, SETTLE_MS, TEST_TIMEOUT, fmtErr, sleep, uniqueName, useServer, waitFor, withTimeout } from './support/helpers.mjs';

const MAX = 128 * 1024;
const ctx = useServer({ extraArgs: [`--Tokenwire:MaxMessageSize=${MAX}`] });

for (const format of FORMATS) {
  describe(`server settings via --Tokenwire:* arguments [${format}]`, () => {
    test('MaxMessageSize=128 KiB: advertised, a 70 KiB message is delivered, a 130 KiB one is refused with 40009', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('maxsize');
      const subscriber = await ctx.realtime(t, format);
      const got = [];
      await subscriber.channels.get(name).subscribe((msg) => got.push(msg.data.length));

      const publisher = await ctx.realtime(t, format);
      assert.equal(publisher.options.maxMessageSize, MAX, 'connectionDetails.maxMessageSize is the configured value');
      const channel = publisher.channels.get(name);
      await withTimeout(channel.publish('big', 'x'.repeat(70 * 1024)), 20_000, 'publish of 70 KiB');
      await assert.rejects(withTimeout(channel.publish('huge', 'x'.repeat(130 * 1024)), 20_000, 'publish of 130 KiB'), (err) => {
        assert.equal(err?.code, 40009, `expected 40009, got ${fmtErr(err)}`);
        return true;
      });

      await waitFor(() => got.length >= 1, { what: 'the 70 KiB message at the subscriber' });
      await sleep(SETTLE_MS);
      assert.deepEqual(got, [70 * 1024]);
    });
  });
}
