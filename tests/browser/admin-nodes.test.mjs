// The admin page's Nodes table in real headless Chromium against two real server processes sharing a real
// redis-server: the page on node A lists node B with node B's own connections (the demo page, ably-js, connected to
// node B), then drops node B once it dies (SIGKILL: no goodbye, so its heartbeats stop and it leaves within ~20 s).
//
// Chromium: as admin.test.mjs (skipped locally without it, a failure in CI). redis-server: as the interop scale-out
// tests (a failure without it).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { haveChromium, launchChromium } from './support/chromium.mjs';
import { startRedis } from '../interop/support/redis.mjs';
import { randomKey, startServer } from '../interop/support/server.mjs';


test('admin page: on the Redis engine the Nodes table lists every node with its own counts, and drops a dead one', { timeout: 120_000 }, async (t) => {
  if (!haveChromium(t)) return;

  const redis = await startRedis();
  const key = randomKey();
  const [nodeA, nodeB] = await Promise.all([0, 1].map(() => startServer({ key, extraArgs: ['--redis', redis.connectionString] })));
  let browser;
  t.after(async () => {
    await browser?.close();
    await Promise.all([nodeA.stop(), nodeB.stop()]);
    await redis.stop();
  });

  browser = await launchChromium();
  const errors = [];
  const [username, password] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
  const admin = await (await browser.newContext({ viewport: { width: 1400, height: 1000 }, httpCredentials: { username, password } })).newPage();
  admin.on('pageerror', (e) => errors.push(`admin pageerror: ${e.message}`));
  await admin.goto(`${nodeA.httpUrl}/admin`);
  await admin.waitForSelector('#live.on', { timeout: 20_000 });

  // A user on node B: the demo page connects with ably-js.
  const demo = await (await browser.newContext()).newPage();
  await demo.goto(`${nodeB.httpUrl}/`);
  await demo.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });

  const rows = () => admin.$$eval('#nodes tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
  // Node B's line, as node A reads it from Redis (every 5 s): node B's connections, not node A's.
  await admin.waitForFunction(() => {
    const trs = [...document.querySelectorAll('#nodes tbody tr')];
    return trs.length === 2 && trs.some((tr) => !tr.cells[0].textContent.endsWith('(this node)') && Number(tr.cells[5].textContent) >= 1);
  }, null, { timeout: 20_000 }).catch(async (e) => assert.fail(`node B never listed with its connection: ${JSON.stringify(await rows())} (${e.message})`));
  const listed = await rows();
  const [self, other] = [listed.find((r) => r[0].endsWith('(this node)')), listed.find((r) => !r[0].endsWith('(this node)'))];
  assert.ok(self && other, JSON.stringify(listed));
  assert.equal(self[10], 'now');
  assert.match(other[10], /^\d+ s ago$/);
  assert.match(other[0], /^[0-9a-f]{16}$/, 'a node id');
  assert.match(await admin.textContent('#nodes-sub'), /this node and 1 other sharing its Redis/);
  // The connections card adds the other node's connections for the cluster's total (read from one render).
  const { counts, sub } = await admin.evaluate(() => ({
    counts: [...document.querySelectorAll('#nodes tbody tr')].map((tr) => Number(tr.cells[5].textContent)),
    sub: document.querySelector('#connections-sub').textContent,
  }));
  assert.match(sub, new RegExp(` · ${counts[0] + counts[1]} on all 2 nodes$`));

  // Node B dies: it leaves the table once its heartbeats are 15 s old (at node A's next report).
  await nodeB.kill('SIGKILL');
  await admin.waitForFunction(() => document.querySelectorAll('#nodes tbody tr').length === 1, null, { timeout: 40_000 })
    .catch(async (e) => assert.fail(`node B still listed: ${JSON.stringify(await rows())} (${e.message})`));
  assert.match(await admin.textContent('#nodes-sub'), /this node alone/);
  assert.deepEqual(errors, []);
});
