// Message annotations (reactions, feedback on an AI answer) with the unchanged ably-js: realtime and REST publish,
// annotation subscribers get each annotation, message subscribers get the message's summary (message.summary),
// and REST lists a message's annotations, paged, oldest first.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FORMATS, TEST_TIMEOUT, uniqueName, useServer, waitFor, withTimeout } from './support/helpers.mjs';

const ctx = useServer();
const MODES = ['publish', 'subscribe', 'annotation_publish', 'annotation_subscribe'];

for (const format of FORMATS) {
  describe(`annotations [${format}]`, () => {
    test('a reaction reaches annotation subscribers and updates the summary message subscribers get', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('mutable:annotations');
      const alice = await ctx.realtime(t, format, { clientId: 'alice' });
      const bob = await ctx.realtime(t, format, { clientId: 'bob' });
      const aliceCh = alice.channels.get(name, { modes: MODES });
      const bobCh = bob.channels.get(name, { modes: MODES });
      const messages = [];
      const annotations = [];
      await bobCh.subscribe((m) => messages.push(m));
      await bobCh.annotations.subscribe((a) => annotations.push(a));
      await aliceCh.attach();

      const { serials } = await aliceCh.publish('answer', 'The answer is 42');
      await waitFor(() => messages.length === 1, { what: 'the message' });
      await aliceCh.annotations.publish(serials[0], { type: 'feedback:distinct.v1', name: '👍' });
      await bobCh.annotations.publish(messages[0], { type: 'feedback:distinct.v1', name: '👍' });
      await bobCh.annotations.publish(messages[0], { type: 'feedback:distinct.v1', name: '👎' });
      await ctx.rest(format, { clientId: 'carol' }).channels.get(name).annotations.publish(serials[0], { type: 'feedback:multiple.v1', name: 'star', count: 3 });

      await waitFor(() => annotations.length === 4 && messages.filter((m) => m.action === 'message.summary').length === 4, {
        what: 'four annotations and four summaries',
        describeState: () => `${annotations.length} annotations, ${messages.length} messages`,
      });
      assert.deepEqual(annotations.map((a) => [a.action, a.messageSerial, a.type, a.name, a.clientId]), [
        ['annotation.create', serials[0], 'feedback:distinct.v1', '👍', 'alice'],
        ['annotation.create', serials[0], 'feedback:distinct.v1', '👍', 'bob'],
        ['annotation.create', serials[0], 'feedback:distinct.v1', '👎', 'bob'],
        ['annotation.create', serials[0], 'feedback:multiple.v1', 'star', 'carol'],
      ]);
      for (let i = 1; i < annotations.length; i++) assert.ok(annotations[i].serial > annotations[i - 1].serial, 'annotation serials increase');
      assert.ok(annotations[0].serial > serials[0], 'an annotation sorts after its message');

      const summary = messages.at(-1);
      assert.equal(summary.action, 'message.summary');
      assert.equal(summary.serial, serials[0]);
      const s = summary.annotations.summary;
      assert.deepEqual(s['feedback:distinct.v1']['👍'].clientIds, ['alice', 'bob']);
      assert.equal(s['feedback:distinct.v1']['👍'].total, 2);
      assert.equal(s['feedback:distinct.v1']['👎'].total, 1);
      assert.equal(s['feedback:multiple.v1'].star.total, 3);
      assert.deepEqual(s['feedback:multiple.v1'].star.clientIds, { carol: 3 });

      // Deleting withdraws the client's reaction from the summary.
      await bobCh.annotations.delete(serials[0], { type: 'feedback:distinct.v1', name: '👎' });
      await waitFor(() => messages.filter((m) => m.action === 'message.summary').length === 5, { what: 'the summary after the delete' });
      assert.equal(messages.at(-1).annotations.summary['feedback:distinct.v1']['👎'], undefined);

      // REST: all annotations of the message, oldest first, in pages.
      const rest = ctx.rest(format);
      let page = await rest.channels.get(name).annotations.get(serials[0], { limit: 2 });
      const listed = [...page.items];
      while (page.hasNext()) {
        page = await page.next();
        listed.push(...page.items);
      }
      assert.deepEqual(listed.map((a) => a.name), ['👍', '👍', '👎', 'star', '👎']);
      assert.equal(listed.at(-1).action, 'annotation.delete');
      // History shows the message with its summary.
      const history = await rest.channels.get(name).history();
      assert.equal(history.items[0].annotations.summary['feedback:distinct.v1']['👍'].total, 2);
    });

    test('annotations are refused without the rule, without a clientId for client-counting types, or of an unknown type', { timeout: TEST_TIMEOUT }, async (t) => {
      const rt = await ctx.realtime(t, format, { clientId: 'dave' });
      const plain = rt.channels.get(uniqueName('plain'), { modes: MODES });
      const { serials } = await plain.publish('m', 'x');
      await assert.rejects(plain.annotations.publish(serials[0], { type: 'r:distinct.v1', name: 'x' }), (e) => e.code === 93002);
      const mutable = rt.channels.get(uniqueName('mutable:bad'), { modes: MODES });
      const created = await mutable.publish('m', 'x');
      await assert.rejects(mutable.annotations.publish(created.serials[0], { type: 'r:sentiment.v9', name: 'x' }), (e) => e.code === 40003);
      await assert.rejects(mutable.annotations.publish('1700000000000-000001', { type: 'r:distinct.v1', name: 'x' }), (e) => e.code === 40400);
      const anonymous = ctx.rest(format).channels.get(mutable.name);
      await assert.rejects(anonymous.annotations.publish(created.serials[0], { type: 'r:distinct.v1', name: 'x' }), (e) => e.code === 40012);
      await withTimeout(anonymous.annotations.publish(created.serials[0], { type: 'r:total.v1' }), 10_000, 'an anonymous total.v1 annotation');
    });
  });
}
