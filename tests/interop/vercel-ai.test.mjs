// The guide's Vercel AI SDK publisher (npm `ai@6` streamText → Ably start/token/stop, seeds/vercel-ai-sdk-...-guide)
// against Tokenwire, with `MockLanguageModelV3` from `ai/test` standing in for the model; the subscriber is the real
// `tokenwire subscribe` CLI in a child process, whose printed text must equal the model's text exactly.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { simulateReadableStream, streamText } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { Ably, FORMATS, TEST_TIMEOUT, closeRealtime, uniqueName, useServer, withTimeout } from './support/helpers.mjs';
import { DEFAULT_DLL, REPO_ROOT } from './support/server.mjs';

const ctx = useServer();

// The guide's example deltas (a word split into "skeleton" + "s", a delta carrying "?\n\n"), plus non-ASCII ones.
const DELTAS = ['Why', " don't", ' skeleton', 's', ' fight', ' each', ' other', '?\n\n', 'They', " don't", ' have', ' the', ' guts', '!'];
const TEXT_DELTAS = [...DELTAS, ' 🦴', ' Ünïcödé', ' ✓', ...DELTAS.map((d) => d.toUpperCase())];

/** A mock model streaming TEXT_DELTAS as one text part, the way a provider does (stream-start … finish). */
function mockModel(textId) {
  return new MockLanguageModelV3({
    doStream: async () => ({
      stream: simulateReadableStream({
        chunkDelayInMs: 2,
        chunks: [
          { type: 'stream-start', warnings: [] },
          { type: 'response-metadata', id: 'resp-mock', modelId: 'mock-model', timestamp: new Date(0) },
          { type: 'text-start', id: textId },
          ...TEXT_DELTAS.map((delta) => ({ type: 'text-delta', id: textId, delta })),
          { type: 'text-end', id: textId },
          {
            type: 'finish',
            finishReason: { unified: 'stop', raw: 'stop' },
            usage: {
              inputTokens: { total: 12, noCache: 12, cacheRead: 0, cacheWrite: 0 },
              outputTokens: { total: TEXT_DELTAS.length, text: TEXT_DELTAS.length, reasoning: 0 },
            },
          },
        ],
      }),
    }),
  });
}

/** `tokenwire subscribe` in a child process; resolves once it reports being subscribed. */
async function startCliSubscriber(channelName) {
  const dll = resolve(process.env.TOKENWIRE_DLL ?? DEFAULT_DLL);
  const args = [dll, 'subscribe', '--url', ctx.server.httpUrl, '--key', ctx.server.key, '--channel', channelName, '--exit-after-stop', '--timeout', '60'];
  const child = spawn('dotnet', args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
  child.stderr.setEncoding('utf8');
  const exited = new Promise((r) => child.once('close', (code) => r(code)));
  await withTimeout(
    new Promise((ready, fail) => {
      child.stderr.on('data', (c) => {
        stderr += c;
        if (stderr.includes('subscribed to')) ready();
      });
      exited.then((code) => fail(new Error(`tokenwire subscribe exited with ${code} before subscribing:\n${stderr}`)));
    }),
    30_000,
    () => `tokenwire subscribe to report it subscribed; stderr: ${stderr}`,
  );
  return { child, exited, output: () => ({ stdout, stderr }) };
}

for (const format of FORMATS) {
  describe(`Vercel AI SDK publisher [${format}]`, () => {
    test('streamText output published with the guide code is printed exactly by tokenwire subscribe', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('vercel');
      const textId = `msg_${uniqueName('mock')}`;
      const subscriber = await startCliSubscriber(name);
      t.after(() => subscriber.child.kill('SIGKILL'));

      // ---- the guide's publisher.mjs, unchanged but for the client options and the model ----
      const realtime = new Ably.Realtime(ctx.options(format, { echoMessages: false }));
      t.after(() => closeRealtime(realtime));
      const channel = realtime.channels.get(name);

      let responseId = null;

      function processEvent(event) {
        switch (event.type) {
          case 'text-start':
            responseId = event.id;
            channel.publish({ name: 'start', extras: { headers: { responseId } } });
            break;
          case 'text-delta':
            channel.publish({ name: 'token', data: event.text, extras: { headers: { responseId } } });
            break;
          case 'text-end':
            channel.publish({ name: 'stop', extras: { headers: { responseId } } });
            break;
        }
      }

      async function streamVercelResponse(prompt) {
        const result = streamText({ model: mockModel(textId), prompt });
        for await (const event of result.fullStream) {
          processEvent(event);
        }
      }

      await streamVercelResponse('Tell me a short joke');
      // ---- end of the guide's publisher ----

      assert.equal(responseId, textId, 'the responseId is the text part id, as in the guide');
      const code = await withTimeout(subscriber.exited, 30_000, () => `tokenwire subscribe to exit after stop; ${JSON.stringify(subscriber.output())}`);
      const { stdout, stderr } = subscriber.output();
      assert.equal(code, 0, `tokenwire subscribe exit code; stderr: ${stderr}`);
      const expected = TEXT_DELTAS.join('');
      assert.equal(stdout, `[start ${textId}]\n${expected}\n[end ${textId}]\n`, 'tokenwire subscribe printed the exact text');
    });
  });
}
