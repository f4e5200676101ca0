#!/usr/bin/env bun
// The Bun peer receiver: Bun.serve with its native routes, one event loop per process, the
// verification of verify.js and the in-memory state of store.js. `--workers N` runs N processes
// on one port (SO_REUSEPORT: the kernel spreads the connections).
//
//   DIDIT_WEBHOOK_SECRET=... bun server.js [--host 127.0.0.1] [--port 8080] [--workers 1]
//                                          [--accept-simple]

import { parseArgs } from 'node:util';

import { Store } from './store.js';
import { TOLERANCE_SECS, createVerifier } from './verify.js';

const WEBHOOK_PATH = '/webhooks/didit';
const HEALTH_PATH = '/healthz';
const MAX_BODY = 1 << 20;
// A body over the limit is read and discarded up to this much before the 413 (readBody).
const MAX_DRAIN = 16 << 20;
// Set on the processes the first one starts for --workers N.
const WORKER_ENV = 'DIDIT_BUN_PEER_WORKER';

function usage(message) {
  process.stderr.write(`${message}\nusage: bun server.js [--host H] [--port N] [--workers N] [--accept-simple]\n`);
  process.exit(2);
}

function options() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        host: { type: 'string', default: process.env.HOST ?? '127.0.0.1' },
        port: { type: 'string', default: process.env.PORT ?? '8080' },
        workers: { type: 'string', default: '1' },
        'accept-simple': { type: 'boolean', default: false },
      },
    }));
  } catch (e) {
    usage(e.message);
  }
  const port = Number(values.port);
  const workers = Number(values.workers);
  if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`bad --port ${values.port}`);
  if (!Number.isInteger(workers) || workers < 1) usage(`bad --workers ${values.workers}`);
  const secret = process.env.DIDIT_WEBHOOK_SECRET;
  if (!secret) {
    process.stderr.write('DIDIT_WEBHOOK_SECRET is not set: export the destination secret Didit gave you\n');
    process.exit(2);
  }
  return { host: values.host, port, workers, acceptSimple: values['accept-simple'], secret };
}

// Shared by every answer; Bun copies it into each response.
const JSON_HEADERS = { 'Content-Type': 'application/json' };
const BODIES = {
  accepted: '{"status":"accepted"}',
  duplicate: '{"status":"duplicate"}',
  ok: '{"status":"ok"}',
};
const ERRORS = new Map();

const send = (status, body) => new Response(body, { status, headers: JSON_HEADERS });

function error(status, reason, extra) {
  let body = ERRORS.get(reason);
  if (body === undefined) {
    body = JSON.stringify({ error: reason });
    ERRORS.set(reason, body);
  }
  if (extra === undefined) return send(status, body);
  return new Response(body, { status, headers: { ...JSON_HEADERS, ...extra } });
}

const EMPTY = new Uint8Array(0);

// The body as bytes, or null when it is over MAX_BODY. A declared Content-Length within the
// limit is read in one piece; a larger one, or a chunked body over the limit, is read and
// discarded up to MAX_DRAIN before the 413 (a client that writes its whole request before
// reading then gets the answer rather than a reset); beyond that the connection is cut.
async function readBody(req) {
  const declared = req.headers.get('content-length');
  if (declared !== null) {
    const length = Number(declared);
    if (length <= MAX_BODY) return req.bytes();
    if (length > MAX_DRAIN) return null;
  }
  if (req.body === null) return EMPTY;
  const chunks = [];
  let size = 0;
  for await (const chunk of req.body) {
    size += chunk.length;
    if (size > MAX_DRAIN) break;
    if (size <= MAX_BODY) chunks.push(chunk);
  }
  if (size > MAX_BODY) return null;
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
}

