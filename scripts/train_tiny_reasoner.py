#!/usr/bin/env python3
"""Trains strata-tiny-r1, Strata's default model: a DeepSeek-V3-architecture reasoner of a few
million parameters that does column arithmetic in R1's output form, and exports it to GGUF exactly
as llama.cpp lays out a real R1 file.

    scripts/setup.sh --train                       # python3-torch and numpy from Debian
    scripts/train_tiny_reasoner.py --out models     # ~45 min on 2 cores; deterministic from --seed

The architecture is R1's at a small size: MLA with a compressed query (q_lora) and a compressed,
normalised key/value latent whose RoPE part is shared by all heads; a dense first layer; then MoE
layers with sigmoid router scores, a per-expert bias used for selection only and updated without
an auxiliary loss (DeepSeek-V3's load balancing), expert groups (the best groups by the sum of
their top-2 scores) and one shared expert. RoPE rotates adjacent pairs, as llama.cpp's deepseek2.

Tasks, each written out digit by digit inside <think> with fixed-width lines (a small model copies
by relative position far more easily than it counts):
    What is A+B?   What is A-B? (A >= B)   What is A*B? (B one digit)   Which is larger, A or B?
with A, B of 1 to 3 digits. One problem in 20 (by a hash of the problem) is held out and never
trained on; --held-out writes the held-out problems the tests use.

Outputs (in --out): strata-tiny-r1.gguf (Q8_0, shipped), strata-tiny-r1.f32.gguf (not shipped),
strata-tiny-r1.logits.json (this framework's logits on a few prompts, computed from the
dequantized Q8_0 weights: the fixture of Strata's F32 comparison), strata-tiny-r1.train.log
(the run's record).
"""

import argparse
import hashlib
import json
import math
import os
import random
import re
import struct
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------
# Tasks

BOS, EOS, PAD = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"
USER, ASSISTANT, THINK, END_THINK = "<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"
CONTROL = [BOS, EOS, PAD, USER, ASSISTANT]  # token type 3 (control)
USER_DEFINED = [THINK, END_THINK]  # token type 4, as in R1's GGUF files
PLACES = ("ones", "tens", "hundreds")
OPS = ("add", "sub", "mul", "cmp")


def digits(n):
    """The three digits of n, ones first."""
    return [int(c) for c in f"{n:03d}"][::-1]


def strip_zeros(s):
    return s.lstrip("0") or "0"


def question(op, a, b):
    if op == "cmp":
        return f"Which is larger, {a} or {b}?"
    return f"What is {a}{ {'add': '+', 'sub': '-', 'mul': '*'}[op] }{b}?"


def working(op, a, b):
    """(the lines inside <think>, the answer) for one problem."""
    A, B = digits(a), digits(b)
    if op == "cmp":
        lines = [f"{a:03d} vs {b:03d}"]
        for i in (2, 1, 0):
            rel = "=" if A[i] == B[i] else (">" if A[i] > B[i] else "<")
            lines.append(f"{PLACES[i]}: {A[i]}{rel}{B[i]}")
            if rel != "=":
                break
        ans = str(max(a, b))
        return lines, ans
    sign = {"add": "+", "sub": "-", "mul": "*"}[op]
    lines = [f"{a:03d}{sign}{b:03d}" if op != "mul" else f"{a:03d}*{b}"]
    carry, sofar = 0, ""
    for i, place in enumerate(PLACES):
        if op == "add":
            s = A[i] + B[i] + carry
            d, nxt = s % 10, s // 10
            lines.append(f"{place}: {A[i]}+{B[i]}+{carry}={s:02d}, carry {nxt}, so far {d}{sofar}")
        elif op == "mul":
            s = A[i] * b + carry
            d, nxt = s % 10, s // 10
            lines.append(f"{place}: {A[i]}*{b}+{carry}={s:02d}, carry {nxt}, so far {d}{sofar}")
        else:
            nxt = 1 if A[i] - carry < B[i] else 0
            top = A[i] + 10 * nxt
            d = top - carry - B[i]
            lines.append(f"{place}: {top:02d}-{B[i]}-{carry}={d}, borrow {nxt}, so far {d}{sofar}")
        sofar = f"{d}{sofar}"
        carry = nxt
    ans = f"{carry}{sofar}" if carry else strip_zeros(sofar)
    lines.append(f"answer {ans}")
    expect = {"add": a + b, "sub": a - b, "mul": a * b}[op]
    assert int(ans) == expect, (op, a, b, ans)
    return lines, ans


