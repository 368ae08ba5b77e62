// Ably's own AI Transport SDK (@ably/ai-transport 0.8.0), unchanged, against a real `tokenwire serve` process: the
// conversation features an app builds on, beyond one streamed answer. A ten-turn conversation (the agent hands the
// model every earlier turn, paged in from history; a reload paging two messages at a time shows them all), regenerate
// (a second answer beside the first, both selectable, also after a reload), edit (the conversation forks at a user
// message), an answer whose reasoning and text parts stream interleaved, and a client-executed tool (the run suspends on
// the call, the client's result resumes the agent). Each checks exact texts, live and after a reload. Node 22.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Invocation } from '@ably/ai-transport';
import { createAgentSession, createClientSession, createToolResultFork, vercelRunOutcome } from '@ably/ai-transport/vercel';
import { convertToModelMessages, jsonSchema, simulateReadableStream, streamText, tool } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { startServer } from '../interop/support/server.mjs';
import { assistantTexts, channel, clientSession, codec, realtime, runAgent, send, sleep, tokens, waitFor } from './support.mjs';

const FORMATS = ['msgpack', 'json'];
const TIMEOUT = 120_000;
let server;

before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const FINISH = {
  type: 'finish',
  finishReason: { unified: 'stop', raw: 'stop' },
  usage: { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } },
};

/** A mock model streaming `chunks` (between stream-start and finish) that keeps each prompt it is given. */
function recordingModel(chunks, prompts = [], finish = FINISH) {
  const model = new MockLanguageModelV3({
    doStream: async ({ prompt }) => {
      prompts.push(prompt);
      return { stream: simulateReadableStream({ chunkDelayInMs: 1, chunks: [{ type: 'stream-start', warnings: [] }, ...chunks, finish] }) };
    },
  });
  return { model, prompts };
}

const textChunks = (deltas) => [
  { type: 'text-start', id: 't' },
  ...deltas.map((delta) => ({ type: 'text-delta', id: 't', delta })),
  { type: 'text-end', id: 't' },
];

/** A model prompt as [role, text] pairs (the text parts of each message joined). */
const turns = (prompt) =>
  prompt.map((m) => [m.role, typeof m.content === 'string' ? m.content : m.content.filter((p) => p.type === 'text').map((p) => p.text).join('')]);

/** The visible messages of a session's view as [role, text] pairs. */
const visible = (session) =>
  session.view.getMessages().map(({ message }) => [message.role, message.parts.filter((p) => p.type === 'text').map((p) => p.text).join('')]);

const textOf = (message) => message.parts.filter((p) => p.type === 'text').map((p) => p.text).join('');

/** A client session whose history is paged in `limit` messages at a time; resolves with it and the page count. */
async function reload(t, format, name, limit) {
  const session = createClientSession({ client: realtime(t, server, format, { clientId: 'user-1' }), channelName: name });
  await session.connect();
  t.after(() => session.close().catch(() => {}));
  let pages = 0;
  while (session.view.hasOlder()) {
    await session.view.loadOlder(limit);
    pages++;
  }
  return { session, pages };
}

/** The README's agent with tools: a run whose model stops on a client tool's call suspends instead of ending. */
async function agentWithTools(t, format, invocation, model, tools) {
  const session = createAgentSession({ client: realtime(t, server, format, { clientId: 'agent' }), channelName: invocation.sessionName });
  await session.connect();
  const run = session.createRun(Invocation.fromJSON(invocation));
  while (run.view.hasOlder()) await run.view.loadOlder();
  await run.start();
  const conversation = run.view.getMessages().map(({ message }) => message);
  const result = streamText({ model, tools, messages: await convertToModelMessages(conversation, { tools }), abortSignal: run.abortSignal });
  const outcome = await vercelRunOutcome(await run.pipe(result.toUIMessageStream()), result.finishReason);
  if (outcome.reason === 'suspend') await run.suspend();
  else await run.end(outcome);
  return outcome;
}

/** The codec message id of the n-th visible message with `role`. */
const idOf = (session, role, n = 0) => session.view.getMessages().filter(({ message }) => message.role === role)[n].codecMessageId;

