#!/usr/bin/env node
// The Node.js peer receiver: node:http with no framework, one event loop per process, the
// verification of verify.js and the in-memory state of store.js.
//
//   DIDIT_WEBHOOK_SECRET=... node server.js [--host 127.0.0.1] [--port 8080] [--workers 1]
//                                           [--accept-simple]

import cluster from 'node:cluster';
import http from 'node:http';
import { parseArgs } from 'node:util';

import { Store } from './store.js';
import { TOLERANCE_SECS, createVerifier } from './verify.js';

const WEBHOOK_PATH = '/webhooks/didit';
const HEALTH_PATH = '/healthz';
const MAX_BODY = 1 << 20;
// After a 413 the rest of the body is read and discarded (so the client gets the answer rather
// than a reset), up to this much; then the connection is dropped.
const MAX_DRAIN = 16 << 20;

function usage(message) {
  process.stderr.write(`${message}\nusage: node server.js [--host H] [--port N] [--workers N] [--accept-simple]\n`);
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

const BODIES = {
  accepted: '{"status":"accepted"}',
  duplicate: '{"status":"duplicate"}',
  ok: '{"status":"ok"}',
};

function send(res, status, body, extra = {}) {
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    ...extra,
  });
  res.end(body);
}

const error = (res, status, reason, extra) => send(res, status, JSON.stringify({ error: reason }), extra);

function handler({ secret, acceptSimple }) {
  const verify = createVerifier({ secret, acceptSimple });
  const store = new Store({ windowSecs: 2 * TOLERANCE_SECS });

  function webhook(req, res) {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > MAX_BODY) {
      tooLarge(req, res);
      return;
    }
    const chunks = [];
    let size = 0;
    const onData = (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        req.off('data', onData).off('end', onEnd);
        chunks.length = 0;
        tooLarge(req, res, size);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      const v = verify(req.headers, body);
      if (!v.ok) {
        error(res, v.status, v.error);
      } else if (store.accept(v.key, v.event, v.verifiedAt)) {
        send(res, 200, BODIES.accepted);
      } else {
        send(res, 200, BODIES.duplicate);
      }
    };
    req.on('data', onData).on('end', onEnd);
  }

  function tooLarge(req, res, already = 0) {
    error(res, 413, 'payload_too_large');
    let drained = already;
    req.on('data', (chunk) => {
      drained += chunk.length;
      if (drained > MAX_DRAIN) req.socket.destroy();
    });
  }

  return (req, res) => {
    const q = req.url.indexOf('?');
    const path = q === -1 ? req.url : req.url.slice(0, q);
    if (path === WEBHOOK_PATH) {
      if (req.method === 'POST') return webhook(req, res);
      return error(res, 405, 'method_not_allowed', { Allow: 'POST' });
    }
    if (path === HEALTH_PATH) {
      if (req.method === 'GET' || req.method === 'HEAD') return send(res, 200, BODIES.ok);
      return error(res, 405, 'method_not_allowed', { Allow: 'GET, HEAD' });
    }
    return error(res, 404, 'not_found');
  };
}

function serve(opts, announce) {
  const server = http.createServer(handler(opts));
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 10_000;
  server.on('error', (e) => {
    process.stderr.write(`cannot listen on ${opts.host}:${opts.port}: ${e.message}\n`);
    process.exit(1);
  });
  server.listen(opts.port, opts.host, () => {
    if (announce) process.stdout.write(`listening on ${opts.host}:${server.address().port}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop).on('SIGINT', stop);
}

function main() {
  const opts = options();
  if (opts.workers === 1) {
    serve(opts, true);
    return;
  }
  if (cluster.isPrimary) {
    // Each worker has its own event loop and its own in-memory state: a duplicate is caught only
    // when it reaches the worker that saw the first delivery.
    let announced = false;
    let stopping = false;
    cluster.on('listening', (_worker, address) => {
      if (!announced) {
        announced = true;
        process.stdout.write(`listening on ${opts.host}:${address.port}\n`);
      }
    });
    cluster.on('exit', (worker, code, signal) => {
      if (!stopping) process.stderr.write(`worker ${worker.process.pid} exited (${signal ?? code})\n`);
    });
    const stop = () => {
      stopping = true;
      for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
      cluster.disconnect(() => process.exit(0));
    };
    process.on('SIGTERM', stop).on('SIGINT', stop);
    for (let i = 0; i < opts.workers; i++) cluster.fork();
  } else {
    serve(opts, false);
  }
}

main();
