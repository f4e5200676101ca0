"""Sends a plan of requests with the HTTP clients Python senders use: `http.client` (the standard
library, which writes the whole request before it reads the answer), `requests` and curl.

Usage: driver.py PLAN.json > RESULTS.jsonl. The plan is written by tests/it/real_clients.rs; each
result line is {"id", "status", "error", "closed", "body_sent"}, with null where a client cannot
tell. The driver judges nothing: the Rust test compares the results with tests/clients/cases.json.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import urllib.parse

TIMEOUT = 10


def body_of(req):
    with open(req["body_file"], "rb") as f:
        return f.read()


def probe_closed(fd):
    """Whether the server closed the connection: EOF or a reset within 3 s on a duplicate of the
    client's socket (a duplicate, so that the client closing its own descriptor sends nothing)."""
    probe = socket.socket(fileno=fd)
    probe.settimeout(3)
    try:
        return probe.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    finally:
        probe.close()


def send_http_client(url, req):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)
    if req.get("http10"):
        conn._http_vsn = 10
        conn._http_vsn_str = "HTTP/1.0"
    body = body_of(req)
    result = {"id": req["id"], "status": None, "error": None, "closed": None, "body_sent": None}
    fd = None
    try:
        conn.putrequest(req["method"], req["path"], skip_accept_encoding=True)
        for k, v in req["headers"]:
            conn.putheader(k, v)
        conn.putheader("Content-Length", req.get("content_length") or str(len(body)))
        if req.get("expect_continue"):
            # http.client has no 100-continue support: send the head, then wait for an answer.
            conn.putheader("Expect", "100-continue")
            conn.endheaders()
            result["body_sent"] = False
        else:
            conn.endheaders()
            conn.send(body)
            result["body_sent"] = True
        fd = os.dup(conn.sock.fileno())
        resp = conn.getresponse()
        resp.read()
        result["status"] = resp.status
        result["closed"] = probe_closed(fd)
        fd = None
    except Exception as e:  # the failure is the result
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        if fd is not None:
            os.close(fd)
        conn.close()
    return result


def send_requests(url, req):
    import requests

    result = {"id": req["id"], "status": None, "error": None, "closed": None, "body_sent": True}
    headers = dict(req["headers"])
    if req.get("content_length"):
        headers["Content-Length"] = req["content_length"]
    try:
        with requests.Session() as s:
            r = s.request(req["method"], url + req["path"], data=body_of(req), headers=headers,
                          timeout=TIMEOUT)
            result["status"] = r.status_code
    except Exception as e:
        result["error"] = f"{type(e).__name__}: {e}"
    return result


def send_curl(url, req):
    result = {"id": req["id"], "status": None, "error": None, "closed": None, "body_sent": None}
    cmd = ["curl", "--silent", "--show-error", "--max-time", str(TIMEOUT), "-o", os.devnull,
           "-w", "%{http_code} %{size_upload}", "-X", req["method"],
           "--data-binary", "@" + req["body_file"]]
    for k, v in req["headers"]:
        cmd += ["-H", f"{k}: {v}"]
    if req.get("content_length"):
        cmd += ["-H", f"Content-Length: {req['content_length']}"]
    # curl sends large bodies after `Expect: 100-continue` unless told not to; the plain cases
    # write the whole body at once, like the other clients.
    cmd += ["-H", "Expect: 100-continue" if req.get("expect_continue") else "Expect:"]
    if req.get("http10"):
        cmd.append("--http1.0")
    cmd.append(url + req["path"])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT + 5)
    out = p.stdout.split()
    if p.returncode == 0 and len(out) == 2:
        result["status"] = int(out[0])
        result["body_sent"] = int(out[1]) > 0
    else:
        result["error"] = f"curl exit {p.returncode}: {p.stderr.strip()}"
    return result


CLIENTS = {"http.client": send_http_client, "requests": send_requests, "curl": send_curl}


def main():
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    for req in plan["requests"]:
        send = CLIENTS.get(req["client"])
        if send is None:
            continue
        print(json.dumps(send(plan["url"], req)), flush=True)


if __name__ == "__main__":
    main()
