#!/usr/bin/env python3
"""Aggregate decode speed of `strata serve --parallel 16` (continuous batching, issue 15): one
stream alone against 16 concurrent streams, each of the same fixed length (max_tokens, temperature
0, ignore_eos) with a prompt of its own; prints both figures and their ratio, and checks that the
16 concurrent texts equal 16 sequential runs of the same requests.

  scripts/serve_batch_bench.py STRATA_BIN [MODEL] [--tokens N] [--streams K] [--threads T]
                               [--rounds R]

MODEL defaults to the shipped models/strata-tiny-r1.gguf. Decode tokens/s of a set of K streams
is K·(N - 1) tokens over T(N) - T(1): T(n) is the time from sending the K requests of n tokens
to the last one's end, so prefill, time to first token and queueing cancel out, whatever text
the tokens make (a synthesized model's tokens often make none, and deltas cannot time them).
The same is measured with non-streaming requests, which leaves out the per-token SSE work of
handlers and client: on a small model and few cores that work, not the forward pass, bounds the
streamed figure. Rounds alternate one and K; medians are printed. Exit status 1 when a text
differs.
"""
import argparse, http.client, json, os, re, statistics, subprocess, sys, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("strata")
ap.add_argument("model", nargs="?",
                default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models",
                                     "strata-tiny-r1.gguf"))
ap.add_argument("--tokens", type=int, default=128, help="max_tokens of every stream")
ap.add_argument("--streams", type=int, default=16)
ap.add_argument("--threads", type=int, default=0, help="-t of the server (0: its default)")
ap.add_argument("--rounds", type=int, default=3)
a = ap.parse_args()

args = [a.strata, "serve", "-m", a.model, "--port", "0", "--parallel", str(a.streams),
        "--max-queue", str(a.streams)]
if a.threads:
    args += ["-t", str(a.threads)]
srv = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
port = None
while port is None:
    line = srv.stderr.readline()
    if not line:
        sys.exit(f"strata serve exited: {srv.wait()}")
    m = re.search(r"127\.0\.0\.1:(\d+)", line)
    port = m and int(m.group(1))
# Keep reading the server's stderr so that it never blocks on a full pipe.
threading.Thread(target=srv.stderr.read, daemon=True).start()


def request(i, tokens=None):
    return {"model": "x", "temperature": 0, "max_tokens": tokens or a.tokens, "ignore_eos": True,
            "messages": [{"role": "user", "content": f"What is {101 + 37 * i}+{250 + 59 * i}?"}]}


def post(body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    return c.getresponse()


def whole(i):
    m = json.loads(post(request(i)).read())["choices"][0]["message"]
    return m.get("reasoning_content", "") + "\x00" + m["content"]


def stream(i, tokens, out):
    """Streams request i of `tokens` tokens; out[i] = (text, completion tokens)."""
    body = dict(request(i, tokens), stream=True, stream_options={"include_usage": True})
    r = post(body)
    text, n = ["", ""], 0
    for line in r:
        if not line.startswith(b"data: {"):
            continue
        chunk = json.loads(line[6:])
        if chunk.get("usage"):
            n = chunk["usage"]["completion_tokens"]
        for c in chunk["choices"]:
            d = c.get("delta", {})
            text[0] += d.get("reasoning_content", "") or ""
            text[1] += d.get("content", "") or ""
    out[i] = (text[0] + "\x00" + text[1], n)


def answer(i, tokens, out):
    """Request i of `tokens` tokens, whole; out[i] = (text, completion tokens)."""
    body = json.loads(post(request(i, tokens)).read())
    m = body["choices"][0]["message"]
    out[i] = (m.get("reasoning_content", "") + "\x00" + m["content"],
              body["usage"]["completion_tokens"])


def timed(k, tokens, fn):
    """Seconds from sending k concurrent requests of `tokens` tokens to the last one's end, the
    tokens generated, and the texts."""
    out = [None] * k
    ts = [threading.Thread(target=fn, args=(i, tokens, out)) for i in range(k)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.perf_counter() - t0, sum(n for _, n in out), [x for x, _ in out]


def decode_rate(k, fn):
    """Decode tokens/s of k concurrent requests: k·(N - 1) tokens over T(N) - T(1)."""
    t1, n1, _ = timed(k, 1, fn)
    tn, nn, texts = timed(k, a.tokens, fn)
    return (nn - n1) / (tn - t1), texts


try:
    whole(0)  # warm up
    one, many, one_w, many_w = [], [], [], []
    for r in range(a.rounds):
        one.append(decode_rate(1, stream)[0])
        tps, texts = decode_rate(a.streams, stream)
        many.append(tps)
        one_w.append(decode_rate(1, answer)[0])
        many_w.append(decode_rate(a.streams, answer)[0])
        print(f"round {r}: streamed: 1 stream {one[-1]:.1f} tok/s, {a.streams} streams "
              f"{many[-1]:.1f} tok/s aggregate; whole answers: 1 request {one_w[-1]:.1f} tok/s, "
              f"{a.streams} requests {many_w[-1]:.1f} tok/s", flush=True)
    seq = [whole(i) for i in range(a.streams)]
    same = sum(x == y for x, y in zip(texts, seq))
    m1, mk = statistics.median(one), statistics.median(many)
    print(f"model {os.path.basename(a.model)}, {a.tokens} tokens per stream, threads "
          f"{a.threads or 'default'}")
    print(f"medians: 1 stream {m1:.1f} tok/s, {a.streams} streams {mk:.1f} tok/s aggregate, "
          f"ratio {mk / m1:.2f}x")
    w1, wk = statistics.median(one_w), statistics.median(many_w)
    print(f"         whole answers (no SSE): 1 request {w1:.1f} tok/s, {a.streams} requests "
          f"{wk:.1f} tok/s, ratio {wk / w1:.2f}x")
    print(f"texts: {same} of {a.streams} concurrent streams equal their sequential runs")
finally:
    srv.terminate()
    srv.wait()
sys.exit(0 if same == a.streams else 1)
