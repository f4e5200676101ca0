// Sends a plan of requests with Node's HTTP clients: `node:http` and the built-in `fetch`
// (undici). Usage: node driver.mjs PLAN.json > RESULTS.jsonl; the same plan and result lines as
// driver.py (tests/it/real_clients.rs writes the plan and judges the results).
import { readFileSync } from 'node:fs';
import http from 'node:http';

const TIMEOUT_MS = 10_000;

function sendHttp(url, req) {
  const u = new URL(url);
  const body = readFileSync(req.body_file);
  const headers = Object.fromEntries(req.headers);
  headers['Content-Length'] = req.content_length ?? String(body.length);
  if (req.expect_continue) headers['Expect'] = '100-continue';
  return new Promise((resolve) => {
    const result = { id: req.id, status: null, error: null, closed: null, body_sent: false };
    const done = (extra) => resolve(Object.assign(result, extra));
    const r = http.request(
      { host: u.hostname, port: u.port, method: req.method, path: req.path, headers, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => done({ status: res.statusCode }));
        res.on('error', (e) => done({ error: `${e.code ?? e.name}: ${e.message}` }));
      },
    );
    r.setTimeout(TIMEOUT_MS, () => r.destroy(new Error('timed out')));
    r.on('error', (e) => done({ error: `${e.code ?? e.name}: ${e.message}` }));
    if (req.expect_continue) {
      // Node sends the body only once the server says 100 Continue.
      r.on('continue', () => { result.body_sent = true; r.end(body); });
    } else {
      result.body_sent = true;
      r.end(body);
    }
  });
}

async function sendFetch(url, req) {
  const result = { id: req.id, status: null, error: null, closed: null, body_sent: true };
  try {
    const res = await fetch(url + req.path, {
      method: req.method,
      headers: req.headers,
      body: readFileSync(req.body_file),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    await res.arrayBuffer();
    result.status = res.status;
  } catch (e) {
    const cause = e.cause ? ` (${e.cause.code ?? ''} ${e.cause.message})` : '';
    result.error = `${e.name}: ${e.message}${cause}`;
  }
  return result;
}

const CLIENTS = { 'node-http': sendHttp, 'node-fetch': sendFetch };

const plan = JSON.parse(readFileSync(process.argv[2], 'utf8'));
for (const req of plan.requests) {
  const send = CLIENTS[req.client];
  if (!send) continue;
  process.stdout.write(JSON.stringify(await send(plan.url, req)) + '\n');
}
