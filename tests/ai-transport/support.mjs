// What the @ably/ai-transport suites share: a mock model streaming known tokens, the README's agent, client sessions
// with their history paged in, and the texts a session's view ends with. Each takes the node ({ port, key }) to talk to.

import * as Ably from 'ably';
import { Invocation } from '@ably/ai-transport';
import { createAgentSession, createClientSession, createUIMessageCodec, vercelRunOutcome } from '@ably/ai-transport/vercel';
import { convertToModelMessages, simulateReadableStream, streamText } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { clientOptionsFor, randomAlnum } from '../interop/support/server.mjs';

export const codec = createUIMessageCodec();

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(predicate, what, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await sleep(25);
  }
}

/** Tokens of a response: words with non-ASCII mixed in, so a lost, doubled or reordered token changes the text. */
export function tokens(tag, n) {
  return Array.from({ length: n }, (_, i) => (i % 7 === 3 ? ` ü${tag}${i}✓` : ` ${tag}${i}`));
}

/** A mock model that streams `deltas` as one text part, `delayMs` apart, honouring the abort signal. */
export function mockModel(deltas, delayMs) {
  return new MockLanguageModelV3({
    doStream: async () => ({
      stream: simulateReadableStream({
        chunkDelayInMs: delayMs,
        chunks: [
          { type: 'stream-start', warnings: [] },
          { type: 'text-start', id: 'text-1' },
          ...deltas.map((delta) => ({ type: 'text-delta', id: 'text-1', delta })),
          { type: 'text-end', id: 'text-1' },
          {
            type: 'finish',
            finishReason: { unified: 'stop', raw: 'stop' },
            usage: {
              inputTokens: { total: 3, noCache: 3, cacheRead: 0, cacheWrite: 0 },
              outputTokens: { total: deltas.length, text: deltas.length, reasoning: 0 },
            },
          },
        ],
      }),
    }),
  });
}

/** A realtime client of `node` (through `port` when given: a proxy in front of it). */
export function realtime(t, node, format, extra = {}, port = node.port) {
  const client = new Ably.Realtime(clientOptionsFor(port, node.key, format, { logLevel: 1, ...extra }));
  t.after(() => client.close());
  return client;
}

/** A connected client session on `channelName`, its history paged in (what a page does on load). */
export async function clientSession(t, node, format, channelName, extra = {}, port = undefined) {
  const session = createClientSession({ client: realtime(t, node, format, { clientId: 'user-1', ...extra }, port), channelName });
  const errors = [];
  session.on('error', (e) => errors.push(e));
  await session.connect();
  while (session.view.hasOlder()) await session.view.loadOlder();
  t.after(() => session.close().catch(() => {}));
  return { session, errors };
}

/** The text of every assistant message the session's view holds, in order. */
export function assistantTexts(session) {
  return session.view
    .getMessages()
    .map(({ message }) => message)
    .filter((m) => m.role === 'assistant')
    .map((m) => m.parts.filter((p) => p.type === 'text').map((p) => p.text).join(''));
}

/** Sends a user prompt from a client session; returns the invocation an app would POST to its agent. */
export async function send(session, text) {
  const run = await session.view.send([codec.createUserMessage({ id: `u-${randomAlnum(8)}`, role: 'user', parts: [{ type: 'text', text }] })]);
  return { run, invocation: run.toInvocation().toJSON() };
}

/**
 * The agent of the README: opens the run for an invocation, pages in the conversation, streams the mock model into
 * the session and ends the run with the model's outcome. Resolves with that outcome. `model` replaces the mock model
 * of `deltas` (a scenario's own, e.g. one that records its prompt); `clientOptions` adds to the agent's ably options.
 */
export async function runAgent(t, node, format, invocation, deltas, delayMs, { model = mockModel(deltas, delayMs), clientOptions = {} } = {}) {
  const session = createAgentSession({ client: realtime(t, node, format, { clientId: 'agent', ...clientOptions }), channelName: invocation.sessionName });
  await session.connect();
  const run = session.createRun(Invocation.fromJSON(invocation));
  while (run.view.hasOlder()) await run.view.loadOlder();
  await run.start();
  const conversation = run.view.getMessages().map(({ message }) => message);
  const result = streamText({ model, messages: await convertToModelMessages(conversation), abortSignal: run.abortSignal });
  const piped = await run.pipe(result.toUIMessageStream());
  const outcome = await vercelRunOutcome(piped, result.finishReason);
  await run.end(outcome);
  return { outcome, run };
}

export const channel = (prefix) => `mutable:${prefix}-${randomAlnum(8)}`;
