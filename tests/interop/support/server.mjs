// Starts and stops a real Tokenwire server process for the interop tests.
//
// Contract (implemented by src/Tokenwire.Cli):
//   dotnet <dll> serve --host 127.0.0.1 --port 0 --data <dir> --key <appId.keyId:secret> [--Tokenwire:X=Y ...]
// prints "Tokenwire listening on http://127.0.0.1:<port>" and "Root key: <key>" on stdout.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DEFAULT_DLL = join(REPO_ROOT, 'src', 'Tokenwire.Cli', 'bin', 'Release', 'net10.0', 'tokenwire.dll');

const START_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5_000;
const LOG_LIMIT = 256 * 1024; // keep the last 256 KiB of server output for error messages
// Require the line end so a port split across two stdout chunks is never read half-way.
const LISTENING_RE = /Tokenwire listening on http:\/\/127\.0\.0\.1:(\d+)\/?\r?\n/;
const ROOT_KEY_RE = /Root key: (\S+)\r?\n/;

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A random alphanumeric string (no '.' or ':'). */
export function randomAlnum(length = 24) {
  const bytes = randomBytes(length);
  let s = '';
  for (const b of bytes) s += ALNUM[b % ALNUM.length];
  return s;
}

/** A fresh root key of the form test.k1:<secret>. */
export function randomKey() {
  return `test.k1:${randomAlnum(32)}`;
}

// Servers still running when the test process exits are killed synchronously.
const running = new Set();
process.once('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/**
 * Start a server. Resolves once the listening line was printed.
 * `dataDir`: use this data folder (e.g. the one of a previous server, to test a restart) instead of a fresh
 * temporary one; a given folder belongs to the caller and is not removed by stop().
 * @param {{ extraArgs?: string[], key?: string, dll?: string, env?: Record<string,string>, dataDir?: string }} [opts]
 */
export async function startServer(opts = {}) {
  // Relative paths are taken from the caller's working directory (the server runs in the repo root).
  const dll = resolve(opts.dll ?? process.env.TOKENWIRE_DLL ?? DEFAULT_DLL);
  if (!existsSync(dll)) {
    throw new Error(
      `Tokenwire server dll not found at ${dll}. Build it first (dotnet build Tokenwire.slnx -c Release) or set TOKENWIRE_DLL.`,
    );
  }
  const key = opts.key ?? randomKey();
  const ownsDataDir = !opts.dataDir;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'tokenwire-interop-')));
  const removeDataDir = () => (ownsDataDir ? rm(dataDir, { recursive: true, force: true }) : Promise.resolve());
  const args = [
    dll,
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--data',
    dataDir,
    '--key',
    key,
    ...(opts.extraArgs ?? []),
  ];

  const child = spawn('dotnet', args, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      DOTNET_NOLOGO: '1',
      DOTNET_CLI_TELEMETRY_OPTOUT: '1',
      ...(opts.env ?? {}),
    },
  });
  running.add(child);

  let stdout = '';
  let stderr = '';
  const echo = !!process.env.TOKENWIRE_SERVER_LOG;
  const append = (buf, chunk) => {
    const s = buf + chunk;
    return s.length > LOG_LIMIT ? s.slice(s.length - LOG_LIMIT) : s;
  };
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');

  let exitInfo = null;
  const exited = new Promise((resolveExit) => {
    child.once('close', (code, signal) => {
      exitInfo = { code, signal };
      running.delete(child);
      resolveExit(exitInfo);
    });
  });

  const describeOutput = () =>
    `--- server command: dotnet ${args.join(' ')}\n--- server stdout:\n${stdout}\n--- server stderr:\n${stderr}`;

  let port;
  try {
    port = await new Promise((resolvePort, rejectPort) => {
      const timer = setTimeout(() => {
        rejectPort(new Error(`Tokenwire server did not print its listening line within ${START_TIMEOUT_MS / 1000} s`));
      }, START_TIMEOUT_MS);
      child.stdout.on('data', (chunk) => {
        stdout = append(stdout, chunk);
        if (echo) process.stderr.write(`[server] ${chunk}`);
        const m = LISTENING_RE.exec(stdout);
        if (m) {
          clearTimeout(timer);
          resolvePort(Number(m[1]));
        }
      });
      child.stderr.on('data', (chunk) => {
        stderr = append(stderr, chunk);
        if (echo) process.stderr.write(`[server:err] ${chunk}`);
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        rejectPort(new Error(`failed to spawn dotnet: ${err.message}`));
      });
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        rejectPort(new Error(`Tokenwire server exited before listening (code ${code}, signal ${signal})`));
      });
    });
  } catch (err) {
    await killChild(child, exited);
    await removeDataDir();
    err.message += `\n${describeOutput()}`;
    throw err;
  }

  let stopped = false;
  const server = {
    port,
    key,
    /** The key the server printed ("Root key: ..."), if it has printed it. */
    get rootKey() {
      return ROOT_KEY_RE.exec(stdout)?.[1];
    },
    dataDir,
    httpUrl: `http://127.0.0.1:${port}`,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    /** null while running; {code, signal} once exited. */
    get exitInfo() {
      return exitInfo;
    },
    output: describeOutput,
    /** ably-js client options for this server. format: 'msgpack' (Node default) or 'json'. */
    clientOptions(format = 'msgpack', extra = {}) {
      return clientOptionsFor(port, key, format, extra);
    },
    /** The server process id. */
    pid: child.pid,
    /** SIGTERM, then SIGKILL after 5 s; removes the data dir (unless given by the caller). Returns the exit info. */
    async stop() {
      if (stopped) return exitInfo;
      stopped = true;
      const info = await killChild(child, exited);
      await removeDataDir();
      return info;
    },
    /**
     * Send `signal` (e.g. 'SIGKILL', 'SIGTERM') and wait up to `timeoutMs` for the process to exit. Resolves to the
     * exit info, or to null if it is still running then. Leaves the data dir in place (stop() removes it).
     */
    async kill(signal, timeoutMs = 10_000) {
      if (exitInfo) return exitInfo;
      child.kill(signal);
      let timer;
      const timeout = new Promise((r) => {
        timer = setTimeout(r, timeoutMs, null);
      });
      const info = await Promise.race([exited, timeout]);
      clearTimeout(timer);
      return info;
    },
  };
  return server;
}

async function killChild(child, exited) {
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  child.kill('SIGTERM');
  let timer;
  const timeout = new Promise((r) => {
    timer = setTimeout(r, STOP_GRACE_MS, 'timeout');
  });
  const first = await Promise.race([exited, timeout]);
  clearTimeout(timer);
  if (first === 'timeout') {
    child.kill('SIGKILL');
    const info = await exited;
    return { ...info, killed: true };
  }
  return first;
}

/** Endpoint options for ably-js against a local plaintext server. */
export function clientOptionsFor(port, key, format = 'msgpack', extra = {}) {
  const opts = {
    key,
    endpoint: '127.0.0.1',
    port,
    tls: false,
    disableConnectivityCheck: true,
    wsConnectivityCheckUrl: `ws://127.0.0.1:${port}/`,
  };
  if (format === 'json') opts.useBinaryProtocol = false;
  else if (format !== 'msgpack') throw new Error(`unknown format ${format}`);
  return { ...opts, ...extra };
}