def held_out(op, a, b):
    """One problem in 20, by a hash that does not depend on the seed: never trained on."""
    h = hashlib.sha256(f"{op} {a} {b}".encode()).digest()
    return h[0] % 20 == 0


def number(rng):
    """1 to 3 digits, each length equally likely."""
    n = rng.randint(1, 3)
    return rng.randint(0 if n == 1 else 10 ** (n - 1), 10**n - 1)


def problem(rng, op):
    while True:
        a = number(rng)
        b = rng.randint(0, 9) if op == "mul" else number(rng)
        if op == "sub" and a < b:
            a, b = b, a
        if op == "cmp" and a == b:
            continue
        return a, b


def sample(rng, want_held_out):
    op = rng.choices(OPS, weights=(4, 3, 2, 1))[0]
    while True:
        a, b = problem(rng, op)
        if held_out(op, a, b) == want_held_out:
            return op, a, b


def assistant_text(op, a, b):
    lines, ans = working(op, a, b)
    return "\n" + "\n".join(lines) + f"\n{END_THINK}\n\n{ans}", ans


# ---------------------------------------------------------------------------------------------
# Tokenizer: byte-level BPE behind the deepseek-v3 pre-tokenizer (ASCII classes suffice: the
# corpus is ASCII). Digits are split off first in groups of up to three and never merged, so
# every digit is one token, as the working needs.

