// Shared helpers for the interop tests: formats, client lifecycle, bounded waiting.

import Ably from 'ably';
import { after, before, describe } from 'node:test';
import { clientOptionsFor, randomAlnum, startServer } from './server.mjs';

export { Ably };

/** Every test file runs once per wire format. */
export const FORMATS = ['msgpack', 'json'];

/** Default per-test timeout. */
export const TEST_TIMEOUT = 60_000;

/** Time to wait after the expected traffic arrived, to catch duplicates or strays. */
export const SETTLE_MS = 300;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A unique channel name for one test. */
export function uniqueName(prefix) {
  return `${prefix}-${randomAlnum(10)}`;
}

/** Rejects with a descriptive error if `promise` does not settle within `ms`. `what` may be a function. */
export async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${typeof what === 'function' ? what() : what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `predicate` until it returns truthy; `describeState` is added to the timeout error. */
export async function waitFor(predicate, { timeout = 20_000, interval = 20, what = 'condition', describeState } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (predicate()) return;
    if (Date.now() > deadline) {
      const state = describeState ? `; state: ${describeState()}` : '';
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${state}`);
    }
    await sleep(interval);
  }
}

/** Deterministic PRNG (mulberry32), so "random" pacing is reproducible. */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A server per test file, plus per-format client factories that remember their clients so
 * each test can close everything it opened.
 *
 *   const ctx = useServer();
 *   for (const format of FORMATS) describe(`x [${format}]`, () => {
 *     test('...', { timeout: TEST_TIMEOUT }, async (t) => {
 *       const rt = await ctx.realtime(t, format, { echoMessages: false });
 *     });
 *   });
 */
export function useServer(serverOpts = {}) {
  const ctx = {
    /** @type {Awaited<ReturnType<typeof startServer>>} */
    server: undefined,

    options(format, extra = {}) {
      return ctx.server.clientOptions(format, extra);
    },

    /**
     * A connected Realtime client, closed when test `t` ends. `port` connects elsewhere than the server's own
     * port, e.g. through a support/proxy.mjs proxy.
     */
    async realtime(t, format, extra = {}, { waitConnected = true, port } = {}) {
      const options = port === undefined ? ctx.options(format, extra) : clientOptionsFor(port, ctx.server.key, format, extra);
      const client = new Ably.Realtime(options);
      t.after(() => closeRealtime(client));
      if (waitConnected) {
        await withTimeout(
          client.connection.whenState('connected'),
          20_000,
          () => `Realtime client (${format}) to connect; state ${client.connection.state}, error ${fmtErr(client.connection.errorReason)}`,
        );
      }
      return client;
    },

    /** A REST client (nothing to close). */
    rest(format, extra = {}) {
      return new Ably.Rest(ctx.options(format, extra));
    },
  };

  before(async () => {
    ctx.server = await startServer(serverOpts);
  });
  after(async () => {
    if (!ctx.server) return;
    const diedEarly = ctx.server.exitInfo;
    const output = ctx.server.output();
    await ctx.server.stop();
    if (diedEarly) {
      throw new Error(`Tokenwire server exited during the tests (${JSON.stringify(diedEarly)})\n${output}`);
    }
  });
  return ctx;
}

/** Close a realtime client and wait (bounded) until it is closed or failed. */
export async function closeRealtime(client) {
  const state = client.connection.state;
  if (state === 'closed' || state === 'failed') return;
  client.close();
  try {
    await withTimeout(
      new Promise((resolve) => {
        const done = () => ['closed', 'failed'].includes(client.connection.state);
        if (done()) return resolve();
        const listener = () => {
          if (done()) {
            client.connection.off(listener);
            resolve();
          }
        };
        client.connection.on(listener);
      }),
      10_000,
      'client to close',
    );
  } catch {
    // A server that never answers CLOSE must not hang the run; the socket is dropped anyway.
  }
}

export function fmtErr(err) {
  if (!err) return 'none';
  return `${err.code ?? '?'}/${err.statusCode ?? '?'} ${err.message ?? err}`;
}

/** describe() per format. */
export function forEachFormat(title, body) {
  for (const format of FORMATS) {
    describe(`${title} [${format}]`, () => body(format));
  }
}

/**
 * Compares a received sequence with the expected one. Returns null when they are equal; otherwise a short report
 * for an assertion message: counts of missing, duplicated, reordered and unexpected items, and where the first of
 * each is (index in `got`), with a little context. Expected items must be unique.
 */
export function sequenceReport(got, expected) {
  if (got.length === expected.length && got.every((v, k) => v === expected[k])) return null;
  const position = new Map(expected.map((v, k) => [v, k]));
  const seen = new Map(); // value -> first index in got
  const duplicates = [];
  const unexpected = [];
  const reordered = [];
  let lastPos = -1;
  got.forEach((v, k) => {
    const pos = position.get(v);
    if (pos === undefined) {
      unexpected.push(k);
      return;
    }
    if (seen.has(v)) {
      duplicates.push(k);
      return;
    }
    seen.set(v, k);
    if (pos < lastPos) reordered.push(k);
    lastPos = Math.max(lastPos, pos);
  });
  const missing = expected.filter((v) => !seen.has(v));
  let firstDiff = 0;
  while (firstDiff < got.length && got[firstDiff] === expected[firstDiff]) firstDiff++;
  const ctxOf = (arr, k) => JSON.stringify(arr.slice(Math.max(0, k - 2), k + 3));
  const lines = [
    `received ${got.length}, expected ${expected.length}; distinct expected received ${seen.size}`,
    `first difference at index ${firstDiff}: got ${ctxOf(got, firstDiff)} expected ${ctxOf(expected, firstDiff)}`,
    `missing ${missing.length}${missing.length ? ` (first ${JSON.stringify(missing.slice(0, 5))}, first gap at expected index ${position.get(missing[0])})` : ''}`,
    `duplicated ${duplicates.length}${duplicates.length ? ` (first ${JSON.stringify(got[duplicates[0]])} at index ${duplicates[0]}, first seen at ${seen.get(got[duplicates[0]])})` : ''}`,
    `reordered ${reordered.length}${reordered.length ? ` (first at index ${reordered[0]}: ${ctxOf(got, reordered[0])})` : ''}`,
    `unexpected ${unexpected.length}${unexpected.length ? ` (first ${JSON.stringify(got[unexpected[0]])} at index ${unexpected[0]})` : ''}`,
  ];
  return lines.join('\n  ');
}
