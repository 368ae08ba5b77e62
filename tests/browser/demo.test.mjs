// The browser demo (tokenwire serve at /) in real headless Chromium, against the real server process:
// a prompt streams a readable answer token by token; a second tab sees the same stream; a reload mid-answer hydrates
// the answer in progress and continues live; both tabs end with exactly the text the agent published; a reload after
// the answers finished shows the whole conversation again (from the persisted demo channel's history); the status line
// says "connected", "reconnecting…" while the transport is down, and how many tokens a (re)load caught up.
// The pattern switch (/?pattern=response): the same with message-per-response, one message per answer on the mutable
// response channel, each token appended; a reload gets the answer in progress whole and continues with the appends.
//
// Chromium: Debian's `chromium` (/usr/bin/chromium, or $CHROMIUM_PATH) driven by playwright-core. Without it the test
// is skipped locally and FAILS in CI (CI=true): a browser test that silently does not run proves nothing.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { haveChromium, launchChromium } from './support/chromium.mjs';
import { fileURLToPath } from 'node:url';
import { startServer } from '../interop/support/server.mjs';

const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
// Slow enough that a reload (page load, token, attach, catch-up) lands mid-answer: the joke answer (whole sentences up
// to 80 tokens, more than 60 of them) takes 6 s or more at 10 tokens/s.
const TOKENS_PER_SECOND = 10;
const ANSWER_TOKENS = 80;
const PROMPT = 'Tell me a joke';
const SECOND_PROMPT = 'Tell me a story';

/** The answer as the agent published it: the responseId's tokens, from the channel's history (the server's own record). */
async function publishedAnswer(server, channel, responseId) {
  const url = `${server.httpUrl}/channels/${encodeURIComponent(channel)}/messages?direction=forwards&limit=1000`;
  const res = await fetch(url, { headers: { authorization: `Basic ${Buffer.from(server.key).toString('base64')}` } });
  assert.equal(res.status, 200, `history: ${res.status} ${await res.clone().text()}`);
  const messages = (await res.json()).filter((m) => m.extras?.headers?.responseId === responseId);
  assert.ok(messages.some((m) => m.name === 'stop'), 'history holds the stop of the answer');
  const tokens = messages.filter((m) => m.name === 'token').map((m) => m.data);
  return { text: tokens.join(''), tokens: tokens.length };
}

/** The status line's texts, in order, from the first paint (installed before any page script runs). */
function recordStatuses() {
  window.statusTexts = [];
  document.addEventListener('DOMContentLoaded', () => {
    const el = document.getElementById('status');
    const record = () => {
      if (window.statusTexts.at(-1) !== el.textContent) window.statusTexts.push(el.textContent);
    };
    record();
    new MutationObserver(record).observe(el, { childList: true, characterData: true, subtree: true });
  });
}

/** The answers the page shows, in page order. */
function shownAnswers(page) {
  return page.$$eval('.response', (els) =>
    els.map((el) => ({
      id: el.dataset.responseId,
      state: el.dataset.state,
      prompt: el.querySelector('.prompt').textContent,
      text: el.querySelector('.text').textContent,
    })),
  );
}

/** The page's state of one response (window.tokenwireDemo is set by app.js once it is live). */
function responseState(page, responseId) {
  return page.evaluate((id) => {
    const r = window.tokenwireDemo?.responses.get(id);
    return r ? { text: r.text, tokens: r.tokens, hydratedTokens: r.hydratedTokens, state: r.state, prompt: r.promptEl.textContent } : null;
  }, responseId);
}

async function openDemo(context, url, errors) {
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
  return page;
}

