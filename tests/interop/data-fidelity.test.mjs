// String, JSON object and binary data, plus extras, survive msgpack <-> JSON translation unchanged.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FORMATS, SETTLE_MS, TEST_TIMEOUT, sleep, uniqueName, useServer, waitFor, withTimeout } from './support/helpers.mjs';

const ctx = useServer();
const BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const EXTRAS = { headers: { responseId: 'r1', n: '2' } };

const MESSAGES = [
  { name: 'string', data: 'hello wörld 🎉 "quoted" \\ \n tab\t' },
  { name: 'empty-string', data: '' },
  { name: 'json', data: { a: 1, b: [true, null, 'x'] } },
  { name: 'binary', data: BYTES },
  { name: 'extras', data: 'with extras', extras: EXTRAS },
  { name: 'binary-extras', data: BYTES, extras: EXTRAS },
];

const other = (format) => (format === 'json' ? 'msgpack' : 'json');

function isBinary(data) {
  return Buffer.isBuffer(data) || data instanceof Uint8Array || data instanceof ArrayBuffer;
}

/** Assert a received (decoded) message equals what was published. */
function assertSame(received, sent, where) {
  assert.equal(received.name, sent.name, `${where}: name`);
  if (Buffer.isBuffer(sent.data)) {
    assert.ok(isBinary(received.data), `${where}: data is binary (got ${typeof received.data} ${JSON.stringify(received.data)?.slice(0, 80)})`);
    assert.ok(Buffer.from(received.data).equals(sent.data), `${where}: bytes 0..255 unchanged`);
  } else {
    assert.deepEqual(received.data, sent.data, `${where}: data`);
  }
  assert.ok(!received.encoding, `${where}: no leftover encoding (got ${received.encoding})`);
  if (sent.extras) assert.deepEqual(received.extras, sent.extras, `${where}: extras`);
  else assert.ok(received.extras === undefined || received.extras === null, `${where}: no extras`);
}

for (const format of FORMATS) {
  describe(`data fidelity, ${format} publisher [${format}]`, () => {
    test(`string, JSON object, binary and extras from a ${format} publisher arrive identical at ${other(format)} and ${format} subscribers`, { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('fidelity');
      const receivers = {};
      for (const rf of [other(format), format]) {
        const client = await ctx.realtime(t, rf);
        const got = [];
        receivers[rf] = got;
        await client.channels.get(name).subscribe((msg) => got.push(msg));
      }

      const publisher = await ctx.realtime(t, format, { echoMessages: false });
      const channel = publisher.channels.get(name);
      for (const m of MESSAGES) await withTimeout(channel.publish(m), 20_000, `publish ${m.name}`);

      await waitFor(() => Object.values(receivers).every((got) => got.length >= MESSAGES.length), {
        what: 'all messages at both subscribers',
        describeState: () => JSON.stringify(Object.fromEntries(Object.entries(receivers).map(([k, v]) => [k, v.length]))),
      });
      await sleep(SETTLE_MS);

      for (const [rf, got] of Object.entries(receivers)) {
        assert.equal(got.length, MESSAGES.length, `${rf} subscriber: message count`);
        MESSAGES.forEach((sent, i) => assertSame(got[i], sent, `${format} -> ${rf} subscriber, ${sent.name}`));
        for (const m of got) {
          assert.equal(typeof m.id, 'string', `${rf}: id is set`);
          assert.equal(typeof m.timestamp, 'number', `${rf}: timestamp is set`);
          assert.equal(m.connectionId, publisher.connection.id, `${rf}: connectionId is the publisher's`);
        }
      }

      // The stored copy is identical too, read back over REST in both formats.
      for (const hf of [format, other(format)]) {
        const page = await ctx.rest(hf).channels.get(name).history({ direction: 'forwards' });
        assert.equal(page.items.length, MESSAGES.length, `${hf} REST history: count`);
        MESSAGES.forEach((sent, i) => assertSame(page.items[i], sent, `${format} -> ${hf} REST history, ${sent.name}`));
      }
    });
  });
}