PUNCT = r"!-/:-@\[-`{-~"
PRE_DIGITS = re.compile(r"[0-9]{1,3}")
PRE_REST = re.compile(
    rf"[{PUNCT}][A-Za-z]+|[^\r\nA-Za-z{PUNCT}]?[A-Za-z]+| ?[{PUNCT}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def split_isolated(regex, text):
    out, pos = [], 0
    for m in regex.finditer(text):
        if m.start() > pos:
            out.append(text[pos : m.start()])
        out.append(m.group())
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


def pre_tokenize(text):
    return [q for p in split_isolated(PRE_DIGITS, text) for q in split_isolated(PRE_REST, p)]


def byte_chars():
    """GPT-2's byte to printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE = byte_chars()


class Tokenizer:
    def __init__(self, merges):
        self.merges = merges
        self.rank = {m: i for i, m in enumerate(merges)}
        self.tokens = CONTROL + USER_DEFINED + [BYTE[b] for b in range(256)]
        self.tokens += [a + b for a, b in merges]
        self.id = {t: i for i, t in enumerate(self.tokens)}
        assert len(self.id) == len(self.tokens), "duplicate token"
        self.special = re.compile("(" + "|".join(map(re.escape, CONTROL + USER_DEFINED)) + ")")
        self.piece = lru_cache(maxsize=None)(self._piece)

    @staticmethod
    def train(texts, n_merges):
        counts = {}
        for t in texts:
            for p in pre_tokenize(t):
                w = tuple(BYTE[b] for b in p.encode())
                counts[w] = counts.get(w, 0) + 1
        merges = []
        while len(merges) < n_merges:
            pairs = {}
            for w, c in counts.items():
                for x, y in zip(w, w[1:]):
                    if any(ch.isdigit() for ch in x + y):
                        continue
                    pairs[(x, y)] = pairs.get((x, y), 0) + c
            if not pairs:
                break
            best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))  # ties: deterministic
            if best[1] < 2:
                break
            x, y = best[0]
            merges.append((x, y))
            merged = {}
            for w, c in counts.items():
                out, i = [], 0
                while i < len(w):
                    if i + 1 < len(w) and w[i] == x and w[i + 1] == y:
                        out.append(x + y)
                        i += 2
                    else:
                        out.append(w[i])
                        i += 1
                merged[tuple(out)] = merged.get(tuple(out), 0) + c
            counts = merged
        return Tokenizer(merges)

    def _piece(self, p):
        w = [BYTE[b] for b in p.encode()]
        while len(w) > 1:
            ranked = [(self.rank.get((x, y), 1 << 30), i) for i, (x, y) in enumerate(zip(w, w[1:]))]
            r, i = min(ranked)
            if r == 1 << 30:
                break
            w[i : i + 2] = [w[i] + w[i + 1]]
        return tuple(self.id[t] for t in w)

    def encode(self, text):
        ids = []
        for part in self.special.split(text):
            if part in self.id and (part in CONTROL or part in USER_DEFINED):
                ids.append(self.id[part])
            elif part:
                for p in pre_tokenize(part):
                    ids.extend(self.piece(p))
        return ids


# ---------------------------------------------------------------------------------------------
# Model


class Config:
    def __init__(self, n_vocab):
        self.n_vocab = n_vocab
        self.n_embd = 128
        self.n_layer = 4
        self.n_dense = 1  # leading dense layers
        self.n_head = 4
        self.q_lora = 64
        self.kv_lora = 64
        self.nope = 32
        self.rope = 16
        self.v = 32
        self.ff_dense = 384
        self.n_expert = 16
        self.n_used = 4
        self.n_group = 4
        self.n_group_used = 2
        self.ff_expert = 64
        self.n_shared = 1
        self.scale = 2.5  # expert_weights_scale (R1's routed_scaling_factor)
        self.eps = 1e-6
        self.theta = 10000.0
        self.ctx = 256


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, pos, theta):
    """Rotates adjacent pairs of the last dimension; x (..., T, H, d), pos (T)."""
    d = x.shape[-1]
    inv = theta ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
    ang = pos.float()[:, None] * inv[None, :]  # (T, d/2)
    cos, sin = ang.cos()[:, None, :], ang.sin()[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


class MLA(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        H = c.n_head
        self.q_a = nn.Linear(c.n_embd, c.q_lora, bias=False)
        self.q_a_norm = RMSNorm(c.q_lora, c.eps)
        self.q_b = nn.Linear(c.q_lora, H * (c.nope + c.rope), bias=False)
        self.kv_a = nn.Linear(c.n_embd, c.kv_lora + c.rope, bias=False)
        self.kv_a_norm = RMSNorm(c.kv_lora, c.eps)
        self.kv_b = nn.Linear(c.kv_lora, H * (c.nope + c.v), bias=False)
        self.o = nn.Linear(H * c.v, c.n_embd, bias=False)

    def forward(self, x, pos, mask):
        c, (B, T, _) = self.c, x.shape
        H = c.n_head
        q = self.q_b(self.q_a_norm(self.q_a(x))).view(B, T, H, c.nope + c.rope)
        q_nope, q_pe = q.split([c.nope, c.rope], dim=-1)
        kv = self.kv_a(x)
        lat, k_pe = kv.split([c.kv_lora, c.rope], dim=-1)
        kvb = self.kv_b(self.kv_a_norm(lat)).view(B, T, H, c.nope + c.v)
        k_nope, v = kvb.split([c.nope, c.v], dim=-1)
        q_pe = rope(q_pe, pos, c.theta)
        k_pe = rope(k_pe.unsqueeze(2), pos, c.theta).expand(B, T, H, c.rope)
        q = torch.cat((q_nope, q_pe), -1).transpose(1, 2)  # (B, H, T, d)
        k = torch.cat((k_nope, k_pe), -1).transpose(1, 2)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(c.nope + c.rope) + mask
        y = att.softmax(-1) @ v.transpose(1, 2)  # (B, H, T, v)
        return self.o(y.transpose(1, 2).reshape(B, T, H * c.v))


class FFN(nn.Module):
    def __init__(self, n_embd, ff):
        super().__init__()
        self.gate = nn.Linear(n_embd, ff, bias=False)
        self.up = nn.Linear(n_embd, ff, bias=False)
        self.down = nn.Linear(ff, n_embd, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Experts(nn.Module):
    """Stacked routed experts (expert index outermost), as the GGUF stores them."""

    def __init__(self, n, n_embd, ff):
        super().__init__()
        self.gate = nn.Parameter(torch.randn(n, ff, n_embd) * 0.02)
        self.up = nn.Parameter(torch.randn(n, ff, n_embd) * 0.02)
        self.down = nn.Parameter(torch.randn(n, n_embd, ff) * 0.02)

    def run(self, e, x):
        return (F.silu(x @ self.gate[e].T) * (x @ self.up[e].T)) @ self.down[e].T


class MoE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.router = nn.Linear(c.n_embd, c.n_expert, bias=False)
        self.register_buffer("bias", torch.zeros(c.n_expert))  # selection only; not trained
        self.experts = Experts(c.n_expert, c.n_embd, c.ff_expert)
        self.shared = FFN(c.n_embd, c.ff_expert * c.n_shared)
        self.load = None  # the last call's routings per expert

    def route(self, x):
        """(ids, weights) of the chosen experts, as llama.cpp's deepseek2 chooses them."""
        c = self.c
        s = torch.sigmoid(self.router(x))  # (N, E)
        sel = s + self.bias
        g = sel.view(-1, c.n_group, c.n_expert // c.n_group)
        gscore = g.topk(2, dim=-1).values.sum(-1)  # (N, G)
        keep = gscore.topk(c.n_group_used, dim=-1).indices
        gmask = torch.zeros_like(gscore, dtype=torch.bool).scatter_(1, keep, True)
        emask = gmask.repeat_interleave(c.n_expert // c.n_group, dim=1)
        ids = sel.masked_fill(~emask, float("-inf")).topk(c.n_used, dim=-1).indices
        w = s.gather(1, ids)
        w = w / w.sum(-1, keepdim=True).clamp_min(6.103515625e-5) * c.scale
        return ids, w

    def forward(self, x, valid):
        B, T, E = x.shape
        xf = x.reshape(-1, E)
        ids, w = self.route(xf)
        out = self.shared(xf)
        for e in range(self.c.n_expert):
            tok, slot = torch.nonzero(ids == e, as_tuple=True)
            if tok.numel():
                out = out.index_add(0, tok, self.experts.run(e, xf[tok]) * w[tok, slot, None])
        with torch.no_grad():
            v = valid.reshape(-1)
            self.load = torch.bincount(ids[v].reshape(-1), minlength=self.c.n_expert)
        return out.view(B, T, E)


class Block(nn.Module):
    def __init__(self, c, il):
        super().__init__()
        self.attn_norm = RMSNorm(c.n_embd, c.eps)
        self.attn = MLA(c)
        self.ffn_norm = RMSNorm(c.n_embd, c.eps)
        self.moe = il >= c.n_dense
        self.ffn = MoE(c) if self.moe else FFN(c.n_embd, c.ff_dense)

    def forward(self, x, pos, mask, valid):
        x = x + self.attn(self.attn_norm(x), pos, mask)
        h = self.ffn_norm(x)
        return x + (self.ffn(h, valid) if self.moe else self.ffn(h))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embd = nn.Embedding(c.n_vocab, c.n_embd)
        self.blocks = nn.ModuleList(Block(c, il) for il in range(c.n_layer))
        self.norm = RMSNorm(c.n_embd, c.eps)
        self.out = nn.Linear(c.n_embd, c.n_vocab, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, ids, valid=None):
        B, T = ids.shape
        if valid is None:
            valid = torch.ones_like(ids, dtype=torch.bool)
        pos = torch.arange(T)
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.embd(ids)
        for b in self.blocks:
            x = b(x, pos, mask, valid)
        return self.out(self.norm(x))

    def moe_layers(self):
        return [b.ffn for b in self.blocks if b.moe]


# ---------------------------------------------------------------------------------------------
# Training


def encode_example(tok, op, a, b):
    """(ids, index of the first trained token): the prompt as the R1 template renders it, then
    the reasoning and answer the model learns."""
    prompt = f"{BOS}{USER}{question(op, a, b)}{ASSISTANT}{THINK}"
    body, _ = assistant_text(op, a, b)
    p = tok.encode(prompt)
    return p + tok.encode(body) + [tok.id[EOS]], len(p)


def batch(tok, rng, n):
    rows = [encode_example(tok, *sample(rng, False)) for _ in range(n)]
    T = max(len(r) for r, _ in rows)
    ids = torch.full((n, T), tok.id[PAD], dtype=torch.long)
    target = torch.full((n, T), -100, dtype=torch.long)
    valid = torch.zeros((n, T), dtype=torch.bool)
    for i, (r, start) in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        valid[i, : len(r)] = True
        target[i, start - 1 : len(r) - 1] = torch.tensor(r[start:])
    return ids, target, valid


@torch.no_grad()
def greedy(model, tok, prompts, max_new=120):
    """Greedy continuations of the token-id prompts, batched; stops at EOS."""
    eos = tok.id[EOS]
    seqs = [list(p) for p in prompts]
    done = [False] * len(seqs)
    for _ in range(max_new):
        live = [i for i, d in enumerate(done) if not d]
        if not live:
            break
        T = max(len(seqs[i]) for i in live)
        ids = torch.full((len(live), T), tok.id[PAD], dtype=torch.long)
        for j, i in enumerate(live):
            ids[j, : len(seqs[i])] = torch.tensor(seqs[i])
        logits = model(ids)
        for j, i in enumerate(live):
            nxt = int(logits[j, len(seqs[i]) - 1].argmax())
            seqs[i].append(nxt)
            done[i] = nxt == eos or len(seqs[i]) >= model.c.ctx
    return [s[len(p) :] for s, p in zip(seqs, prompts)]


def answer_of(text):
    """The answer after </think>, as a chat client shows it."""
    return text.split(END_THINK)[-1].replace(EOS, "").strip() if END_THINK in text else None


def decode(tok, ids):
    inv = {v: k for k, v in BYTE.items()}
    out = bytearray()
    for i in ids:
        t = tok.tokens[i]
        if t in CONTROL or t in USER_DEFINED:
            out += t.encode()
        else:
            out += bytes(inv[ch] for ch in t)
    return out.decode(errors="replace")


def evaluate(model, tok, problems):
    prompts = [tok.encode(f"{BOS}{USER}{question(*p)}{ASSISTANT}{THINK}\n") for p in problems]
    outs = greedy(model, tok, prompts)
    right = 0
    for p, o in zip(problems, outs):
        right += answer_of(decode(tok, o)) == working(*p)[1]
    return right / len(problems)


def held_out_problems(seed, n, ops=OPS):
    """n distinct held-out problems, the task families taking turns."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        op = ops[len(out) % len(ops)]
        while True:
            a, b = problem(rng, op)
            if held_out(op, a, b) and (op, a, b) not in out:
                break
        out.append((op, a, b))
    return out


# ---------------------------------------------------------------------------------------------
# GGUF export


GGML_F32, GGML_Q8_0 = 0, 8


def fp16_round(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16)


def quantize_q8_0(w):
    """llama.cpp's quantize_row_q8_0_ref over rows of w (float32, last dim a multiple of 32):
    (bytes, the dequantized values)."""
    blocks = w.astype(np.float32).reshape(-1, 32)
    amax = np.abs(blocks).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    x = blocks * inv[:, None]
    q = (np.sign(x) * np.floor(np.abs(x) + np.float32(0.5))).astype(np.int8)  # roundf
    dh = fp16_round(d)
    raw = np.empty(len(blocks), dtype=[("d", "<f2"), ("q", "i1", 32)])
    raw["d"], raw["q"] = dh, q
    deq = q.astype(np.float32) * dh.astype(np.float32)[:, None]
    return raw.tobytes(), deq.reshape(w.shape)


class GGUFWriter:
    """Just what the export needs of GGUF v3 (little-endian, 32-byte alignment)."""

    T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9

    def __init__(self):
        self.kv, self.tensors = [], []

    def add(self, key, vtype, value):
        self.kv.append((key, vtype, value))

    def tensor(self, name, ggml_type, shape, data):
        self.tensors.append((name, ggml_type, shape, data))

    @staticmethod
    def _str(s):
        b = s.encode()
        return struct.pack("<Q", len(b)) + b

    def _value(self, vtype, v):
        if vtype == self.T_U32:
            return struct.pack("<I", v)
        if vtype == self.T_I32:
            return struct.pack("<i", v)
        if vtype == self.T_F32:
            return struct.pack("<f", v)
        if vtype == self.T_BOOL:
            return struct.pack("<?", v)
        if vtype == self.T_STR:
            return self._str(v)
        etype, items = v
        return struct.pack("<IQ", etype, len(items)) + b"".join(self._value(etype, x) for x in items)

    def write(self, path):
        out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv)))
        for k, t, v in self.kv:
            out += self._str(k) + struct.pack("<I", t) + self._value(t, v)
        offset, pads = 0, []
        for name, gt, shape, data in self.tensors:
            out += self._str(name) + struct.pack("<I", len(shape))
            out += b"".join(struct.pack("<Q", n) for n in shape) + struct.pack("<IQ", gt, offset)
            pads.append(offset)
            offset += (len(data) + 31) // 32 * 32
        out += b"\0" * (-len(out) % 32)
        for (_, _, _, data), at in zip(self.tensors, pads):
            out += data + b"\0" * (-len(data) % 32)
        Path(path).write_bytes(out)


def gguf_tensors(model):
    """(name, float32 array in GGUF row-major order, quantizable) in llama.cpp's names and
    layout: an array of numpy shape (..., rows, cols) is GGUF shape [cols, rows, ...]."""
    c = model.c
    H = c.n_head
    t = lambda p: p.detach().float().numpy().copy()  # noqa: E731
    out = [("token_embd.weight", t(model.embd.weight), True)]
    for il, b in enumerate(model.blocks):
        p = f"blk.{il}."
        a = b.attn
        kv_b = t(a.kv_b.weight).reshape(H, c.nope + c.v, c.kv_lora)
        k_b = np.ascontiguousarray(kv_b[:, : c.nope, :].transpose(0, 2, 1))  # (H, kv_lora, nope)
        v_b = np.ascontiguousarray(kv_b[:, c.nope :, :])  # (H, v, kv_lora)
        out += [
            (p + "attn_norm.weight", t(b.attn_norm.weight), False),
            (p + "attn_q_a_norm.weight", t(a.q_a_norm.weight), False),
            (p + "attn_q_a.weight", t(a.q_a.weight), True),
            (p + "attn_q_b.weight", t(a.q_b.weight), True),
            (p + "attn_kv_a_norm.weight", t(a.kv_a_norm.weight), False),
            (p + "attn_kv_a_mqa.weight", t(a.kv_a.weight), True),
            (p + "attn_k_b.weight", k_b, True),
            (p + "attn_v_b.weight", v_b, True),
            (p + "attn_output.weight", t(a.o.weight), True),
            (p + "ffn_norm.weight", t(b.ffn_norm.weight), False),
        ]
        f = b.ffn
        if b.moe:
            out += [
                (p + "ffn_gate_inp.weight", t(f.router.weight), False),
                (p + "exp_probs_b.bias", t(f.bias), False),
                (p + "ffn_gate_exps.weight", t(f.experts.gate), True),
                (p + "ffn_up_exps.weight", t(f.experts.up), True),
                (p + "ffn_down_exps.weight", t(f.experts.down), True),
                (p + "ffn_gate_shexp.weight", t(f.shared.gate.weight), True),
                (p + "ffn_up_shexp.weight", t(f.shared.up.weight), True),
                (p + "ffn_down_shexp.weight", t(f.shared.down.weight), True),
            ]
        else:
            out += [
                (p + "ffn_gate.weight", t(f.gate.weight), True),
                (p + "ffn_up.weight", t(f.up.weight), True),
                (p + "ffn_down.weight", t(f.down.weight), True),
            ]
    out += [("output_norm.weight", t(model.norm.weight), False), ("output.weight", t(model.out.weight), True)]
    return out


def export(model, tok, path, quant, name):
    """Writes the GGUF; returns {tensor name: the float32 values Strata will compute with}."""
    c = model.c
    w = GGUFWriter()
    A = "deepseek2."
    U, F32, B, S = w.T_U32, w.T_F32, w.T_BOOL, w.T_STR
    template = (ROOT / "tests/oracle/templates/deepseek-r1.jinja").read_text()
    for key, t, v in [
        ("general.architecture", S, "deepseek2"),
        ("general.type", S, "model"),
        ("general.name", S, name),
        ("general.size_label", S, "tiny"),
        ("general.license", S, "MIT"),
        ("general.file_type", U, 7 if quant else 0),
        ("general.quantization_version", U, 2),
        (A + "block_count", U, c.n_layer),
        (A + "context_length", U, c.ctx),
        (A + "embedding_length", U, c.n_embd),
        (A + "feed_forward_length", U, c.ff_dense),
        (A + "attention.head_count", U, c.n_head),
        (A + "attention.head_count_kv", U, 1),
        (A + "rope.freq_base", F32, c.theta),
        (A + "attention.layer_norm_rms_epsilon", F32, c.eps),
        (A + "expert_count", U, c.n_expert),
        (A + "expert_used_count", U, c.n_used),
        (A + "expert_group_count", U, c.n_group),
        (A + "expert_group_used_count", U, c.n_group_used),
        (A + "expert_gating_func", U, 2),
        (A + "leading_dense_block_count", U, c.n_dense),
        (A + "vocab_size", U, c.n_vocab),
        (A + "attention.q_lora_rank", U, c.q_lora),
        (A + "attention.kv_lora_rank", U, c.kv_lora),
        (A + "attention.key_length", U, c.kv_lora + c.rope),
        (A + "attention.value_length", U, c.kv_lora),
        (A + "attention.key_length_mla", U, c.nope + c.rope),
        (A + "attention.value_length_mla", U, c.v),
        (A + "expert_feed_forward_length", U, c.ff_expert),
        (A + "expert_shared_count", U, c.n_shared),
        (A + "expert_weights_scale", F32, c.scale),
        (A + "expert_weights_norm", B, True),
        (A + "rope.dimension_count", U, c.rope),
        ("tokenizer.ggml.model", S, "gpt2"),
        ("tokenizer.ggml.pre", S, "deepseek-v3"),
        ("tokenizer.ggml.tokens", w.T_ARR, (S, tok.tokens)),
        (
            "tokenizer.ggml.token_type",
            w.T_ARR,
            (w.T_I32, [3 if x in CONTROL else 4 if x in USER_DEFINED else 1 for x in tok.tokens]),
        ),
        ("tokenizer.ggml.merges", w.T_ARR, (S, [f"{a} {b}" for a, b in tok.merges])),
        ("tokenizer.ggml.bos_token_id", U, tok.id[BOS]),
        ("tokenizer.ggml.eos_token_id", U, tok.id[EOS]),
        ("tokenizer.ggml.padding_token_id", U, tok.id[PAD]),
        ("tokenizer.ggml.add_bos_token", B, True),
        ("tokenizer.ggml.add_eos_token", B, False),
        ("tokenizer.chat_template", S, template),
    ]:
        w.add(key, t, v)
    values = {}
    for tname, arr, quantizable in gguf_tensors(model):
        shape = list(arr.shape[::-1])
        if quant and quantizable:
            data, deq = quantize_q8_0(arr)
            w.tensor(tname, GGML_Q8_0, shape, data)
            values[tname] = deq
        else:
            w.tensor(tname, GGML_F32, shape, arr.astype("<f4").tobytes())
            values[tname] = arr
    w.write(path)
    return values


def load_values(model, values):
    """Puts exported (e.g. dequantized) values back into the model: the inverse of gguf_tensors."""
    c = model.c
    H = c.n_head
    T = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    with torch.no_grad():
        model.embd.weight.copy_(T(values["token_embd.weight"]))
        for il, b in enumerate(model.blocks):
            p = f"blk.{il}."
            a = b.attn
            for mod, key in [
                (b.attn_norm, "attn_norm"),
                (a.q_a_norm, "attn_q_a_norm"),
                (a.q_a, "attn_q_a"),
                (a.q_b, "attn_q_b"),
                (a.kv_a_norm, "attn_kv_a_norm"),
                (a.kv_a, "attn_kv_a_mqa"),
                (a.o, "attn_output"),
                (b.ffn_norm, "ffn_norm"),
            ]:
                mod.weight.copy_(T(values[p + key + ".weight"]))
            k_b = values[p + "attn_k_b.weight"].transpose(0, 2, 1)  # (H, nope, kv_lora)
            kv_b = np.concatenate((k_b, values[p + "attn_v_b.weight"]), axis=1)
            a.kv_b.weight.copy_(T(kv_b.reshape(H * (c.nope + c.v), c.kv_lora)))
            f = b.ffn
            if b.moe:
                f.router.weight.copy_(T(values[p + "ffn_gate_inp.weight"]))
                f.bias.copy_(T(values[p + "exp_probs_b.bias"]))
                f.experts.gate.copy_(T(values[p + "ffn_gate_exps.weight"]))
                f.experts.up.copy_(T(values[p + "ffn_up_exps.weight"]))
                f.experts.down.copy_(T(values[p + "ffn_down_exps.weight"]))
                for mod, key in [(f.shared.gate, "gate"), (f.shared.up, "up"), (f.shared.down, "down")]:
                    mod.weight.copy_(T(values[p + f"ffn_{key}_shexp.weight"]))
            else:
                for mod, key in [(f.gate, "gate"), (f.up, "up"), (f.down, "down")]:
                    mod.weight.copy_(T(values[p + f"ffn_{key}.weight"]))
        model.norm.weight.copy_(T(values["output_norm.weight"]))
        model.out.weight.copy_(T(values["output.weight"]))


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="models", help="output folder (default: models)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--merges", type=int, default=120, help="BPE merges (default: 120)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--eval", type=int, default=200, help="held-out problems checked at the end")
    ap.add_argument("--held-out", metavar="FILE", help="only write N held-out problems (JSON)")
    ap.add_argument("--n", type=int, default=200, help="with --held-out: how many")
    ap.add_argument("--ops", default=",".join(OPS), help="with --held-out: task families")
    args = ap.parse_args()

    if args.held_out:
        ops = tuple(args.ops.split(","))
        probs = held_out_problems(args.seed + 1000, args.n, ops)
        rows = [{"question": question(*p), "answer": working(*p)[1]} for p in probs]
        Path(args.held_out).write_text("[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n")
        return

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "strata-tiny-r1.train.log", "w")

    def say(msg):
        print(msg, flush=True)
        log.write(msg + "\n")
        log.flush()

    rng = random.Random(args.seed)
    corpus = []
    for _ in range(4000):
        op, a, b = sample(rng, False)
        corpus.append(question(op, a, b))
        corpus.append(assistant_text(op, a, b)[0])
    tok = Tokenizer.train(corpus, args.merges)
    c = Config(len(tok.tokens))
    model = Model(c)
    n_params = sum(p.numel() for p in model.parameters())
    say(f"vocab {c.n_vocab} tokens ({len(tok.merges)} merges), {n_params / 1e6:.2f} M parameters")

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.01)
    warm = 100

    def lr_at(step):
        if step < warm:
            return args.lr * (step + 1) / warm
        p = (step - warm) / max(1, args.steps - warm)
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))

    t0, avg = time.time(), None
    for step in range(args.steps):
        ids, target, valid = batch(tok, rng, args.batch)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits = model(ids, valid)
        loss = F.cross_entropy(logits.view(-1, c.n_vocab), target.view(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():  # auxiliary-loss-free balancing (DeepSeek-V3, sec. 2.1.2)
            for moe in model.moe_layers():
                load = moe.load.float()
                moe.bias += 1e-3 * torch.sign(load.mean() - load)
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        if step % 50 == 0 or step == args.steps - 1:
            el = time.time() - t0
            say(f"step {step:5d}  loss {loss.item():.4f}  (avg {avg:.4f})  lr {lr_at(step):.2e}  {el:6.0f} s")
        if step and step % 1000 == 0:
            model.eval()
            acc = evaluate(model, tok, held_out_problems(args.seed + 3000, 40))
            say(f"step {step:5d}  held-out exact answers: {acc * 100:.0f}% of 40 (mixed)")
            model.train()

    model.eval()
    say(f"final loss {avg:.4f} (running average), {time.time() - t0:.0f} s")

    name = "strata-tiny-r1"
    export(model, tok, out / f"{name}.f32.gguf", False, "Strata Tiny R1 (F32)")
    values = export(model, tok, out / f"{name}.gguf", True, "Strata Tiny R1")
    load_values(model, values)  # from here on: the weights Strata computes with

    probs = held_out_problems(args.seed + 1000, args.eval)
    acc = evaluate(model, tok, probs)
    adds = [p for p in held_out_problems(args.seed + 2000, args.eval, ("add",))]
    acc_add = evaluate(model, tok, adds)
    say(f"held-out exact answers (torch, Q8_0 weights): {acc * 100:.1f}% of {len(probs)} mixed, "
        f"{acc_add * 100:.1f}% of {len(adds)} additions")

    fixture = []
    for p in [("add", 347, 589), ("sub", 902, 78), ("cmp", 61, 16)]:
        prompt = f"{BOS}{USER}{question(*p)}{ASSISTANT}{THINK}\n"
        body, _ = assistant_text(*p)
        ids = tok.encode(prompt + body[1:])[:48]
        with torch.no_grad():
            logits = model(torch.tensor([ids]))[0].numpy()
        fixture.append({"ids": ids, "logits": [[float(f"{v:.7g}") for v in row] for row in logits]})
    (out / f"{name}.logits.json").write_text(json.dumps({"model": f"{name}.gguf", "cases": fixture}) + "\n")
    say("wrote " + ", ".join(str(out / f) for f in (f"{name}.gguf", f"{name}.f32.gguf", f"{name}.logits.json")))


if __name__ == "__main__":
    sys.exit(main())