test('demo page: live tokens in two tabs, reload mid-answer and after completion, connection indicator', { timeout: 120_000 }, async (t) => {
  if (!haveChromium(t)) return;

  const server = await startServer({
    extraArgs: [
      `--Tokenwire:Demo:TokensPerSecond=${TOKENS_PER_SECOND}`,
      `--Tokenwire:Demo:AnswerTokens=${ANSWER_TOKENS}`,
      '--Tokenwire:FaultInjection:Enabled=true', // POST /faults/drop: cut the page's transport to see "reconnecting…"
    ],
  });
  let browser;
  t.after(async () => {
    await browser?.close(); // first: the pages would log the server's shutdown
    await server.stop();
  });
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  await context.addInitScript(recordStatuses);
  const errors = [];
  const url = `${server.httpUrl}/`;
  const first = await openDemo(context, url, errors);
  const second = await openDemo(context, url, errors);
  const channel = await first.evaluate(() => window.tokenwireDemo.channel.name);

  // The browser's token is subscribe-only: publishing is refused (40160), so only the agent writes the chat.
  const publishError = await first.evaluate(async () => {
    try {
      await window.tokenwireDemo.channel.publish('token', 'forged');
      return null;
    } catch (e) {
      return e.code;
    }
  });
  assert.equal(publishError, 40160, 'a browser may not publish on the demo channel');

  await first.fill('#prompt', PROMPT);
  await first.click('#send');
  const responseId = await (
    await first.waitForFunction(() => {
      for (const [id, r] of window.tokenwireDemo.responses) if (r.tokens >= 10) return id;
      return null;
    })
  ).jsonValue();
  const beforeReload = await responseState(first, responseId);
  assert.equal(beforeReload.state, 'streaming', 'tokens arrive live, before the answer ends');

  await first.reload();
  await first.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
  const afterReload = await responseState(first, responseId);
  assert.ok(afterReload, 'the reloaded page shows the answer in progress');
  assert.equal(afterReload.state, 'streaming', `the reload landed mid-answer (${afterReload.tokens} tokens)`);
  assert.ok(
    afterReload.hydratedTokens >= beforeReload.tokens,
    `caught up on at least the ${beforeReload.tokens} tokens shown before the reload (got ${afterReload.hydratedTokens})`,
  );
  assert.equal(afterReload.prompt, PROMPT, 'the prompt is caught up too');

  const done = `.response[data-response-id="${responseId}"][data-state="done"]`;
  await first.waitForSelector(done, { timeout: 60_000 });
  await second.waitForSelector(done, { timeout: 60_000 });

  const expected = await publishedAnswer(server, channel, responseId);
  assert.ok(expected.tokens > 10 && expected.tokens <= ANSWER_TOKENS, `at most ${ANSWER_TOKENS} tokens (got ${expected.tokens})`);
  assert.match(expected.text, /^Here is one from the server room\. /, 'a joke, chosen by the prompt, in readable sentences');
  assert.match(expected.text, /[.!?]$/, 'the answer ends at a sentence boundary');
  for (const [name, page] of [['reloaded tab', first], ['second tab', second]]) {
    const state = await responseState(page, responseId);
    assert.equal(state.text, expected.text, `${name}: the text equals the published answer`);
    assert.equal(state.tokens, expected.tokens, `${name}: every token applied exactly once`);
    const shown = await page.textContent(`.response[data-response-id="${responseId}"] .text`);
    assert.equal(shown, expected.text, `${name}: the page shows the whole answer`);
  }
  assert.ok(afterReload.tokens < expected.tokens, 'the reloaded tab continued live after catching up');

  // A second answer, then a reload after both finished: the conversation comes back from history, in order.
  await second.fill('#prompt', SECOND_PROMPT);
  await second.click('#send');
  const secondId = await (
    await first.waitForFunction((known) => [...window.tokenwireDemo.responses.keys()].find((id) => id !== known) ?? null, responseId)
  ).jsonValue();
  await first.waitForSelector(`.response[data-response-id="${secondId}"][data-state="done"]`, { timeout: 60_000 });
  const secondExpected = await publishedAnswer(server, channel, secondId);
  assert.match(secondExpected.text, /^Once upon a time/, 'a story for a story prompt');

  await first.reload();
  await first.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
  assert.deepEqual(
    await shownAnswers(first),
    [
      { id: responseId, state: 'done', prompt: PROMPT, text: expected.text },
      { id: secondId, state: 'done', prompt: SECOND_PROMPT, text: secondExpected.text },
    ],
    'after a reload the page shows the finished answers, oldest first',
  );
  const caughtUp = expected.tokens + secondExpected.tokens;
  assert.equal(await first.textContent('#status'), `connected · caught up ${caughtUp} tokens`);

  // Cut the page's transport: the status says "reconnecting…", then "connected" again once ably-js has resumed.
  const connectionId = await first.evaluate(() => window.tokenwireDemo.realtime.connection.id);
  const dropped = await fetch(`${server.httpUrl}/faults/drop?connectionId=${encodeURIComponent(connectionId)}`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(server.key).toString('base64')}` },
  });
  assert.equal(dropped.status, 200, await dropped.text());
  await first.waitForFunction(() => window.statusTexts.includes('reconnecting…'), null, { timeout: 20_000 });
  await first.waitForFunction((text) => document.getElementById('status').textContent === text, `connected · caught up ${caughtUp} tokens`, { timeout: 30_000 });

  for (const [name, page] of [['reloaded tab', first], ['second tab', second]]) {
    const texts = await page.evaluate(() => window.statusTexts);
    assert.ok(texts.every((t) => !/^Connection /.test(t)), `${name}: status texts ${JSON.stringify(texts)}`);
    assert.ok(texts.includes('connecting…') && texts.some((t) => t.startsWith('connected')), `${name}: ${JSON.stringify(texts)}`);
  }

  await mkdir(ARTIFACTS, { recursive: true });
  const screenshot = join(ARTIFACTS, 'demo-after-reload.png');
  await first.screenshot({ path: screenshot, fullPage: true });
  t.diagnostic(`screenshot: ${screenshot}`);
  assert.deepEqual([...errors], [], 'no errors in the pages');
});

/** The answer's one message as the server keeps it (message-per-response), from the channel's history. */
async function publishedResponse(server, channel, responseId) {
  const url = `${server.httpUrl}/channels/${encodeURIComponent(channel)}/messages?limit=100`;
  const res = await fetch(url, { headers: { authorization: `Basic ${Buffer.from(server.key).toString('base64')}` } });
  assert.equal(res.status, 200, `history: ${res.status} ${await res.clone().text()}`);
  const messages = (await res.json()).filter((m) => m.name === 'response' && m.extras?.headers?.responseId === responseId);
  assert.equal(messages.length, 1, 'history holds one message for the answer');
  return messages[0];
}

test('demo page, message-per-response: live appends in two tabs, reload mid-answer and after completion', { timeout: 120_000 }, async (t) => {
  if (!haveChromium(t)) return;

  const server = await startServer({
    extraArgs: [`--Tokenwire:Demo:TokensPerSecond=${TOKENS_PER_SECOND}`, `--Tokenwire:Demo:AnswerTokens=${ANSWER_TOKENS}`],
  });
  let browser;
  t.after(async () => {
    await browser?.close();
    await server.stop();
  });
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  const errors = [];
  const url = `${server.httpUrl}/?pattern=response`;
  const first = await openDemo(context, url, errors);
  const second = await openDemo(context, url, errors);
  assert.equal(await first.evaluate(() => window.tokenwireDemo.pattern), 'response');
  const channel = await first.evaluate(() => window.tokenwireDemo.channel.name);
  assert.equal(channel, 'mutable:demo', 'the switch follows the response channel');
  assert.equal(await first.getAttribute('#patterns a[aria-current="page"]', 'data-pattern'), 'response', 'the switch shows the pattern in use');
  assert.equal(await first.textContent('#channel'), 'mutable:demo');

  await first.fill('#prompt', PROMPT);
  await first.click('#send');
  const responseId = await (
    await first.waitForFunction(() => {
      for (const [id, r] of window.tokenwireDemo.responses) if (r.tokens >= 10) return id;
      return null;
    })
  ).jsonValue();
  const beforeReload = await responseState(first, responseId);
  assert.equal(beforeReload.state, 'streaming', 'appends arrive live, before the answer ends');

  await first.reload();
  await first.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
  const afterReload = await responseState(first, responseId);
  assert.ok(afterReload, 'the reloaded page shows the answer in progress');
  assert.equal(afterReload.state, 'streaming', `the reload landed mid-answer (${afterReload.text.length} characters)`);
  assert.ok(
    afterReload.text.startsWith(beforeReload.text),
    `caught up on at least the text shown before the reload: ${JSON.stringify(beforeReload.text)} / ${JSON.stringify(afterReload.text)}`,
  );
  assert.equal(afterReload.prompt, PROMPT, 'the prompt is caught up too');

  const done = `.response[data-response-id="${responseId}"][data-state="done"]`;
  await first.waitForSelector(done, { timeout: 60_000 });
  await second.waitForSelector(done, { timeout: 60_000 });

  const expected = await publishedResponse(server, channel, responseId);
  assert.equal(expected.extras.headers.status, 'complete');
  assert.match(expected.data, /^Here is one from the server room\. /, 'a joke, chosen by the prompt, in readable sentences');
  for (const [name, page] of [['reloaded tab', first], ['second tab', second]]) {
    const state = await responseState(page, responseId);
    assert.equal(state.text, expected.data, `${name}: the text equals the published answer`);
    const shown = await page.textContent(`.response[data-response-id="${responseId}"] .text`);
    assert.equal(shown, expected.data, `${name}: the page shows the whole answer`);
  }
  const secondState = await responseState(second, responseId);
  assert.ok(secondState.tokens > 10, `the second tab received the answer as appends (${secondState.tokens})`);

  // A reload after it finished: the answer comes back whole from history, one message.
  await first.reload();
  await first.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
  assert.deepEqual(
    await shownAnswers(first),
    [{ id: responseId, state: 'done', prompt: PROMPT, text: expected.data }],
    'after a reload the page shows the finished answer',
  );
  assert.equal(await first.textContent('#status'), 'connected · caught up 1 answer');

  // Feedback: a 👍 in one tab (an annotation on the answer's message) shows in the other from the message's summary,
  // comes back with the message after a reload, and a second click (the same clientId: one browser profile) withdraws it.
  const upButton = (page) => page.locator(`.response[data-response-id="${responseId}"] .feedback button[data-vote="up"]`);
  const upCount = (page, count) =>
    page.waitForFunction(
      ([id, n]) => document.querySelector(`.response[data-response-id="${id}"] .feedback button[data-vote="up"] span`)?.textContent === n,
      [responseId, String(count)],
      { timeout: 20_000 },
    );
  await upButton(second).click();
  await upCount(first, 1);
  await upCount(second, 1);
  assert.equal(await upButton(second).getAttribute('aria-pressed'), 'true', 'the voter sees its own vote');
  await first.reload();
  await first.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
  await upCount(first, 1);
  assert.equal(await upButton(first).getAttribute('aria-pressed'), 'true', 'after a reload the vote is still this page\'s');
  const summary = await publishedResponse(server, channel, responseId);
  assert.equal(summary.annotations?.summary?.['feedback:distinct.v1']?.up?.total, 1, 'the server holds the vote in the message summary');
  await upButton(first).click();
  await upCount(second, 0);
  await upCount(first, 0);
  assert.deepEqual([...errors], [], 'no errors in the pages');
});
