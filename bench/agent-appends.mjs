// An agent's appends, as the official ably-js client sends them: one connection streams N responses on one mutable
// channel at once (an answer and its reasoning, or several tool calls), one appendMessage per token, interleaved
// across the responses and not awaited (as @ably/ai-transport appends), to one tokenwire node on the in-memory engine
// or on a local redis-server. Prints appends per second until every one is ACKed, per round and as the median.
// Each setting runs ROUNDS times, the builds given in turn (a baseline build's dll compares two commits in one run).
//
//   node bench/agent-appends.mjs                       # Redis, 1, 2 and 4 responses at once, 3 rounds
//   ENGINE=memory RESPONSES=2 node bench/agent-appends.mjs
//   DLLS=/tmp/before/tokenwire.dll,src/Tokenwire.Cli/bin/Release/net10.0/tokenwire.dll node bench/agent-appends.mjs
//
// Needs the interop tests' npm packages (cd tests/interop && npm ci), a Release build of the server
// (dotnet build src/Tokenwire.Cli -c Release) and, for Redis, redis-server.
import { resolve } from 'node:path';
import { clientOptionsFor, randomKey, startServer, DEFAULT_DLL } from '../tests/interop/support/server.mjs';
import { startRedis } from '../tests/interop/support/redis.mjs';
import Ably from '../tests/interop/node_modules/ably/build/ably-node.js';

const engine = process.env.ENGINE ?? 'redis';
const rounds = Number(process.env.ROUNDS ?? 3);
const tokens = Number(process.env.TOKENS ?? 4000); // appends per run, shared by the responses
const format = process.env.FORMAT ?? 'msgpack';
const settings = (process.env.RESPONSES ?? '1,2,4').split(',').map(Number);
const dlls = (process.env.DLLS ?? DEFAULT_DLL).split(',').map((p) => resolve(p));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(port, key, responses) {
  const client = new Ably.Realtime(clientOptionsFor(port, key, format));
  try {
    await client.connection.once('connected');
    const channel = client.channels.get(`mutable:agent-appends-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    await channel.attach();
    const serials = [];
    for (let r = 0; r < responses; r++) serials.push((await channel.publish({ name: 'response', data: '' })).serials[0]);
    const perResponse = Math.ceil(tokens / responses);
    const started = performance.now();
    const acks = [];
    for (let i = 0; i < perResponse; i++) {
      for (const serial of serials) acks.push(channel.appendMessage({ serial, data: `token ${i} ` }));
    }
    await Promise.all(acks);
    return (acks.length / (performance.now() - started)) * 1000;
  } finally {
    client.close();
  }
}

const redis = engine === 'redis' ? await startRedis() : null;
const key = randomKey();
const nodes = [];
try {
  for (const dll of dlls) {
    const extraArgs = ['--no-demo', '--Tokenwire:RateLimits:ConnectionMessagesPerSecond=0', '--Tokenwire:RateLimits:ChannelMessagesPerSecond=0'];
    if (redis) extraArgs.push('--redis', redis.connectionString);
    nodes.push({ dll, server: await startServer({ key, dll, extraArgs }) });
  }

  // Warm-up, not counted: every build through every setting once, so the measured rounds run tiered-up code.
  for (const { server } of nodes) for (const responses of settings) await measure(server.port, key, responses);
  for (const responses of settings) {
    const results = new Map(nodes.map(({ dll }) => [dll, []]));
    for (let round = 0; round < rounds; round++) {
      for (const { dll, server } of nodes) results.get(dll).push(await measure(server.port, key, responses));
    }
    for (const [dll, rates] of results) {
      console.log(`${engine} ${format} ${responses} response(s) at once, ${tokens} appends: ${rates.map((r) => r.toFixed(0)).join(' / ')} appends/s, median ${median(rates).toFixed(0)}  [${dll}]`);
    }
  }
} finally {
  await Promise.all(nodes.map(({ server }) => server.stop()));
  await redis?.stop();
}
