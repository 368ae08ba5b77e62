// A small loopback TCP proxy for fault injection: clients connect to the proxy's port and are piped to the server.
// cutAll() / cut(tag) destroys live client+upstream socket pairs at once, like a network drop; the proxy keeps
// listening, so the client's reconnect (resume) goes through it again.
//
//   const proxy = await startProxy(server.port);
//   const client = new Ably.Realtime(clientOptionsFor(proxy.port, key, format));
//   proxy.cutAll();            // drop every live connection
//   proxy.tag = 'pub';         // connections accepted from now on carry this tag
//   proxy.cut('pub');          // drop only the connections with this tag
//   await proxy.dropThenCut({ direction: 'down', ms: 200 }); // lose server->client data for 200 ms, then cut
//   proxy.targetPort = other.port; // connections accepted from now on go to another server (a node switch)
//   await proxy.close();

import { createServer, connect } from 'node:net';

/**
 * Start a proxy on 127.0.0.1:0 forwarding to 127.0.0.1:`targetPort`.
 * @param {number} targetPort
 * @param {{ host?: string, tag?: string }} [opts]
 */
export async function startProxy(targetPort, opts = {}) {
  const host = opts.host ?? '127.0.0.1';
  /** @type {Set<{ client: import('node:net').Socket, upstream: import('node:net').Socket, tag: string|undefined, since: number }>} */
  const pairs = new Set();
  let closed = false;

  const stats = { accepted: 0, cutConnections: 0, cuts: 0 };

  const server = createServer({ noDelay: true }, (client) => {
    if (closed) {
      client.destroy();
      return;
    }
    stats.accepted++;
    const upstream = connect({ host, port: proxy.targetPort, noDelay: true });
    const pair = { client, upstream, tag: proxy.tag, since: Date.now(), dropUp: false, dropDown: false };
    pairs.add(pair);
    const drop = () => {
      if (!pairs.delete(pair)) return;
      client.destroy();
      upstream.destroy();
    };
    // Errors (ECONNRESET, EPIPE) just end the pair; the other side sees the connection close.
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    forward(client, upstream, () => pair.dropUp);
    forward(upstream, client, () => pair.dropDown);
  });

  /** Like from.pipe(to) (with backpressure), but data is discarded while dropping() is true. */
  function forward(from, to, dropping) {
    from.on('data', (chunk) => {
      if (dropping() || to.destroyed) return;
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    from.on('end', () => to.end());
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  const destroyPair = (pair) => {
    pairs.delete(pair);
    pair.client.destroy();
    pair.upstream.destroy();
  };

  const proxy = {
    port: server.address().port,
    /** Tag given to connections accepted from now on (see cut(tag)). */
    tag: opts.tag,
    /** Where connections accepted from now on are piped to. */
    targetPort,
    stats,
    /** Number of live connection pairs (optionally only those with `tag`). */
    liveCount(tag) {
      let n = 0;
      for (const pair of pairs) if (tag === undefined || pair.tag === tag) n++;
      return n;
    },
    /** Destroy every live client+upstream pair, like a network drop. Returns how many were cut. */
    cutAll() {
      stats.cuts++;
      const victims = [...pairs];
      for (const pair of victims) destroyPair(pair);
      stats.cutConnections += victims.length;
      return victims.length;
    },
    /** Destroy the live pairs accepted while `proxy.tag` was `tag`. Returns how many were cut. */
    cut(tag) {
      stats.cuts++;
      const victims = [...pairs].filter((p) => p.tag === tag);
      for (const pair of victims) destroyPair(pair);
      stats.cutConnections += victims.length;
      return victims.length;
    },
    /**
     * A drop that is not clean: data of the live pairs (those with `tag`, or all) is lost in `direction`
     * ('down' = server to client, 'up' = client to server, 'both') for `ms`, then the pairs are cut. With 'down',
     * publishes still reach the server but their ACKs are lost, so the client re-sends them after resuming.
     * `beforeCut()` runs just before the cut. Resolves to how many pairs were cut.
     */
    async dropThenCut({ direction = 'down', ms = 200, tag, beforeCut } = {}) {
      stats.cuts++;
      const victims = [...pairs].filter((p) => tag === undefined || p.tag === tag);
      for (const pair of victims) {
        if (direction === 'down' || direction === 'both') pair.dropDown = true;
        if (direction === 'up' || direction === 'both') pair.dropUp = true;
      }
      await new Promise((r) => setTimeout(r, ms));
      beforeCut?.();
      const live = victims.filter((p) => pairs.has(p));
      for (const pair of live) destroyPair(pair);
      stats.cutConnections += live.length;
      return live.length;
    },
    /** Stop listening and destroy every live pair. */
    async close() {
      if (closed) return;
      closed = true;
      for (const pair of [...pairs]) destroyPair(pair);
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
