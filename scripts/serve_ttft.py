#!/usr/bin/env python3
"""Time to first token of a ~100-token prompt: `strata run` (its own prefill figure) against
`strata serve` (client-side, POST to the first streamed chunk of /v1/completions), alternating,
5 rounds, medians (issue 15). Each round's prompt starts differently so the server's prefix cache
cannot reuse it.

  scripts/serve_ttft.py STRATA_BIN MODEL
"""
import json, re, subprocess, sys, time, http.client
S, M = sys.argv[1], sys.argv[2]
P=("The quick brown fox jumps over the lazy dog while the seven wise owls count stars above the quiet "
   "river, and every traveller who passes the old mill stops to listen to the water turning the heavy "
   "wheel beside the bridge of stones where children play in summer evenings.")
srv=subprocess.Popen([S,"serve","-m",M,"--port","0"],stderr=subprocess.PIPE,text=True)
port=None
while port is None:
    line=srv.stderr.readline(); m=re.search(r"127\.0\.0\.1:(\d+)",line); port=m and int(m.group(1))
def server_ttft(prompt):
    c=http.client.HTTPConnection("127.0.0.1",port,timeout=120)
    body=json.dumps({"model":"x","stream":True,"max_tokens":1,"temperature":0,"prompt":prompt})
    t0=time.perf_counter(); c.request("POST","/v1/completions",body,{"Content-Type":"application/json"})
    r=c.getresponse()
    while True:
        line=r.readline()
        if not line: return None
        if line.startswith(b"data: {"):  # the one token's chunk (this vocabulary renders it empty)
            t=time.perf_counter()-t0; r.read(); return t
def run_ttft(prompt):
    out=subprocess.run([S,"run","-m",M,"-p",prompt,"-n","1","--temp","0"],capture_output=True,text=True).stderr
    m=re.search(r"prompt: (\d+) tokens in ([\d.]+) s",out); return int(m.group(1)), float(m.group(2))
server_ttft("warm up "+P)
rs,ss=[],[]
for k in range(5):
    n,t=run_ttft(f"Round {k} run. "+P); rs.append(t)
    ss.append(server_ttft(f"Round {k} srv. "+P))
    print(f"round {k}: run prefill {t:.3f} s ({n} tokens), server first token {ss[-1]:.3f} s", flush=True)
srv.terminate()
rs.sort(); ss.sort()
print(f"medians: run {rs[2]:.3f} s, server {ss[2]:.3f} s, ratio server/run {ss[2]/rs[2]:.3f}")
