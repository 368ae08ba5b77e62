// node publish.mjs <port> <key> <channel> <json|msgpack> <count> [timeoutMs]
// Fires <count> publishes named "token" with data "tok-<i>" without awaiting them, then awaits all of them,
// plus one of each data kind (string, binary, JSON object, extras headers) named "fidelity-*", and prints
// {"event":"published","ok":n,"failed":m}.
import { Ably, clientOptions, deadline, emit } from './ably.mjs';

const [port, key, channelName, format, countText, timeoutText] = process.argv.slice(2);
const count = Number(countText);
let settled = 0;
deadline(Number(timeoutText ?? 60000), () => ({ settled }));

const client = new Ably.Realtime(clientOptions(Number(port), key, format, { echoMessages: false }));
const channel = client.channels.get(channelName);
const publishes = [];
for (let i = 0; i < count; i++) publishes.push(channel.publish('token', `tok-${i}`).finally(() => settled++));
publishes.push(channel.publish('fidelity-string', 'héllo ✓'));
publishes.push(channel.publish('fidelity-binary', Buffer.from([0, 1, 2, 253, 254, 255])));
publishes.push(channel.publish('fidelity-json', { answer: 42, list: [1, 'two'], nested: { ok: true } }));
publishes.push(channel.publish({ name: 'fidelity-headers', data: 'h', extras: { headers: { responseId: 'r1', index: '7' } } }));
const results = await Promise.allSettled(publishes);
const failed = results.filter((r) => r.status === 'rejected');
emit({ event: 'published', ok: results.length - failed.length, failed: failed.length, firstError: failed[0]?.reason?.message ?? null });
client.close();
process.exit(failed.length === 0 ? 0 : 1);
