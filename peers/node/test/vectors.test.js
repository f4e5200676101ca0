// The known-answer vectors of crates/didit-fixtures/fixtures/didit-v3-signature-vectors.json through verify.js,
// with the clock set to each vector's timestamp: X-Signature must verify every one; V2 alone
// (the X-Signature header left out) verifies all but the payloads listed in README.md.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { createVerifier } from '../verify.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const shared = process.env.DIDIT_SHARED_DIR ?? join(root, 'crates', 'didit-fixtures');
const fixtures = JSON.parse(
  readFileSync(join(shared, 'fixtures', 'didit-v3-signature-vectors.json'), 'utf8'),
);

// The V2 canonical form Didit's Node recipe cannot reproduce (README.md, "Known differences").
const V2_WRONG = new Set(['edge_cases/floats', 'edge_cases/big_ints', 'edge_cases/key_order', 'sample_full']);

function cases() {
  const out = [];
  for (const set of ['official_wp_plugin', 'edge_cases']) {
    for (const [name, c] of Object.entries(fixtures[set].cases)) {
      out.push({ id: `${set}/${name}`, secret: c.secret ?? fixtures[set].secret, ...c });
    }
  }
  const s = fixtures.sample_full;
  out.push({ id: 'sample_full', ...s });
  return out;
}

function headersOf(c, keep) {
  const h = {};
  for (const [k, v] of Object.entries(c.headers)) {
    if (keep.includes(k.toLowerCase())) h[k.toLowerCase()] = v;
  }
  return h;
}

for (const c of cases()) {
  const ts = Number(c.headers['X-Timestamp']);
  const body = Buffer.from(c.body, 'utf8');

  test(`${c.id}: X-Signature over the raw body`, () => {
    const verify = createVerifier({ secret: c.secret, now: () => ts });
    const v = verify(headersOf(c, ['x-signature', 'x-timestamp']), body);
    assert.equal(v.ok, true, JSON.stringify(v));
    assert.equal(v.scheme, 'raw');
  });

  test(`${c.id}: X-Signature-V2 alone`, () => {
    const verify = createVerifier({ secret: c.secret, now: () => ts });
    const v = verify(headersOf(c, ['x-signature-v2', 'x-timestamp']), body);
    if (V2_WRONG.has(c.id)) {
      assert.deepEqual(v, { ok: false, status: 401, error: 'invalid_signature' });
    } else {
      assert.equal(v.ok, true, JSON.stringify(v));
      assert.equal(v.scheme, 'v2');
    }
  });

  test(`${c.id}: X-Signature-Simple only when enabled`, () => {
    const h = headersOf(c, ['x-signature-simple', 'x-timestamp']);
    const off = createVerifier({ secret: c.secret, now: () => ts })(h, body);
    assert.deepEqual(off, { ok: false, status: 401, error: 'missing_signature' });
    const on = createVerifier({ secret: c.secret, acceptSimple: true, now: () => ts })(h, body);
    assert.equal(on.ok, true, JSON.stringify(on));
    assert.equal(on.scheme, 'simple');
  });

  test(`${c.id}: a tampered body fails`, () => {
    const verify = createVerifier({ secret: c.secret, now: () => ts });
    const bad = Buffer.from(JSON.stringify({ ...JSON.parse(c.body), tampered: true }));
    const v = verify(headersOf(c, ['x-signature', 'x-signature-v2', 'x-timestamp']), bad);
    assert.equal(v.ok, false);
  });
}

test('a 10 minute old delivery is stale, one from 10 minutes ahead is from the future', () => {
  const c = cases()[0];
  const ts = Number(c.headers['X-Timestamp']);
  const h = headersOf(c, ['x-signature', 'x-timestamp']);
  const body = Buffer.from(c.body, 'utf8');
  assert.equal(createVerifier({ secret: c.secret, now: () => ts + 600 })(h, body).error, 'stale');
  assert.equal(createVerifier({ secret: c.secret, now: () => ts - 600 })(h, body).error, 'from_future');
});
