#!/usr/bin/env python3
"""Hostile-request run against `strata serve` (issue 15): fuzzed JSON, truncated and huge bodies,
slowloris clients, bad UTF-8, absurd max_tokens, wrong types, mixed with well-formed requests that
must all succeed. Prints counts, failures of well-formed requests and the server's RSS before and
after.

  scripts/serve_hostile.py STRATA_BIN MODEL [--n 10000] [--slow 20] [--warmup 1000]

RSS is compared across the main round, after a warm-up round of the same mix (what a burst
touches once: worker stacks, code paths, allocator arenas); the change from the server's start
is printed too.

Starts the server itself on a free loopback port (--parallel 2, small limits) and stops it.
"""
import argparse, json, os, random, re, socket, subprocess, sys, threading, time

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def send_raw(port, data, read=True, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                m = re.search(rb"Content-Length: (\d+)", head, re.I)
                if m and len(body) >= int(m.group(1)):
                    break
        return out
    except (socket.timeout, ConnectionError):
        return b""
    finally:
        s.close()

def post(port, path, body, headers=b""):
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    req = (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           b"Content-Type: application/json\r\n" + headers +
           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return send_raw(port, req)

def status_of(resp):
    m = re.match(rb"HTTP/1\.[01] (\d+)", resp)
    return int(m.group(1)) if m else 0

GOOD = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4,
                   "temperature": 0})

def hostile(rng):
    kind = rng.randrange(9)
    base = GOOD
    if kind == 0:  # fuzzed JSON: random byte flips
        b = bytearray(base.encode())
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return "fuzz", bytes(b)
    if kind == 1:  # truncated JSON
        return "truncated", base.encode()[: rng.randrange(len(base))]
    if kind == 2:  # bad UTF-8 in a string
        return "bad-utf8", base.replace("hi", "h\udcff\udcfei").encode("utf-8", "surrogateescape")
    if kind == 3:  # absurd max_tokens
        return "max_tokens", json.dumps({"messages": [{"role": "user", "content": "hi"}],
                                          "max_tokens": rng.choice([10**18, -5, 2**64, 1e300])}).encode()
    if kind == 4:  # wrong types
        field = rng.choice(["messages", "temperature", "stream", "stop", "top_k", "seed"])
        d = json.loads(base)
        d[field] = rng.choice([{"a": 1}, [1, 2], "x", 3.5, None, True])
        return "types", json.dumps(d).encode()
    if kind == 5:  # deep nesting
        n = rng.randint(100, 5000)
        return "nesting", ("[" * n + "]" * n).encode()
    if kind == 6:  # huge body (over --max-body)
        return "huge", b'{"prompt": "' + b"a" * rng.randint(70000, 400000) + b'"}'
    if kind == 7:  # random garbage
        return "garbage", bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    return "empty", b""

def slowloris(port, seconds, stop):
    """Opens a connection and dribbles a header one byte at a time until the server drops it."""
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            for ch in b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-a: " + b"b" * 10000:
                if stop.is_set():
                    break
                s.send(bytes([ch]))
                time.sleep(seconds)
        except (OSError, socket.timeout):
            pass
        finally:
            s.close()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("strata")
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--slow", type=int, default=20, help="slowloris connections")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1000,
                    help="hostile requests before the RSS baseline (default 1000)")
    a = ap.parse_args()
    srv = subprocess.Popen([a.strata, "serve", "-m", a.model, "--port", "0", "--parallel", "2",
                            "--max-body", "65536", "--max-tokens", "64", "--max-queue", "8",
                            "--timeout", "2", "-t", "1"], stderr=subprocess.PIPE, text=True)
    line = srv.stderr.readline()
    m = re.search(r"127\.0\.0\.1:(\d+)", line)
    if not m:
        sys.exit(f"server did not start: {line}")
    port = int(m.group(1))
    threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()
    for _ in range(5):  # warm up: the first requests allocate the caches
        post(port, "/v1/chat/completions", GOOD)
    rss_start = rss_kib(srv.pid)
    stop = threading.Event()
    slow = [threading.Thread(target=slowloris, args=(port, 0.2, stop), daemon=True)
            for _ in range(a.slow)]
    for t in slow:
        t.start()
    rng = random.Random(a.seed)
    counts, statuses, good = {}, {}, [0, 0]  # good: [sent, failed]

    def round_of(n):
        for i in range(n):
            if i % 20 == 0:
                good[0] += 1
                r = post(port, "/v1/chat/completions", GOOD)
                if status_of(r) != 200:
                    good[1] += 1
                    print(f"well-formed request {good[0]} got {r[:200]!r}", file=sys.stderr)
            kind, body = hostile(rng)
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "truncated" and rng.random() < 0.5:
                # Claims more bytes than it sends, then hangs up.
                send_raw(port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5000"
                         b"\r\n\r\n" + body, read=False)
                st = -1
            else:
                st = status_of(post(port, "/v1/chat/completions" if kind != "huge" else "/v1/completions", body))
            statuses[st] = statuses.get(st, 0) + 1
            if srv.poll() is not None:
                sys.exit(f"server died with {srv.returncode} after {i} requests")

    # A first round touches what any burst touches once (worker stacks, code paths, the
    # allocator's arenas); the leak check compares before and after the main round.
    round_of(a.warmup)
    time.sleep(1)
    rss0 = rss_kib(srv.pid)
    t0 = time.time()
    round_of(a.n)
    elapsed = time.time() - t0
    stop.set()
    time.sleep(3)
    for _ in range(5):
        post(port, "/v1/chat/completions", GOOD)
    rss1 = rss_kib(srv.pid)
    alive = srv.poll() is None
    srv.terminate()
    srv.wait(timeout=30)
    print(json.dumps({"hostile": a.n, "warmup": a.warmup, "kinds": counts,
                      "statuses": {str(k): v for k, v in statuses.items()},
                      "well_formed": good[0], "well_formed_failed": good[1], "slowloris": a.slow,
                      "seconds": round(elapsed, 1), "alive_at_end": alive,
                      "rss_kib_start": rss_start, "rss_kib_before": rss0, "rss_kib_after": rss1,
                      "rss_change_pct": round(100.0 * (rss1 - rss0) / rss0, 2),
                      "rss_change_from_start_pct": round(100.0 * (rss1 - rss_start) / rss_start, 2)}))
    sys.exit(0 if alive and good[1] == 0 else 1)

if __name__ == "__main__":
    main()
