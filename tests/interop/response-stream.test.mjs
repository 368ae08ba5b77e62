// The guide's message-per-token pattern: start/token/stop events correlated by extras.headers.responseId.
// 3 publishers stream 3 responses concurrently on one channel; 3 subscribers rebuild all 3 texts.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  FORMATS,
  SETTLE_MS,
  TEST_TIMEOUT,
  seededRandom,
  sleep,
  uniqueName,
  useServer,
  waitFor,
  withTimeout,
} from './support/helpers.mjs';

const ctx = useServer();
const RESPONSES = 3;
const TOKENS_PER_RESPONSE = 200;
const WORDS = ['Why', ' don\'t', ' skeleton', 's', ' fight', ' each', ' other', '?\n\n', 'They', ' have', ' no', ' guts', '!', ' ünï', ' 🦴'];

function tokensFor(r) {
  const rand = seededRandom(1000 + r);
  return Array.from({ length: TOKENS_PER_RESPONSE }, (_, i) => `${WORDS[Math.floor(rand() * WORDS.length)]}[${r}.${i}]`);
}

// Exactly as the guide's publisher.mjs does it (publishes not awaited), plus small pauses between tokens.
async function streamResponse(channel, responseId, tokens, seed) {
  const rand = seededRandom(seed);
  const pending = [];
  pending.push(channel.publish({ name: 'start', extras: { headers: { responseId } } }));
  for (const token of tokens) {
    pending.push(channel.publish({ name: 'token', data: token, extras: { headers: { responseId } } }));
    const r = rand();
    if (r < 0.3) await sleep(Math.floor(r * 10)); // 0-2 ms
    else if (r < 0.5) await new Promise((resolve) => setImmediate(resolve));
  }
  pending.push(channel.publish({ name: 'stop', extras: { headers: { responseId } } }));
  return Promise.all(pending);
}

// Exactly as the guide's subscriber.mjs does it, plus an event log to check ordering.
async function guideSubscriber(channel) {
  const responses = new Map();
  const log = []; // [event, responseId]
  await channel.subscribe('start', (message) => {
    const responseId = message.extras?.headers?.responseId;
    log.push(['start', responseId]);
    responses.set(responseId, '');
  });
  await channel.subscribe('token', (message) => {
    const responseId = message.extras?.headers?.responseId;
    log.push(['token', responseId]);
    const currentText = responses.get(responseId) || '';
    responses.set(responseId, currentText + message.data);
  });
  await channel.subscribe('stop', (message) => {
    const responseId = message.extras?.headers?.responseId;
    log.push(['stop', responseId]);
  });
  return { responses, log };
}

for (const format of FORMATS) {
  describe(`start/token/stop responses [${format}]`, () => {
    test('3 concurrent responses from 3 publishers are rebuilt exactly by 3 subscribers', { timeout: TEST_TIMEOUT }, async (t) => {
      const name = uniqueName('responses');
      const responseIds = Array.from({ length: RESPONSES }, (_, r) => `msg_${r}_${uniqueName('resp')}`);
      const tokens = responseIds.map((_, r) => tokensFor(r));

      const subscribers = [];
      for (let s = 0; s < 3; s++) {
        const client = await ctx.realtime(t, format);
        subscribers.push(await guideSubscriber(client.channels.get(name)));
      }

      const publishers = [];
      for (let r = 0; r < RESPONSES; r++) {
        const client = await ctx.realtime(t, format, { echoMessages: false });
        publishers.push(client.channels.get(name));
      }

      await withTimeout(
        Promise.all(publishers.map((ch, r) => streamResponse(ch, responseIds[r], tokens[r], 42 + r))),
        30_000,
        'all publishes of the 3 responses to be acknowledged',
      );

      const total = RESPONSES * (TOKENS_PER_RESPONSE + 2);
      await waitFor(() => subscribers.every((s) => s.log.length >= total), {
        timeout: 30_000,
        what: `each subscriber to receive ${total} events`,
        describeState: () => subscribers.map((s) => s.log.length).join(', '),
      });
      await sleep(SETTLE_MS);

      subscribers.forEach((sub, s) => {
        assert.equal(sub.log.length, total, `subscriber ${s}: event count`);
        for (let r = 0; r < RESPONSES; r++) {
          const id = responseIds[r];
          const events = sub.log.filter(([, rid]) => rid === id).map(([ev]) => ev);
          assert.equal(events.length, TOKENS_PER_RESPONSE + 2, `subscriber ${s}, response ${r}: events`);
          assert.equal(events[0], 'start', `subscriber ${s}, response ${r}: start comes first`);
          assert.equal(events.at(-1), 'stop', `subscriber ${s}, response ${r}: stop comes last`);
          assert.ok(events.slice(1, -1).every((ev) => ev === 'token'), `subscriber ${s}, response ${r}: only tokens between start and stop`);
          assert.equal(sub.responses.get(id), tokens[r].join(''), `subscriber ${s}, response ${r}: rebuilt text`);
        }
        assert.deepEqual([...sub.responses.keys()].sort(), [...responseIds].sort(), `subscriber ${s}: no unknown responseIds`);
      });
    });
  });
}