for (const format of FORMATS) {
  describe(`@ably/ai-transport conversations on Tokenwire [${format}]`, () => {
    test('ten turns: the agent gives the model every earlier turn; a reload paging two at a time shows them all', { timeout: TIMEOUT }, async (t) => {
      const name = channel('turns');
      const a = await clientSession(t, server, format, name);
      const expected = [];
      for (let i = 0; i < 10; i++) {
        const question = `question ${i} ✓`;
        const answer = tokens(`a${i}-`, 25);
        const { model, prompts } = recordingModel(textChunks(answer));
        const { outcome } = await runAgent(t, server, format, (await send(a.session, question)).invocation, answer, 1, { model });
        assert.equal(outcome.reason, 'complete');
        expected.push(['user', question]);
        assert.deepEqual(turns(prompts[0]), expected, `turn ${i}: the model got the whole conversation so far`);
        expected.push(['assistant', answer.join('')]);
        await waitFor(() => JSON.stringify(visible(a.session)) === JSON.stringify(expected), () => `turn ${i} on the client`);
      }
      const { session: reloaded, pages } = await reload(t, format, name, 2);
      assert.ok(pages >= 5, `history came in several pages (${pages})`);
      assert.deepEqual(visible(reloaded), expected);
    });

    test('regenerate: a second answer beside the first, both selectable, also after a reload', { timeout: TIMEOUT }, async (t) => {
      const name = channel('regen');
      const a = await clientSession(t, server, format, name);
      const first = tokens('first', 40);
      const second = tokens('again', 50);
      await runAgent(t, server, format, (await send(a.session, 'Tell me a joke')).invocation, first, 1);
      await waitFor(() => assistantTexts(a.session)[0] === first.join(''), 'the first answer');

      const regen = await a.session.view.regenerate(idOf(a.session, 'assistant'));
      const { model, prompts } = recordingModel(textChunks(second));
      await runAgent(t, server, format, regen.toInvocation().toJSON(), second, 1, { model });
      assert.deepEqual(turns(prompts[0]), [['user', 'Tell me a joke']], 'the model re-answers the prompt alone');
      await waitFor(() => assistantTexts(a.session)[0] === second.join(''), () => `the new answer shown (${assistantTexts(a.session)})`);

      for (const view of [a.session, (await reload(t, format, name, 3)).session]) {
        await waitFor(() => view.view.getMessages().length === 2, 'two visible messages');
        assert.deepEqual(visible(view), [['user', 'Tell me a joke'], ['assistant', second.join('')]]);
        const branch = view.view.branchSelection(idOf(view, 'assistant'));
        assert.ok(branch.hasSiblings, 'the answer has an alternative');
        assert.deepEqual(branch.siblings.map(textOf), [first.join(''), second.join('')]);
        assert.equal(branch.index, 1);
        branch.select(0);
        assert.deepEqual(visible(view), [['user', 'Tell me a joke'], ['assistant', first.join('')]]);
      }
    });

    test('edit: the conversation forks at the edited prompt; the old branch stays selectable after a reload', { timeout: TIMEOUT }, async (t) => {
      const name = channel('edit');
      const a = await clientSession(t, server, format, name);
      const answers = [tokens('one', 30), tokens('two', 30), tokens('fork', 30)];
      await runAgent(t, server, format, (await send(a.session, 'Plan a trip')).invocation, answers[0], 1);
      await runAgent(t, server, format, (await send(a.session, 'Make it cheaper')).invocation, answers[1], 1);
      await waitFor(() => assistantTexts(a.session).length === 2, 'two answers');

      const userMessage = codec.createUserMessage({ id: 'u-edited', role: 'user', parts: [{ type: 'text', text: 'Plan a trip by train' }] });
      const edited = await a.session.view.edit(idOf(a.session, 'user', 1), [userMessage]);
      const { model, prompts } = recordingModel(textChunks(answers[2]));
      await runAgent(t, server, format, edited.toInvocation().toJSON(), answers[2], 1, { model });
      assert.deepEqual(turns(prompts[0]), [['user', 'Plan a trip'], ['assistant', answers[0].join('')], ['user', 'Plan a trip by train']],
        'the model gets the conversation up to the fork and the edited prompt');

      const forked = [['user', 'Plan a trip'], ['assistant', answers[0].join('')], ['user', 'Plan a trip by train'], ['assistant', answers[2].join('')]];
      const original = [['user', 'Plan a trip'], ['assistant', answers[0].join('')], ['user', 'Make it cheaper'], ['assistant', answers[1].join('')]];
      await waitFor(() => JSON.stringify(visible(a.session)) === JSON.stringify(forked), () => `the fork shown (${JSON.stringify(visible(a.session))})`);
      const { session: reloaded } = await reload(t, format, name, 2);
      for (const session of [a.session, reloaded]) {
        assert.deepEqual(visible(session), forked);
        const branch = session.view.branchSelection(idOf(session, 'user', 1));
        assert.deepEqual(branch.siblings.map(textOf), ['Make it cheaper', 'Plan a trip by train']);
        branch.select(0);
        assert.deepEqual(visible(session), original);
      }
    });

    test('reasoning and text streamed interleaved: both parts end exact, live and after a reload', { timeout: TIMEOUT }, async (t) => {
      const name = channel('parts');
      const a = await clientSession(t, server, format, name);
      const thoughts = tokens('think', 60);
      const words = tokens('say', 60);
      const chunks = [{ type: 'reasoning-start', id: 'r' }, { type: 'text-start', id: 't' }];
      for (let i = 0; i < 60; i++) {
        chunks.push({ type: 'reasoning-delta', id: 'r', delta: thoughts[i] }, { type: 'text-delta', id: 't', delta: words[i] });
      }
      chunks.push({ type: 'reasoning-end', id: 'r' }, { type: 'text-end', id: 't' });
      const { model } = recordingModel(chunks);
      await runAgent(t, server, format, (await send(a.session, 'Think aloud')).invocation, [], 1, { model });

      const parts = (session) => {
        const answer = session.view.getMessages().find(({ message }) => message.role === 'assistant')?.message;
        if (!answer) return {};
        const join = (type) => answer.parts.filter((p) => p.type === type).map((p) => p.text).join('');
        return { reasoning: join('reasoning'), text: join('text') };
      };
      const want = { reasoning: thoughts.join(''), text: words.join('') };
      await waitFor(() => JSON.stringify(parts(a.session)) === JSON.stringify(want), () => `both parts live (${JSON.stringify(parts(a.session)).length})`);
      const { session: reloaded } = await reload(t, format, name, 10);
      await sleep(100);
      assert.deepEqual(parts(reloaded), want);
    });

    test(`a client-executed tool: the run suspends on the tool call; the client's result resumes the agent, live and after a reload`, { timeout: TIMEOUT }, async (t) => {
      const name = channel('tool');
      const a = await clientSession(t, server, format, name);
      const tools = { getWeather: tool({ description: 'The weather where the user is', inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } } }) }) };
      const call = { type: 'tool-call', toolCallId: 'call-1', toolName: 'getWeather', input: JSON.stringify({ city: 'Oslo' }) };
      const stopForTool = { ...FINISH, finishReason: { unified: 'tool-calls', raw: 'tool_calls' } };
      const first = recordingModel([call], [], stopForTool);
      const outcome = await agentWithTools(t, format, (await send(a.session, 'Do I need a coat?')).invocation, first.model, tools);
      assert.equal(outcome.reason, 'suspend');

      const toolPart = (session) => session.view.getMessages().flatMap(({ message }) => message.parts).find((p) => p.toolCallId === 'call-1');
      await waitFor(() => toolPart(a.session)?.state === 'input-available', () => `the tool call on the client (${JSON.stringify(toolPart(a.session))})`);
      assert.deepEqual(toolPart(a.session).input, { city: 'Oslo' });

      const answer = tokens('coat', 30);
      const second = recordingModel(textChunks(answer));
      // What useChat's transport does with a client tool's output: a fork of the suspended run carrying the result.
      const suspended = a.session.view.runOf(idOf(a.session, 'assistant'));
      const { input, sendOptions } = createToolResultFork({
        runMessages: a.session.view.getMessages().filter(({ codecMessageId }) => a.session.view.runOf(codecMessageId)?.runId === suspended.runId),
        parentCodecMessageId: idOf(a.session, 'user'),
        toolCallId: 'call-1',
        result: { output: { tempC: -3 } },
        supersedesRunId: suspended.runId,
      });
      const result = await a.session.view.send([input], sendOptions);
      const resumed = await agentWithTools(t, format, result.toInvocation().toJSON(), second.model, tools);
      assert.equal(resumed.reason, 'complete', String(resumed.error?.message));
      const toolResults = second.prompts[0].filter((m) => m.role === 'tool').flatMap((m) => m.content);
      assert.deepEqual(toolResults.map((c) => [c.toolCallId, c.output]), [['call-1', { type: 'json', value: { tempC: -3 } }]],
        "the model's second call gets the client's result");

      const ended = (session) => toolPart(session)?.state === 'output-available' && assistantTexts(session).join('') === answer.join('');
      await waitFor(() => ended(a.session), () => `the result and the answer on the client (${JSON.stringify(visible(a.session))})`);
      const live = visible(a.session);
      const { session: reloaded } = await reload(t, format, name, 2);
      await waitFor(() => ended(reloaded), () => `the same after a reload (${JSON.stringify(visible(reloaded))})`);
      assert.deepEqual(visible(reloaded), live);
      assert.deepEqual(toolPart(reloaded).output, { tempC: -3 });
    });
  });
}
