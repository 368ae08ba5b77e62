// node responses.mjs <port> <key> <channel> <json|msgpack> <expected.json> [timeoutMs]
// The guide's subscriber with unchanged ably-js: rebuilds every response by extras.headers.responseId (no header:
// the continuous stream, key ""), start/token/stop, and replaces a response's text on response-complete.
// <expected.json> maps responseId -> text. Prints {"event":"attached"}, then, once every expected text is rebuilt
// (plus 300 ms for strays such as duplicates), {"event":"done","responses":{id:{text,tokens,replaced,started,stopped}}}.
// On timeout it prints {"event":"timeout",...} with what it has and exits 3.
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const [port, key, channelName, format, expectedFile, timeoutText] = process.argv.slice(2);
const expected = JSON.parse(readFileSync(expectedFile, 'utf8'));
const modules = process.env.ABLY_NODE_MODULES;
if (!modules || !existsSync(path.join(modules, 'ably', 'package.json'))) {
  console.log(JSON.stringify({ event: 'error', message: `ably not found in ABLY_NODE_MODULES=${modules}` }));
  process.exit(2);
}
const Ably = createRequire(import.meta.url)(path.join(modules, 'ably'));
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const responses = new Map();
const get = (id) => {
  if (!responses.has(id)) responses.set(id, { text: '', tokens: 0, replaced: false, started: false, stopped: false });
  return responses.get(id);
};
const snapshot = () => Object.fromEntries(responses);
const timer = setTimeout(() => {
  emit({ event: 'timeout', responses: snapshot() });
  process.exit(3);
}, Number(timeoutText ?? 60000));

const client = new Ably.Realtime({
  key, endpoint: '127.0.0.1', port: Number(port), tls: false, useBinaryProtocol: format === 'msgpack',
  disableConnectivityCheck: true, logLevel: 0,
});
const channel = client.channels.get(channelName);
let finished = false;
function check() {
  if (finished) return;
  for (const [id, text] of Object.entries(expected)) {
    if (responses.get(id)?.text !== text) return;
  }
  finished = true;
  setTimeout(() => {
    clearTimeout(timer);
    emit({ event: 'done', responses: snapshot() });
    client.close();
    process.exit(0);
  }, 300);
}
const responseIdOf = (m) => m.extras?.headers?.responseId ?? '';

await channel.subscribe('start', (m) => { get(responseIdOf(m)).started = true; check(); });
await channel.subscribe('token', (m) => {
  const r = get(responseIdOf(m));
  if (r.replaced) return;
  r.text += m.data;
  r.tokens++;
  check();
});
await channel.subscribe('stop', (m) => { get(responseIdOf(m)).stopped = true; check(); });
await channel.subscribe('response-complete', (m) => {
  const r = get(responseIdOf(m));
  r.text = m.data;
  r.replaced = true;
  check();
});
emit({ event: 'attached' });
