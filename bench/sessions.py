#!/usr/bin/env python3
"""Starts N sessions on a runtime (keep-alive, 4 threads) for customers FIRST.. (default 0)
and writes their IDs, one a line; or, with --end, ends the sessions listed in FILE.
Usage: sessions.py HOST PORT N OUT [FIRST] | sessions.py HOST PORT --end FILE"""
import http.client, json, sys, threading

host, port = sys.argv[1], int(sys.argv[2])
ending = sys.argv[3] == "--end"
if ending:
    with open(sys.argv[4]) as f:
        ids = f.read().split()
    count = len(ids)
else:
    count, out = int(sys.argv[3]), sys.argv[4]
    first = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    ids = [None] * count

def work(start, step):
    conn = http.client.HTTPConnection(host, port)
    for i in range(start, count, step):
        if ending:
            conn.request("DELETE", "/v1/sessions/" + ids[i])
            conn.getresponse().read()
            continue
        body = json.dumps({"channel": "synthetic", "audience_id": {"customer_id": first + i}})
        conn.request("POST", "/v1/sessions", body, {"content-type": "application/json"})
        ids[i] = json.loads(conn.getresponse().read())["session_id"]

threads = [threading.Thread(target=work, args=(t, 4)) for t in range(4)]
for t in threads: t.start()
for t in threads: t.join()
if not ending:
    with open(out, "w") as f:
        f.write("\n".join(ids) + "\n")
