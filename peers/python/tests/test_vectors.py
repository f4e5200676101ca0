"""The known-answer vectors of crates/didit-fixtures/fixtures/didit-v3-signature-vectors.json through verify.py,
with the clock set to each vector's timestamp: X-Signature, V2 alone and (when enabled) Simple
alone must each verify every payload. Run: python -m unittest discover -s tests (from peers/python).
"""

from __future__ import annotations

import json
import os
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from verify import Rejection, Verifier, canonical_v2  # noqa: E402

SHARED = Path(os.environ.get("DIDIT_SHARED_DIR", HERE.parent.parent / "crates" / "didit-fixtures"))
FIXTURES = json.loads((SHARED / "fixtures" / "didit-v3-signature-vectors.json").read_text("utf-8"))


def cases() -> list[dict]:
    out = []
    for set_name in ("official_wp_plugin", "edge_cases"):
        s = FIXTURES[set_name]
        for name, c in s["cases"].items():
            out.append({"id": f"{set_name}/{name}", "secret": c.get("secret") or s["secret"], **c})
    out.append({"id": "sample_full", **FIXTURES["sample_full"]})
    return out


def only(c: dict, *names: str) -> dict[str, str]:
    return {k.lower(): v for k, v in c["headers"].items() if k.lower() in names}


class Vectors(unittest.TestCase):
    def test_every_scheme_verifies_every_vector(self) -> None:
        for c in cases():
            ts = int(c["headers"]["X-Timestamp"])
            body = c["body"].encode("utf-8")
            for headers, scheme, simple in [
                (only(c, "x-signature", "x-timestamp"), "raw", False),
                (only(c, "x-signature-v2", "x-timestamp"), "v2", False),
                (only(c, "x-signature-simple", "x-timestamp"), "simple", True),
            ]:
                with self.subTest(case=c["id"], scheme=scheme):
                    v = Verifier(c["secret"], accept_simple=simple, clock=lambda ts=ts: ts)
                    self.assertEqual(v.verify(headers, body).scheme, scheme)

    def test_canonical_form_is_byte_exact(self) -> None:
        for c in cases():
            with self.subTest(case=c["id"]):
                self.assertEqual(canonical_v2(json.loads(c["body"])), c["v2_canonical"].encode())

    def test_simple_is_refused_unless_enabled(self) -> None:
        c = cases()[0]
        v = Verifier(c["secret"], clock=lambda: int(c["headers"]["X-Timestamp"]))
        with self.assertRaises(Rejection) as r:
            v.verify(only(c, "x-signature-simple", "x-timestamp"), c["body"].encode())
        self.assertEqual((r.exception.status, r.exception.reason), (401, "missing_signature"))

    def test_freshness_both_ways(self) -> None:
        c = cases()[0]
        ts = int(c["headers"]["X-Timestamp"])
        h = only(c, "x-signature", "x-timestamp")
        for now, reason in [(ts + 600, "stale"), (ts - 600, "from_future")]:
            with self.subTest(reason=reason), self.assertRaises(Rejection) as r:
                Verifier(c["secret"], clock=lambda now=now: now).verify(h, c["body"].encode())
            self.assertEqual(r.exception.reason, reason)


if __name__ == "__main__":
    unittest.main()
