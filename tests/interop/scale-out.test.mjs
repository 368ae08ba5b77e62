// Two Tokenwire nodes on one Redis, driven by the unchanged ably-js client: presence entered on node A is seen by a
// presence subscriber on node B, a delta=vcdiff subscriber on node B decodes every message published on node A, and a
// response appended to on node A reaches node B as fragments live and as one whole message.update for a late joiner,
// and occupancy events and channel status on node A count the subscribers of node B; a [meta]channel.lifecycle watcher
// on node B gets each occupancy change of a channel attached on node A, once. A comet client behind a load balancer
// without affinity (each request to the other node in turn) keeps one connection: a node forwards the requests of a
// transport it does not hold to the node that does.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as vcdiff from '@ably/vcdiff-decoder';
import { Ably, FORMATS, TEST_TIMEOUT, closeRealtime, fmtErr, uniqueName, waitFor, withTimeout } from './support/helpers.mjs';
import { clientOptionsFor, randomAlnum, randomKey, startServer } from './support/server.mjs';
import { startRedis } from './support/redis.mjs';
import { startBalancer } from './support/balancer.mjs';

let redis;
let nodeA;
let nodeB;
const key = randomKey();
const WATCHER_KEY = `test.watcher:${randomAlnum(24)}`; // metachannels need "[meta]*": "*" names ordinary channels only

before(async () => {
  redis = await startRedis();
  [nodeA, nodeB] = await Promise.all([0, 1].map(() => startServer({
    key,
    extraArgs: ['--redis', redis.connectionString, `--Tokenwire:Keys:0:Key=${WATCHER_KEY}`, '--Tokenwire:Keys:0:Capability={"[meta]*":["subscribe"],"*":["*"]}'],
  })));
});

after(async () => {
  await Promise.all([nodeA?.stop(), nodeB?.stop()]);
  await redis?.stop();
});

async function connect(t, node, format, extra = {}) {
  const client = new Ably.Realtime(clientOptionsFor(node.port, key, format, extra));
  t.after(() => closeRealtime(client));
  await withTimeout(client.connection.whenState('connected'), 20_000, () => `connect: ${client.connection.state} ${fmtErr(client.connection.errorReason)}`);
  return client;
}

