// The browser demo where WebSockets are blocked: the page is served through an HTTP proxy that refuses every WebSocket
// upgrade (403, as corporate proxies do), so the ably browser bundle falls back to its comet transport (xhr_polling)
// against Tokenwire's /comet endpoints. The page must still connect, stream an answer token by token, and end with
// exactly the text the agent published, with no frame ever received over a WebSocket.
//
// Chromium: Debian's `chromium` (/usr/bin/chromium, or $CHROMIUM_PATH) driven by playwright-core. Without it the test
// is skipped locally and FAILS in CI (CI=true).

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { haveChromium, launchChromium } from './support/chromium.mjs';
import { fileURLToPath } from 'node:url';
import { startServer } from '../interop/support/server.mjs';
import { startWsBlockingProxy } from '../interop/support/ws-blocking-proxy.mjs';

const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const TOKENS_PER_SECOND = 20;
const ANSWER_TOKENS = 60; // the simulated answer: whole sentences up to this many tokens

/** The tokens of one response as the agent published them (the channel's history, read directly from the server). */
async function publishedAnswer(server, channel, responseId) {
  const url = `${server.httpUrl}/channels/${encodeURIComponent(channel)}/messages?direction=forwards&limit=1000`;
  const res = await fetch(url, { headers: { authorization: `Basic ${Buffer.from(server.key).toString('base64')}` } });
  assert.equal(res.status, 200, `history: ${res.status}`);
  const tokens = (await res.json()).filter((m) => m.extras?.headers?.responseId === responseId && m.name === 'token').map((m) => m.data);
  return { text: tokens.join(''), tokens: tokens.length };
}

test('demo page with WebSockets blocked: it falls back to comet (xhr_polling) and streams an answer exactly', { timeout: 120_000 }, async (t) => {
  if (!haveChromium(t)) return;

  const server = await startServer({
    extraArgs: [`--Tokenwire:Demo:TokensPerSecond=${TOKENS_PER_SECOND}`, `--Tokenwire:Demo:AnswerTokens=${ANSWER_TOKENS}`],
  });
  const proxy = await startWsBlockingProxy(server.port);
  let browser;
  t.after(async () => {
    await browser?.close();
    await proxy.close();
    await server.stop();
  });
  browser = await launchChromium();
  const page = await (await browser.newContext()).newPage();
  const errors = [];
  const blockedSocketErrors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // Chromium reports each refused upgrade on the console: expected here, anything else is not.
    if (/WebSocket connection to .* failed/.test(m.text())) blockedSocketErrors.push(m.text());
    else errors.push(`console: ${m.text()}`);
  });
  const socketFrames = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => socketFrames.push(String(f.payload).slice(0, 80))));

  const started = Date.now();
  await page.goto(`http://127.0.0.1:${proxy.port}/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  const readyMs = Date.now() - started;

  const transport = await page.evaluate(() => {
    const realtime = window.tokenwireDemo.realtime ?? window.tokenwireDemo.channel.client;
    return realtime.connection.connectionManager.activeProtocol?.getTransport()?.shortName;
  });
  assert.equal(transport, 'xhr_polling', 'the page is connected over comet');
  assert.ok(proxy.stats.refusedUpgrades >= 1, 'the page tried a WebSocket first and the proxy refused it');
  assert.ok((proxy.stats.paths.get('/comet/connect') ?? 0) >= 1, `comet connect went through the proxy (${JSON.stringify([...proxy.stats.paths])})`);

  await page.fill('#prompt', 'Stream over comet, please');
  await page.click('#send');
  const responseId = await (
    await page.waitForFunction(() => {
      for (const [id, r] of window.tokenwireDemo.responses) if (r.tokens >= 5) return id;
      return null;
    }, null, { timeout: 30_000 })
  ).jsonValue();
  const midway = await page.evaluate((id) => window.tokenwireDemo.responses.get(id).state, responseId);
  assert.equal(midway, 'streaming', 'tokens arrive while the answer is still being generated');

  await page.waitForSelector(`.response[data-response-id="${responseId}"][data-state="done"]`, { timeout: 60_000 });
  const channel = await page.evaluate(() => window.tokenwireDemo.channel.name);
  const expected = await publishedAnswer(server, channel, responseId);
  assert.ok(expected.tokens > 5 && expected.tokens <= ANSWER_TOKENS, `the agent published a whole answer (${expected.tokens} tokens)`);
  const state = await page.evaluate((id) => {
    const r = window.tokenwireDemo.responses.get(id);
    return { text: r.text, tokens: r.tokens };
  }, responseId);
  assert.equal(state.text, expected.text, 'the page shows exactly the published answer');
  assert.equal(state.tokens, expected.tokens, 'every token applied once');
  assert.equal(await page.textContent(`.response[data-response-id="${responseId}"] .text`), expected.text);

  const recvs = proxy.stats.paths.get('/comet/{key}/recv') ?? 0;
  assert.ok(recvs >= 1, 'the page long-polled /comet/{key}/recv');
  assert.deepEqual(socketFrames, [], 'no frame ever arrived over a WebSocket');
  assert.deepEqual(errors, [], 'no errors in the page');

  await mkdir(ARTIFACTS, { recursive: true });
  const screenshot = join(ARTIFACTS, 'demo-over-comet.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  t.diagnostic(`connected over comet ${readyMs} ms after navigation; ${recvs} recv polls, ${proxy.stats.refusedUpgrades} upgrades refused; screenshot ${screenshot}`);
});
