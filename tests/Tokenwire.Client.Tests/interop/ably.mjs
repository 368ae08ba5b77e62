// Loads the unchanged ably npm package (2.28.0). Looked up, in order: $ABLY_NODE_MODULES (a node_modules folder),
// this folder's node_modules, the repository's tests/interop/node_modules. Shared so the two scripts agree.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const candidates = [
  process.env.ABLY_NODE_MODULES,
  path.join(here, 'node_modules'),
  path.resolve(here, '..', '..', 'interop', 'node_modules'),
].filter(Boolean);

const folder = candidates.find((c) => existsSync(path.join(c, 'ably', 'package.json')));
if (!folder) {
  console.log(JSON.stringify({ event: 'error', message: `ably not found in ${candidates.join(', ')}` }));
  process.exit(2);
}

const require = createRequire(import.meta.url);
export const Ably = require(path.join(folder, 'ably'));

/** Client options for a local plaintext Tokenwire server, no fallback hosts, no external connectivity checks. */
export function clientOptions(port, key, format, extra = {}) {
  return {
    key,
    endpoint: '127.0.0.1',
    port,
    tls: false,
    useBinaryProtocol: format === 'msgpack',
    disableConnectivityCheck: true,
    wsConnectivityCheckUrl: `ws://127.0.0.1:${port}/`,
    logLevel: 0,
    ...extra,
  };
}

/** Prints one JSON line on stdout. */
export function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

/** Exits with a 'timeout' line if the script has not finished in `ms`. */
export function deadline(ms, describe) {
  const timer = setTimeout(() => {
    emit({ event: 'timeout', ms, state: describe() });
    process.exit(3);
  }, ms);
  timer.unref();
}
