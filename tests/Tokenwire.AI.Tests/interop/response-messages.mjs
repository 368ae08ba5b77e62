// node response-messages.mjs <port> <key> <channel> <json|msgpack> <publish|subscribe> <arg> [timeoutMs]
// Message-per-response with unchanged ably-js, as Ably's AI Transport docs show it:
// - publish <tokens.json>: publishes one 'response' message (data '', extras.headers {responseId, status: streaming}),
//   appends every token of the JSON array without awaiting each, then an append with status 'complete'; prints
//   {"event":"published","serial":...,"failed":n}.
// - subscribe <expected.json>: prints {"event":"attached"}, rebuilds responses from message.create / message.append /
//   message.update by serial (keyed by extras.headers.responseId), and once every expected {responseId: text} is
//   rebuilt and complete (plus 300 ms for strays) prints {"event":"done","responses":{id:{text,appends,updates,status}}}.
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const [port, key, channelName, format, mode, argFile, timeoutText] = process.argv.slice(2);
const modules = process.env.ABLY_NODE_MODULES;
if (!modules || !existsSync(path.join(modules, 'ably', 'package.json'))) {
  console.log(JSON.stringify({ event: 'error', message: `ably not found in ABLY_NODE_MODULES=${modules}` }));
  process.exit(2);
}
const Ably = createRequire(import.meta.url)(path.join(modules, 'ably'));
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const arg = JSON.parse(readFileSync(argFile, 'utf8'));
const client = new Ably.Realtime({
  key, endpoint: '127.0.0.1', port: Number(port), tls: false, useBinaryProtocol: format === 'msgpack',
  disableConnectivityCheck: true, logLevel: 0, echoMessages: false,
});
const channel = client.channels.get(channelName);
const responses = new Map(); // serial -> { id, text, appends, updates, status }
const timer = setTimeout(() => {
  emit({ event: 'timeout', responses: Object.fromEntries([...responses.values()].map((r) => [r.id, r])) });
  process.exit(3);
}, Number(timeoutText ?? 60000));

if (mode === 'publish') {
  const responseId = 'js-' + Date.now();
  const headers = (status) => ({ headers: { responseId, status } });
  const { serials } = await channel.publish({ name: 'response', data: '', extras: headers('streaming') });
  const serial = serials[0];
  const appends = arg.map((token) => channel.appendMessage({ serial, data: token }));
  appends.push(channel.appendMessage({ serial, data: '', extras: headers('complete') }));
  const results = await Promise.allSettled(appends);
  clearTimeout(timer);
  emit({ event: 'published', responseId, serial, failed: results.filter((r) => r.status === 'rejected').length });
  client.close();
  process.exit(0);
} else {
  let finished = false;
  const check = () => {
    if (finished) return;
    const byId = new Map([...responses.values()].map((r) => [r.id, r]));
    for (const [id, text] of Object.entries(arg)) {
      const r = byId.get(id);
      if (r?.text !== text || r.status !== 'complete') return;
    }
    finished = true;
    setTimeout(() => {
      clearTimeout(timer);
      emit({ event: 'done', responses: Object.fromEntries([...responses.values()].map((r) => [r.id, r])) });
      client.close();
      process.exit(0);
    }, 300);
  };
  // Every message, not only those named 'response': Ably does not promise the name on an append.
  await channel.subscribe((m) => {
    let r = responses.get(m.serial);
    if (!r && m.name !== 'response') return;
    if (!r) responses.set(m.serial, r = { id: m.extras?.headers?.responseId ?? m.serial, text: '', appends: 0, updates: 0, status: null });
    if (m.action === 'message.append') {
      r.text += m.data ?? '';
      r.appends++;
    } else if (m.action === 'message.update' || m.action === 'message.create') {
      r.text = m.data ?? '';
      if (m.action === 'message.update') r.updates++;
    }
    r.status = m.extras?.headers?.status ?? r.status;
    check();
  });
  emit({ event: 'attached' });
}
