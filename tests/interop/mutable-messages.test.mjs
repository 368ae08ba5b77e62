// Mutable messages (message-per-response) with the unchanged ably-js: updateMessage / deleteMessage / appendMessage
// over realtime and REST, getMessage / getMessageVersions, live appends as message.append, a late joiner's first sight
// as one message.update with the whole text, rewind counting messages, and history holding one message per response.
// The default `mutable` namespace allows operations; other channels refuse them with 93002.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Ably, FORMATS, SETTLE_MS, TEST_TIMEOUT, sleep, uniqueName, useServer, waitFor, withTimeout } from './support/helpers.mjs';

const ctx = useServer();

/** Collects every message a channel delivers. */
function collect(channel) {
  const got = [];
  const subscribed = channel.subscribe((m) => got.push(m));
  return { got, subscribed };
}

for (const format of FORMATS) {
  describe(`mutable messages [${format}]`, () => {
    test('realtime update and delete reach subscribers whole, with the operation as version', { timeout: TEST_TIMEOUT }, async (t) => {
      const rt = await ctx.realtime(t, format);
      const channel = rt.channels.get(uniqueName('mutable:ops'));
      const { got, subscribed } = collect(channel);
      await subscribed;

      const { serials } = await channel.publish('original', { value: 'original' });
      const serial = serials[0];
      assert.equal(typeof serial, 'string');
      const updated = await channel.updateMessage({ serial, data: { value: 'updated' } }, { clientId: 'editor', description: 'fix', metadata: { reason: 'typo' } });
      assert.equal(typeof updated.versionSerial, 'string');
      assert.ok(updated.versionSerial > serial, 'the version serial sorts after the message serial');
      const deleted = await channel.deleteMessage({ serial, data: {} }, { clientId: 'mod' });
      assert.ok(deleted.versionSerial > updated.versionSerial, 'each version sorts after the previous one');

      await waitFor(() => got.length >= 3, { what: 'create, update, delete', describeState: () => got.map((m) => m.action).join() });
      const [create, update, del] = got;
      assert.equal(create.action, 'message.create');
      assert.equal(update.action, 'message.update');
      assert.equal(update.serial, serial);
      assert.deepEqual(update.data, { value: 'updated' });
      assert.equal(update.name, 'original', 'the name is carried forward');
      assert.equal(update.version.serial, updated.versionSerial);
      assert.equal(update.version.clientId, 'editor');
      assert.equal(update.version.description, 'fix');
      assert.deepEqual(update.version.metadata, { reason: 'typo' });
      assert.equal(update.timestamp, create.timestamp, 'timestamp stays the create time');
      assert.ok(update.version.timestamp > create.timestamp);
      assert.equal(del.action, 'message.delete');
      assert.deepEqual(del.data, {});
      assert.equal(del.version.serial, deleted.versionSerial);
      assert.equal(del.version.clientId, 'mod');
    });

    test('appends arrive live as fragments; a late joiner gets one message.update with the whole text, then fragments', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('mutable:stream');
      const agent = await ctx.realtime(t, format);
      const early = await ctx.realtime(t, format);
      const earlyCh = early.channels.get(name);
      const earlySeen = collect(earlyCh);
      await earlySeen.subscribed;

      const agentCh = agent.channels.get(name);
      const { serials } = await agentCh.publish({ name: 'response', data: '', extras: { headers: { responseId: 'r1' } } });
      const serial = serials[0];
      const tokens = Array.from({ length: 40 }, (_, i) => `t${i} `);
      const first = tokens.slice(0, 20).map((data) => agentCh.appendMessage({ serial, data }));
      await withTimeout(Promise.all(first), 20_000, 'first appends acknowledged');

      // Joins mid-response: its first sight is the whole message so far.
      const late = await ctx.realtime(t, format);
      const lateCh = late.channels.get(name);
      const lateSeen = collect(lateCh);
      await lateSeen.subscribed;
      const rest = tokens.slice(20).map((data) => agentCh.appendMessage({ serial, data }));
      await withTimeout(Promise.all(rest), 20_000, 'remaining appends acknowledged');

      const full = tokens.join('');
      const rebuild = (messages) => {
        let text;
        for (const m of messages) {
          if (m.serial !== serial) continue;
          if (m.action === 'message.create' || m.action === 'message.update') text = m.data;
          else if (m.action === 'message.append') text = (text ?? '') + m.data;
        }
        return text;
      };
      await waitFor(() => rebuild(earlySeen.got) === full && rebuild(lateSeen.got) === full, {
        what: 'both subscribers to rebuild the whole text',
        describeState: () => `early ${JSON.stringify(rebuild(earlySeen.got))}, late ${JSON.stringify(rebuild(lateSeen.got))}`,
      });
      await sleep(SETTLE_MS);
      assert.equal(rebuild(earlySeen.got), full, 'no fragment twice for the early subscriber');
      assert.equal(rebuild(lateSeen.got), full, 'no fragment twice for the late joiner');
      assert.equal(earlySeen.got[0].action, 'message.create');
      assert.ok(earlySeen.got.slice(1).every((m) => m.action === 'message.append'), 'the early subscriber gets only appends after the create');
      assert.ok(earlySeen.got.every((m) => m.name === 'response' && m.extras?.headers?.responseId === 'r1'), 'name and extras are carried forward');
      const lateActions = lateSeen.got.map((m) => m.action);
      const firstSight = lateActions.indexOf('message.update');
      assert.ok(firstSight >= 0 && lateActions.slice(0, firstSight).every((a) => a !== 'message.append'), 'the late joiner sees an update before any append');

      // History holds one message per response, with the whole text.
      const history = await lateCh.history({ limit: 10 });
      const entries = history.items.filter((m) => m.serial === serial);
      assert.equal(entries.length, 1, 'one history entry for the response');
      assert.equal(entries[0].action, 'message.update');
      assert.equal(entries[0].data, full);
    });

    test('rewind counts messages and replays each appended message whole', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('mutable:rewind');
      const agent = await ctx.realtime(t, format);
      const ch = agent.channels.get(name);
      const { serials } = await ch.publish('greeting', 'Hello');
      await ch.appendMessage({ serial: serials[0], data: ' World' }, { clientId: 'appender' });
      const second = await ch.publish('plain', 'untouched');

      const late = await ctx.realtime(t, format);
      const lateCh = late.channels.get(name, { params: { rewind: '2' } });
      const seen = collect(lateCh);
      await seen.subscribed;
      await waitFor(() => seen.got.length >= 2, { what: 'two rewound messages' });
      await sleep(SETTLE_MS);
      assert.equal(seen.got.length, 2, 'rewind=2 is two messages, not three operations');
      assert.equal(seen.got[0].action, 'message.update');
      assert.equal(seen.got[0].data, 'Hello World');
      assert.equal(seen.got[0].version.clientId, 'appender');
      assert.equal(seen.got[1].serial, second.serials[0]);
      assert.equal(seen.got[1].action, 'message.create');
    });

    test('REST getMessage, updateMessage, appendMessage and getMessageVersions', { timeout: TEST_TIMEOUT }, async () => {
      const rest = ctx.rest(format);
      const channel = rest.channels.get(uniqueName('mutable:rest'));
      const { serials } = await channel.publish('original-message', 'Hello');
      const serial = serials[0];
      const original = await channel.getMessage(serial);
      assert.equal(original.data, 'Hello');
      assert.equal(original.action, 'message.create');

      const appended = await channel.appendMessage({ serial, data: ' World' }, { clientId: 'appender-client', description: 'append' });
      assert.equal(typeof appended.versionSerial, 'string');
      const latest = await channel.getMessage(serial);
      assert.equal(latest.action, 'message.update');
      assert.equal(latest.data, 'Hello World');
      assert.equal(latest.name, 'original-message');
      assert.equal(latest.version.serial, appended.versionSerial);
      assert.ok(latest.version.timestamp > original.timestamp);

      await channel.updateMessage({ serial, data: 'Replaced' });
      const versions = await channel.getMessageVersions(serial);
      const actions = versions.items.map((m) => m.action);
      assert.deepEqual(actions, ['message.update', 'message.append', 'message.create'], 'newest first: update, append, create');
      assert.equal(versions.items[0].data, 'Replaced');
    });

    test('appends within appendRollupWindow reach a connection as one; 0 delivers each; a bad value is refused', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('mutable:rollup');
      const rolled = await ctx.realtime(t, format); // Ably's default window, 40 ms
      const each = await ctx.realtime(t, format, { transportParams: { appendRollupWindow: 0 } });
      const rolledSeen = collect(rolled.channels.get(name));
      const eachSeen = collect(each.channels.get(name));
      await Promise.all([rolledSeen.subscribed, eachSeen.subscribed]);
      const agent = (await ctx.realtime(t, format)).channels.get(name);
      const { serials } = await agent.publish('answer', '');
      const tokens = Array.from({ length: 60 }, (_, i) => `w${i} `);
      await withTimeout(Promise.all(tokens.map((data) => agent.appendMessage({ serial: serials[0], data }))), 20_000, 'appends acknowledged');
      const text = (seen) => seen.got.filter((m) => m.action === 'message.append').map((m) => m.data).join('');
      await waitFor(() => text(rolledSeen) === tokens.join('') && text(eachSeen) === tokens.join(''), {
        what: 'both connections to rebuild the text',
        describeState: () => `${text(rolledSeen).length} / ${text(eachSeen).length} of ${tokens.join('').length}`,
      });
      await sleep(SETTLE_MS);
      const appends = (seen) => seen.got.filter((m) => m.action === 'message.append');
      assert.equal(appends(eachSeen).length, tokens.length, 'appendRollupWindow=0: one message per append');
      assert.ok(appends(rolledSeen).length < tokens.length / 2, `rolled up: ${appends(rolledSeen).length} messages for ${tokens.length} appends`);
      assert.equal(appends(rolledSeen)[0].data, tokens[0], 'the first append goes at once, alone');
      const last = appends(rolledSeen).at(-1);
      assert.equal(last.version.serial, appends(eachSeen).at(-1).version.serial, 'a rolled-up append carries the newest version');

      const bad = new Ably.Realtime(ctx.options(format, { transportParams: { appendRollupWindow: 501 } }));
      t.after(() => bad.close());
      await withTimeout(new Promise((resolve) => bad.connection.once('failed', resolve)), 20_000, 'a bad appendRollupWindow to fail the connection');
      assert.equal(bad.connection.errorReason.code, 40003);
    });

    test('operations are refused where they cannot apply', { timeout: TEST_TIMEOUT }, async (t) => {
      const rt = await ctx.realtime(t, format);
      const plain = rt.channels.get(uniqueName('plain'));
      const { serials } = await plain.publish('x', 'y');
      await assert.rejects(plain.appendMessage({ serial: serials[0], data: 'z' }), (e) => e.code === 93002, 'a channel without the rule refuses with 93002');

      const mutable = rt.channels.get(uniqueName('mutable:refused'));
      await assert.rejects(mutable.appendMessage({ serial: '1700000000000-000001', data: 'z' }), (e) => e.code === 40400, 'an unknown serial is 40400');
      const text = await mutable.publish('t', 'text');
      await assert.rejects(mutable.appendMessage({ serial: text.serials[0], data: Buffer.from([1, 2]) }), (e) => e.code === 40013, 'bytes onto a string is 40013');
      const rest = ctx.rest(format);
      await assert.rejects(rest.channels.get(uniqueName('plain')).getMessage('1700000000000-000001'), (e) => e.code === 40400);
    });
  });
}
