// node subscribe.mjs <port> <key> <channel> <json|msgpack> <count> [timeoutMs]
// Attaches, prints {"event":"attached"}, collects <count> messages, prints {"event":"done",...} and exits.
import { Ably, clientOptions, deadline, emit } from './ably.mjs';

const [port, key, channelName, format, countText, timeoutText] = process.argv.slice(2);
const count = Number(countText);
const received = [];
deadline(Number(timeoutText ?? 60000), () => ({ received: received.length }));

const client = new Ably.Realtime(clientOptions(Number(port), key, format));
const channel = client.channels.get(channelName);
let finished = false;

await channel.subscribe((message) => {
  received.push({
    name: message.name,
    data: Buffer.isBuffer(message.data) ? { base64: message.data.toString('base64') } : message.data,
    encoding: message.encoding ?? null,
    headers: message.extras?.headers ?? null,
  });
  if (received.length >= count && !finished) {
    finished = true;
    // Wait a little for strays (duplicates) before reporting.
    setTimeout(() => {
      client.close();
      // Exit only once stdout has drained: a pipe write of a large report is asynchronous.
      process.stdout.write(JSON.stringify({ event: 'done', count: received.length, messages: received }) + '\n', () => process.exit(0));
    }, 300);
  }
});
emit({ event: 'attached', connectionId: client.connection.id });
