// The admin page (/admin) in real headless Chromium against the real server process: live connections, channels and
// presence; the response in progress with its token rate; charts of time to first token and inter-token gap; a
// channel's occupancy and last messages. The traffic is real: the demo page (ably-js) attaches and asks the demo agent
// (Tokenwire.AI with the simulated model) for an answer streamed token by token.
//
// Chromium: as demo.test.mjs (skipped locally without it, a failure in CI). The screenshot lands in artifacts/.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { haveChromium, launchChromium } from './support/chromium.mjs';
import { fileURLToPath } from 'node:url';
import { startServer } from '../interop/support/server.mjs';

const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
// 60 tokens at 8/s: the answer is in progress for over 7 s, long enough to watch it on the admin page.
const TOKENS_PER_SECOND = 8;
const ANSWER_TOKENS = 60; // the simulated answer: whole sentences up to this many tokens

test('admin page: needs an admin key, then shows connections, the live response, charts and last messages', { timeout: 120_000 }, async (t) => {
  if (!haveChromium(t)) return;

  const server = await startServer({
    extraArgs: [`--Tokenwire:Demo:TokensPerSecond=${TOKENS_PER_SECOND}`, `--Tokenwire:Demo:AnswerTokens=${ANSWER_TOKENS}`],
  });
  let browser;
  t.after(async () => {
    await browser?.close();
    await server.stop();
  });

  // Without a key, or with a key that lacks the admin capability, the page is refused with a Basic challenge.
  const anonymous = await fetch(`${server.httpUrl}/admin`);
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic /);

  browser = await launchChromium();
  const errors = [];
  const watch = (page, name) => {
    page.on('pageerror', (e) => errors.push(`${name} pageerror: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && errors.push(`${name} console: ${m.text()}`));
  };

  // The operator: the key name as user, the secret as password (what the browser's login prompt sends).
  const [username, password] = [server.key.slice(0, server.key.indexOf(':')), server.key.slice(server.key.indexOf(':') + 1)];
  const adminContext = await browser.newContext({ viewport: { width: 1400, height: 1000 }, httpCredentials: { username, password } });
  const admin = await adminContext.newPage();
  watch(admin, 'admin');
  await admin.goto(`${server.httpUrl}/admin`);
  await admin.waitForSelector('#live.on', { timeout: 20_000 });

  // A user: the demo page attaches (a connection, an attachment) and asks for an answer.
  const userContext = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  const demo = await userContext.newPage();
  watch(demo, 'demo');
  await demo.goto(`${server.httpUrl}/`);
  await demo.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
  const channel = await demo.evaluate(() => window.tokenwireDemo.channel.name);
  await demo.fill('#prompt', 'How fast is the first token?');
  await demo.click('#send');

  // The response in progress, with its token rate, while the demo streams it.
  const row = await admin.waitForFunction(() => {
    for (const tr of document.querySelectorAll('#responses tbody tr')) {
      const cells = [...tr.cells].map((c) => c.textContent);
      if (cells.length === 7 && Number(cells[3]) >= 8) return { channel: cells[0], tokens: Number(cells[3]), rate: Number(cells[4]) };
    }
    return null;
  }, null, { timeout: 30_000 });
  const live = await row.jsonValue();
  assert.equal(live.channel, channel, 'the response is listed under its channel');
  assert.ok(live.rate > TOKENS_PER_SECOND * 0.4 && live.rate < TOKENS_PER_SECOND * 2.5, `token rate ${live.rate}/s is about ${TOKENS_PER_SECOND}/s`);

  // Connections and the channel with its occupancy (the demo page and the agent are both connected).
  assert.ok(Number(await admin.textContent('#connections')) >= 1, 'connections are counted');
  await admin.waitForFunction((name) => [...document.querySelectorAll('#channel-list tbody tr')].some((tr) => tr.cells[0].textContent === name && Number(tr.cells[2].textContent) >= 1), channel);

  // The nodes table: one node (no Redis), this one, with the same connections as the card.
  const nodeRows = await admin.$$eval('#nodes tbody tr', (rows) => rows.map((tr) => [...tr.cells].map((td) => td.textContent)));
  assert.equal(nodeRows.length, 1, `one node listed: ${JSON.stringify(nodeRows)}`);
  assert.equal(nodeRows[0][0], 'local (this node)');
  assert.ok(Number(nodeRows[0][5]) >= 1, `its connections are counted: ${JSON.stringify(nodeRows)}`);
  assert.equal(nodeRows[0][10], 'now');
  assert.match(await admin.textContent('#nodes-sub'), /this node alone/);
  assert.doesNotMatch(await admin.textContent('#connections-sub'), /on all/, 'no cluster total on one node');

  // The charts: time to first token has its sample, inter-token gaps one per token so far.
  await admin.waitForFunction(() => Number(document.querySelector('#chart-ttft').dataset.samples) >= 1 && Number(document.querySelector('#chart-gap').dataset.samples) >= 8);
  assert.ok(await admin.$('#chart-ttft path.mean, #chart-ttft circle.dot'), 'the time-to-first-token chart is drawn');

  // The channel's last messages: select it and see the tokens of the answer.
  await admin.click(`#channel-list tbody tr:has(td:text-is("${channel}"))`);
  await admin.waitForFunction(() => [...document.querySelectorAll('#messages tbody tr')].filter((tr) => tr.cells[2]?.textContent === 'token').length >= 3, null, { timeout: 10_000 });
  assert.match(await admin.textContent('#selected'), new RegExp(channel.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));

  await mkdir(ARTIFACTS, { recursive: true });
  const screenshot = join(ARTIFACTS, 'admin.png');
  await admin.screenshot({ path: screenshot, fullPage: true });
  t.diagnostic(`screenshot: ${screenshot}`);

  // When the answer ends it leaves the in-progress list.
  await admin.waitForFunction((name) => ![...document.querySelectorAll('#responses tbody tr')].some((tr) => tr.cells[0].textContent === name), channel, { timeout: 30_000 });
  assert.deepEqual([...errors], [], 'no errors in the pages');
});