for (const format of FORMATS) {
  test(`occupancy on node A counts the subscribers of node B, events and channel.status() alike [${format}]`, { timeout: TEST_TIMEOUT }, async (t) => {
    const name = uniqueName('scale-occupancy');
    const watcher = await connect(t, nodeA, format);
    const events = [];
    await watcher.channels.get(name, { params: { occupancy: 'metrics' } }).subscribe('[meta]occupancy', (m) => events.push(m.data.metrics));
    await waitFor(() => events.at(-1)?.subscribers === 1, { what: 'the event on attach', describeState: () => JSON.stringify(events) });

    const viewers = await Promise.all([0, 1].map(() => connect(t, nodeB, format)));
    await Promise.all(viewers.map((v) => v.channels.get(name).attach()));
    await waitFor(() => events.at(-1).subscribers === 3 && events.at(-1).connections === 3,
      { what: 'node B\'s two subscribers counted on node A', describeState: () => JSON.stringify(events) });
    const rest = new Ably.Rest(clientOptionsFor(nodeA.port, key, format));
    assert.equal((await rest.channels.get(name).status()).status.occupancy.metrics.subscribers, 3);

    await viewers[0].channels.get(name).detach();
    await waitFor(() => events.at(-1).subscribers === 2, { what: 'one of them detached', describeState: () => JSON.stringify(events) });
  });

  test(`a [meta]channel.lifecycle watcher on node B gets each occupancy change of channels on both nodes once [${format}]`, { timeout: TEST_TIMEOUT }, async (t) => {
    const name = uniqueName('scale-lifecycle');
    const watcher = await connect(t, nodeB, format, { key: WATCHER_KEY });
    const subscribers = []; // the channel's subscribers in each channel.occupancy event
    await watcher.channels.get('[meta]channel.lifecycle').subscribe('channel.occupancy', (m) => {
      if (m.data.channelId === name) subscribers.push(m.data.status.occupancy.metrics.subscribers);
    });
    await new Promise((resolve) => setTimeout(resolve, 1500)); // node A reads once a second whether another node watches

    const onA = await connect(t, nodeA, format);
    await onA.channels.get(name).attach();
    await waitFor(() => subscribers.at(-1) === 1, { what: 'node A\'s subscriber', describeState: () => JSON.stringify(subscribers) });
    const onB = await connect(t, nodeB, format);
    await onB.channels.get(name).attach();
    await waitFor(() => subscribers.at(-1) === 2, { what: 'node B\'s subscriber too', describeState: () => JSON.stringify(subscribers) });
    // Node B shares its counts just after its attach completes: until then a detach on A would leave the channel
    // attached nowhere for an instant (closed, and opened again).
    const rest = new Ably.Rest(clientOptionsFor(nodeA.port, key, format));
    for (let i = 0; i < 100 && (await rest.channels.get(name).status()).status.occupancy.metrics.connections !== 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await onA.channels.get(name).detach();
    await waitFor(() => subscribers.at(-1) === 1, { what: 'node A\'s gone', describeState: () => JSON.stringify(subscribers) });
    await onB.channels.get(name).detach();
    await waitFor(() => subscribers.at(-1) === 0, { what: 'none left', describeState: () => JSON.stringify(subscribers) });
    await new Promise((resolve) => setTimeout(resolve, 2000)); // nothing more, from either node
    assert.deepEqual(subscribers, [1, 2, 1, 0]);
  });

  test(`a member entering on node A is seen by a presence subscriber on node B [${format}]`, { timeout: TEST_TIMEOUT }, async (t) => {
    const name = uniqueName('scale-presence');
    const watcher = await connect(t, nodeB, format);
    const watched = watcher.channels.get(name);
    const events = [];
    await watched.presence.subscribe((m) => events.push(`${m.action}:${m.clientId}:${m.data}`));

    const member = await connect(t, nodeA, format, { clientId: 'alice' });
    const channel = member.channels.get(name);
    await channel.presence.enter('from-a');
    await waitFor(() => events.includes('enter:alice:from-a'), { what: 'the ENTER on node B', describeState: () => JSON.stringify(events) });
    const members = await watched.presence.get();
    assert.deepEqual(members.map((m) => [m.clientId, m.data, m.connectionId]), [['alice', 'from-a', member.connection.id]]);

    // A late subscriber on node B gets the member by SYNC; an update and the leave reach node B in order.
    const late = await connect(t, nodeB, format);
    const lateMembers = await late.channels.get(name).presence.get();
    assert.deepEqual(lateMembers.map((m) => m.clientId), ['alice']);
    await channel.presence.update('busy');
    await channel.presence.leave();
    await waitFor(() => events.includes('leave:alice:busy'), { what: 'the LEAVE on node B', describeState: () => JSON.stringify(events) });
    assert.deepEqual(events, ['enter:alice:from-a', 'update:alice:busy', 'leave:alice:busy']);
    assert.deepEqual(await watched.presence.get(), []);
  });

  test(`a delta=vcdiff subscriber on node B decodes every message published on node A [${format}]`, { timeout: TEST_TIMEOUT }, async (t) => {
    const name = uniqueName('scale-delta');
    let decoded = 0; // deltas the real decoder applied
    const counting = { decode: (delta, base) => (decoded++, vcdiff.decode(delta, base)) };
    const subscriber = await connect(t, nodeB, format, { plugins: { vcdiff: counting } });
    const channel = subscriber.channels.get(name, { params: { delta: 'vcdiff' } });
    const received = [];
    const stateChanges = [];
    await channel.subscribe((m) => received.push(m));
    channel.on((change) => stateChanges.push(`${change.current}${change.reason ? ` ${fmtErr(change.reason)}` : ''}`));
    assert.equal(channel.params?.delta, 'vcdiff');

    const publisher = await connect(t, nodeA, format);
    const out = publisher.channels.get(name);
    const sent = [];
    for (let i = 0; i < 50; i++) {
      const doc = { responseId: 'r1', text: 'token '.repeat(i), n: i };
      sent.push(doc);
      out.publish('doc', doc); // pipelined, as an agent publishes tokens
    }
    await out.publish('doc', { done: true });
    sent.push({ done: true });

    await waitFor(() => received.length >= sent.length, { what: 'every message on node B', describeState: () => `${received.length} received; ${stateChanges}` });
    assert.deepEqual(received.map((m) => m.data), sent);
    // Decoded from deltas, never recovered by a re-attach (RTL18): the channel stayed attached throughout.
    assert.deepEqual(stateChanges, []);
    assert.ok(decoded >= sent.length - 1, `only ${decoded} of ${sent.length} messages arrived as deltas`);
  });

  test(`appends on node A reach node B live as fragments and a late joiner as one whole update [${format}]`, { timeout: TEST_TIMEOUT }, async (t) => {
    const name = uniqueName('mutable:scale-append');
    const early = await connect(t, nodeB, format);
    const earlyGot = [];
    await early.channels.get(name).subscribe((m) => earlyGot.push(m));

    const agent = await connect(t, nodeA, format);
    const out = agent.channels.get(name);
    const { serials } = await out.publish({ name: 'response', data: '' });
    const serial = serials[0];
    const tokens = Array.from({ length: 30 }, (_, i) => `t${i} `);
    const acks = await withTimeout(Promise.all(tokens.slice(0, 15).map((data) => out.appendMessage({ serial, data }))), 20_000, 'first appends acknowledged');
    const versions = [serial, ...acks.map((a) => a.versionSerial)];
    assert.deepEqual([...versions].sort(), versions, 'version serials sort after the message and every earlier version');

    const late = await connect(t, nodeB, format);
    const lateGot = [];
    await late.channels.get(name).subscribe((m) => lateGot.push(m));
    await withTimeout(Promise.all(tokens.slice(15).map((data) => out.appendMessage({ serial, data }))), 20_000, 'remaining appends acknowledged');

    const full = tokens.join('');
    const rebuild = (messages) => {
      let text;
      for (const m of messages) {
        if (m.action === 'message.create' || m.action === 'message.update') text = m.data;
        else if (m.action === 'message.append') text = (text ?? '') + m.data;
      }
      return text;
    };
    await waitFor(() => rebuild(earlyGot) === full && rebuild(lateGot) === full, {
      what: 'both subscribers on node B to rebuild the whole text',
      describeState: () => `early ${JSON.stringify(rebuild(earlyGot))}, late ${JSON.stringify(rebuild(lateGot))}`,
    });
    assert.equal(earlyGot[0].action, 'message.create');
    assert.ok(earlyGot.slice(1).every((m) => m.action === 'message.append'), 'the live subscriber gets appends after the create');
    assert.equal(lateGot[0].action, 'message.update', 'the late joiner first sees the whole message');

    // Node B answers getMessage and history for what node A did.
    const rest = new Ably.Rest(clientOptionsFor(nodeB.port, key, format));
    const message = await rest.channels.get(name).getMessage(serial);
    assert.equal(message.data, full);
    const history = await rest.channels.get(name).history({ limit: 10 });
    assert.equal(history.items.length, 1, 'one history entry for the response');
    assert.equal(history.items[0].data, full);
  });
}

// Comet behind a balancer without affinity: ably-js's comet requests alternate between the nodes; the node that does not
// hold the transport forwards them, so the connection never drops (a node answering 80022 would make it resume, each
// time on whichever node the balancer picked).
for (const [mode, cometOptions] of Object.entries({ streaming: { transports: ['comet'] }, polling: { transports: ['comet'], transportParams: { stream: false } } })) {
  test(`a comet client behind a balancer without affinity keeps its connection; every token once, in order [${mode}]`, { timeout: TEST_TIMEOUT }, async (t) => {
    const balancer = await startBalancer([nodeA.port, nodeB.port]);
    const name = uniqueName('scale-comet');
    const watcher = await connect(t, nodeB, 'msgpack');
    const onB = [];
    await watcher.channels.get(name).subscribe((m) => onB.push(m.data));

    const comet = new Ably.Realtime(clientOptionsFor(balancer.port, key, 'json', cometOptions));
    t.after(async () => {
      await closeRealtime(comet); // through the balancer, then the balancer
      await balancer.close();
    });
    const states = [];
    comet.connection.on((change) => states.push(change.current));
    await withTimeout(comet.connection.whenState('connected'), 20_000, () => `connect: ${comet.connection.state} ${fmtErr(comet.connection.errorReason)}`);
    assert.equal(comet.connection.connectionManager.activeProtocol?.getTransport()?.shortName, 'comet');
    const id = comet.connection.id;

    const channel = comet.channels.get(name);
    const own = [];
    await channel.subscribe((m) => own.push(m.data));
    const tokens = Array.from({ length: 30 }, (_, i) => `tok-${i}`);
    await withTimeout(Promise.all(tokens.map((data) => channel.publish('token', data))), 30_000, 'every publish acknowledged');

    await waitFor(() => own.length >= tokens.length && onB.length >= tokens.length, {
      what: 'every token on the comet client and on node B',
      describeState: () => `comet ${own.length}, node B ${onB.length}; states ${states}`,
    });
    assert.deepEqual(own, tokens);
    assert.deepEqual(onB, tokens);
    assert.equal(comet.connection.id, id, 'one connection throughout');
    assert.deepEqual(states.filter((s) => s !== 'connecting' && s !== 'connected'), [], `the connection never dropped: ${states}`);
    // The connect went to node A; node B got at least one of the transport's requests and forwarded it.
    assert.ok(balancer.requests.every((n) => n >= 1), `requests reached both nodes: ${balancer.requests}`);

    // Closing is one more request, to whichever node: answered by the node holding the transport.
    comet.close();
    await waitFor(() => balancer.completed.some((r) => r.path.includes('/close')), { what: 'the close request answered' });
    assert.equal(balancer.completed.find((r) => r.path.includes('/close')).status, 200);
  });
}