function handlers({ secret, acceptSimple }) {
  const verify = createVerifier({ secret, acceptSimple });
  const store = new Store({ windowSecs: 2 * TOLERANCE_SECS });

  async function webhook(req) {
    if (req.method !== 'POST') return error(405, 'method_not_allowed', { Allow: 'POST' });
    const body = await readBody(req);
    if (body === null) return error(413, 'payload_too_large', { Connection: 'close' });
    const v = verify(req.headers, body);
    if (!v.ok) return error(v.status, v.error);
    return send(200, store.accept(v.key, v.event, v.verifiedAt) ? BODIES.accepted : BODIES.duplicate);
  }

  function health(req) {
    if (req.method === 'GET' || req.method === 'HEAD') return send(200, BODIES.ok);
    return error(405, 'method_not_allowed', { Allow: 'GET, HEAD' });
  }

  return { webhook, health };
}

function serve(opts) {
  const { webhook, health } = handlers(opts);
  try {
    return Bun.serve({
      hostname: opts.host,
      port: opts.port,
      reusePort: true,
      idleTimeout: 10,
      // Bun's own limit would answer 413 without the contract's body: the handler enforces
      // MAX_BODY instead, reading nothing it does not keep (the body streams).
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      // Bun's native router: exact paths, whatever the query string.
      routes: {
        [WEBHOOK_PATH]: webhook,
        [HEALTH_PATH]: health,
      },
      fetch: () => error(404, 'not_found'),
      error: (e) => {
        process.stderr.write(`${e?.stack ?? e}\n`);
        return error(500, 'internal');
      },
    });
  } catch (e) {
    process.stderr.write(`cannot listen on ${opts.host}:${opts.port}: ${e.message}\n`);
    process.exit(1);
  }
}

// Reads a child's stdout up to its `listening on` line.
async function announced(child) {
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of child.stdout) {
    text += decoder.decode(chunk, { stream: true });
    if (text.includes('\n')) return text.startsWith('listening on ');
  }
  return false;
}

async function main() {
  const opts = options();
  const worker = process.env[WORKER_ENV] === '1';
  const server = serve(opts);
  const stop = () => {
    server.stop(true);
    process.exit(0);
  };
  process.on('SIGTERM', stop).on('SIGINT', stop);

  if (worker) {
    process.stdout.write(`listening on ${opts.host}:${server.port}\n`);
    // The first process holds our stdin: when it is gone, so is this worker.
    (async () => {
      for await (const _ of Bun.stdin.stream());
      stop();
    })();
    return;
  }
  if (opts.workers === 1) {
    process.stdout.write(`listening on ${opts.host}:${server.port}\n`);
    return;
  }
  // --workers N: this process serves and starts N - 1 more on the port it got, each with its
  // own event loop and its own in-memory state (a duplicate is caught only when it reaches the
  // process that saw the first delivery). Announced once all of them listen.
  const args = ['--host', opts.host, '--port', String(server.port)];
  if (opts.acceptSimple) args.push('--accept-simple');
  const children = [];
  let stopping = false;
  for (let i = 1; i < opts.workers; i++) {
    children.push(
      Bun.spawn([process.execPath, import.meta.path, ...args], {
        env: { ...process.env, [WORKER_ENV]: '1' },
        stdin: 'pipe',
        stdout: 'pipe',
        stderr: 'inherit',
        onExit: (child, code, signal) => {
          if (!stopping) process.stderr.write(`worker ${child.pid} exited (${signal ?? code})\n`);
        },
      }),
    );
  }
  const ready = await Promise.all(children.map(announced));
  if (!ready.every(Boolean)) {
    process.stderr.write('a worker did not start\n');
    for (const c of children) c.kill();
    process.exit(1);
  }
  const stopAll = () => {
    stopping = true;
    for (const c of children) c.kill('SIGTERM');
    stop();
  };
  process.removeAllListeners('SIGTERM').removeAllListeners('SIGINT');
  process.on('SIGTERM', stopAll).on('SIGINT', stopAll);
  process.stdout.write(`listening on ${opts.host}:${server.port}\n`);
}

main();
