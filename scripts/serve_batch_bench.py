#!/usr/bin/env python3
"""Aggregate decode speed of `strata serve --parallel 16` (continuous batching, issue 15): one
stream alone against 16 concurrent streams, each of the same fixed length (max_tokens, temperature
0, ignore_eos) with a prompt of its own; prints both figures and their ratio, and checks that the
16 concurrent texts equal 16 sequential runs of the same requests.

  scripts/serve_batch_bench.py STRATA_BIN [MODEL] [--tokens N] [--streams K] [--threads T]
                               [--rounds R]

MODEL defaults to the shipped models/strata-tiny-r1.gguf. Decode tokens/s of a set of streams is
the tokens after each stream's first, summed, over the time from the earliest first token to the
latest last token (prefill and time to first token left out). The same is measured with
non-streaming requests (tokens over the time from the first request sent to the last answer in),
which leaves out the per-token SSE work of handlers and client: on a small model and few cores
that work, not the forward pass, bounds the streamed figure. Rounds alternate one and K; medians
are printed. Exit status 1 when a text differs.
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


def request(i):
    return {"model": "x", "temperature": 0, "max_tokens": a.tokens, "ignore_eos": True,
            "messages": [{"role": "user", "content": f"What is {101 + 37 * i}+{250 + 59 * i}?"}]}


def post(body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    return c.getresponse()


def whole(i):
    m = json.loads(post(request(i)).read())["choices"][0]["message"]
    return m.get("reasoning_content", "") + "\x00" + m["content"]


def stream(i, out):
    """Streams request i; out[i] = (text, completion tokens, first token time, last token time)."""
    body = dict(request(i), stream=True, stream_options={"include_usage": True})
    r = post(body)
    opened = time.perf_counter()
    text, first, last, n = ["", ""], None, None, 0
    for line in r:
        if not line.startswith(b"data: {"):
            continue
        chunk = json.loads(line[6:])
        if chunk.get("usage"):
            n = chunk["usage"]["completion_tokens"]
        for c in chunk["choices"]:
            d = c.get("delta", {})
            if "reasoning_content" in d or d.get("content"):
                now = time.perf_counter()
                first = first or now
                last = now
                text[0] += d.get("reasoning_content", "")
                text[1] += d.get("content", "")
    # A model whose tokens make no visible text (a synthesized one) streams no deltas: the
    # response's span stands in for the first and last token's.
    out[i] = (text[0] + "\x00" + text[1], n, first or opened, last or time.perf_counter())


def run_whole(k):
    """Tokens/s of k concurrent non-streaming requests, first request sent to last answer in:
    the server's rate without the per-token SSE work of client and handlers."""
    out = [0] * k

    def one(i):
        out[i] = json.loads(post(request(i)).read())["usage"]["completion_tokens"]
    ts = [threading.Thread(target=one, args=(i,)) for i in range(k)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(out) / (time.perf_counter() - t0)


def run_streams(k):
    """Decode tokens/s of k concurrent streams, and their texts."""
    out = [None] * k
    ts = [threading.Thread(target=stream, args=(i, out)) for i in range(k)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    tokens = sum(n - 1 for _, n, _, _ in out)
    span = max(l for _, _, _, l in out) - min(f for _, _, f, _ in out)
    return tokens / span, [t for t, _, _, _ in out]


try:
    whole(0)  # warm up
    one, many, one_w, many_w = [], [], [], []
    for r in range(a.rounds):
        tps, _ = run_streams(1)
        one.append(tps)
        tps, texts = run_streams(a.streams)
        many.append(tps)
        one_w.append(run_whole(1))
        many_w.append(run_whole(a.streams))
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
