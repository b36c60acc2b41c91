// A deliberately simple forward pass in double precision, the yardstick for models of shapes the
// golden set does not have. It shares nothing with the runtime but the weight reader: weights are
// dequantized to double, attention is plain multi-head attention (deepseek2's MLA decompressed
// per head from the latent, not absorbed), the router sorts every expert, and every position is
// recomputed from scratch. What llama.cpp does is written out from its definition:
//  - RoPE θ_i = pos · base^(-2i/n_rot) (/ llama3 factor); YaRN mixes θ/factor and θ by a ramp
//    over the pair index between the correction dims; adjacent pairs (llama, deepseek2) or
//    (i, i + n_rot/2) (qwen2);
//  - YaRN magnitude: llama/qwen2 multiply cos/sin by 1 + 0.1 ln(factor); deepseek2 keeps them at
//    1 and scales q·k by (1 + 0.1 · mscale_all_dim · ln factor)² / sqrt(qk_nope + qk_rope);
//  - routing: selection on probs + bias, groups by their two best, weights from unbiased probs;
//  - a quantized weight multiplies its input rounded to the partner format (Q8_0 / Q8_1 / Q8_K,
//    F16 / BF16) and back, as llama.cpp's CPU backend does; the products are then exact doubles.
#pragma once

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <span>
#include <vector>

#include "runtime/logit_metrics.h"
#include "runtime/model.h"
#include "simd/quant.h"
#include "simd/repack.h"

namespace strata::test {

class ReferenceForward {
  public:
    explicit ReferenceForward(const Model& m) : m_(m), hp_(m.hparams()) {}

    // Logits of every position: tokens.size() rows of n_vocab.
    std::vector<double> logits(std::span<const int32_t> tokens) const {
        const int64_t n = static_cast<int64_t>(tokens.size()), E = hp_.n_embd;
        std::vector<std::vector<double>> x(static_cast<size_t>(n));
        const Mat emb = load(m_.token_embd);
        for (int64_t t = 0; t < n; ++t) x[static_cast<size_t>(t)] = emb.row(tokens[t]);
        for (int64_t il = 0; il < hp_.n_layer; ++il) {
            const LayerWeights& L = m_.layers()[static_cast<size_t>(il)];
            std::vector<std::vector<double>> h(static_cast<size_t>(n));
            for (int64_t t = 0; t < n; ++t) h[t] = rms(x[t], vec(L.attn_norm));
            const auto att = hp_.arch == Arch::DeepSeek2 ? mla(L, h) : gqa(L, h);
            for (int64_t t = 0; t < n; ++t) {
                for (int64_t i = 0; i < E; ++i) x[t][i] += att[t][i];
                const std::vector<double> f = rms(x[t], vec(L.ffn_norm));
                const std::vector<double> y = hp_.is_moe_layer(il) ? moe(L, f, il) : ffn(L, f);
                for (int64_t i = 0; i < E; ++i) x[t][i] += y[i];
            }
        }
        const Mat out = load(m_.output);
        std::vector<double> res;
        for (int64_t t = 0; t < n; ++t) {
            const std::vector<double> y = out.mul(rms(x[t], vec(m_.output_norm)));
            res.insert(res.end(), y.begin(), y.end());
        }
        return res;
    }

    // How often each layer's router chose each expert in the calls so far ([layer][expert],
    // empty rows for dense layers): what Session::routing_counts should report.
    const std::vector<std::vector<uint64_t>>& routes() const { return routes_; }

  private:
    using Vec = std::vector<double>;

    struct Mat {  // rows of n_in
        int64_t n_in = 0, n_out = 0;
        Vec w;
        quant::Type type = quant::Type::F32;  // of the file's tensor
        Vec row(int64_t r) const { return Vec(w.begin() + r * n_in, w.begin() + (r + 1) * n_in); }
        Vec mul(const Vec& x_in, int64_t first = 0, int64_t rows = -1) const {
            if (rows < 0) rows = n_out;
            const Vec x = partner_round(x_in);
            Vec y(static_cast<size_t>(rows), 0.0);
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t i = 0; i < n_in; ++i) y[r] += w[(first + r) * n_in + i] * x[i];
            return y;
        }
        // The activation as the weight's partner format represents it.
        Vec partner_round(const Vec& x) const {
            if (type == quant::Type::F32) return x;
            const quant::Type p = quant::traits(type).partner;
            std::vector<float> f(x.begin(), x.end()), back(x.size());
            std::vector<uint8_t> q(quant::row_bytes(p, n_in));
            quant::traits(p).quantize_activation(f.data(), q.data(), n_in);
            quant::dequantize_row(p, q.data(), back.data(), n_in);
            return Vec(back.begin(), back.end());
        }
    };

    static Mat load(const gguf::Tensor* t) {
        Mat m;
        m.type = t->type;
        m.n_in = t->ne[0];
        m.n_out = t->n_rows();
        m.w.resize(static_cast<size_t>(m.n_in * m.n_out));
        // An engine may have regrouped the rows in the mapping (runtime/interleave.h): read them
        // back in order from a copy.
        std::vector<uint8_t> plain;
        const uint8_t* data = t->data;
        if (t->interleaved) {
            plain.resize(t->nbytes);
            simd::deinterleave_rows(t->type, t->data, plain.data(), m.n_in, m.n_out);
            data = plain.data();
        }
        std::vector<float> row(static_cast<size_t>(m.n_in));
        for (int64_t r = 0; r < m.n_out; ++r) {
            quant::dequantize_row(t->type, data + static_cast<size_t>(r) * t->row_bytes(),
                                  row.data(), m.n_in);
            std::copy(row.begin(), row.end(), m.w.begin() + r * m.n_in);
        }
        return m;
    }
    static Vec vec(const gguf::Tensor* t) { return t ? load(t).w : Vec{}; }

    Vec rms(const Vec& x, const Vec& w) const {
        double ss = 0.0;
        for (double v : x) ss += v * v;
        const double s = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + hp_.rms_eps);
        Vec y(x.size());
        for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * w[i];
        return y;
    }

    static double silu(double v) { return v / (1.0 + std::exp(-v)); }

    static Vec swiglu_ffn(const Mat& gate, const Mat& up, const Mat& down, const Vec& x) {
        Vec g = gate.mul(x), u = up.mul(x);
        for (size_t i = 0; i < g.size(); ++i) g[i] = silu(g[i]) * u[i];
        return down.mul(g);
    }

    Vec ffn(const LayerWeights& L, const Vec& x) const {
        return swiglu_ffn(load(L.ffn_gate), load(L.ffn_up), load(L.ffn_down), x);
    }

    // Rotation of the n_rot dims at `x` (adjacent pairs, or NEOX halves) for position p.
    void rope(double* x, int64_t p, bool neox, double magnitude) const {
        const int64_t n_rot = hp_.n_rot;
        const Vec ff = vec(m_.rope_freqs);
        const bool yarn = hp_.scaling == RopeScaling::Yarn;
        const double factor = hp_.scaling == RopeScaling::None ? 1.0 : hp_.rope_factor;
        double low = 0.0, high = 0.0;
        if (yarn) {
            const auto dim = [&](double beta) {
                return static_cast<double>(n_rot) *
                       std::log(static_cast<double>(hp_.rope_orig_ctx) /
                                (beta * 2.0 * std::numbers::pi)) /
                       (2.0 * std::log(static_cast<double>(hp_.rope_base)));
            };
            low = std::max(0.0, std::floor(dim(hp_.yarn_beta_fast)));
            high = std::min(static_cast<double>(n_rot - 1), std::ceil(dim(hp_.yarn_beta_slow)));
        }
        for (int64_t i = 0; i < n_rot / 2; ++i) {
            double theta = static_cast<double>(p) *
                           std::pow(static_cast<double>(hp_.rope_base),
                                    -2.0 * static_cast<double>(i) / static_cast<double>(n_rot));
            if (!ff.empty()) theta /= ff[i];
            double angle = theta / factor;
            if (yarn) {
                const double y = (static_cast<double>(i) - low) / std::max(0.001, high - low);
                const double ramp = 1.0 - std::clamp(y, 0.0, 1.0);
                angle = theta / factor * (1.0 - ramp) + theta * ramp;
            }
            double* a = neox ? x + i : x + 2 * i;
            double* b = neox ? x + i + n_rot / 2 : x + 2 * i + 1;
            const double c = std::cos(angle) * magnitude, s = std::sin(angle) * magnitude;
            const double a0 = *a, b0 = *b;
            *a = a0 * c - b0 * s;
            *b = a0 * s + b0 * c;
        }
    }

    static void softmax(Vec& v) {
        const double mx = *std::max_element(v.begin(), v.end());
        double sum = 0.0;
        for (double& x : v) sum += (x = std::exp(x - mx));
        for (double& x : v) x /= sum;
    }

    std::vector<Vec> gqa(const LayerWeights& L, const std::vector<Vec>& h) const {
        const int64_t n = static_cast<int64_t>(h.size()), hd = hp_.head_dim;
        const Mat wq = load(L.attn_q), wk = load(L.attn_k), wv = load(L.attn_v),
                  wo = load(L.attn_output);
        const Vec bq = vec(L.attn_q_bias), bk = vec(L.attn_k_bias), bv = vec(L.attn_v_bias);
        const bool neox = hp_.arch == Arch::Qwen2;
        const double mag = hp_.scaling == RopeScaling::Yarn && hp_.rope_factor > 1.0f
                               ? 1.0 + 0.1 * std::log(static_cast<double>(hp_.rope_factor))
                               : 1.0;
        std::vector<Vec> q(n), k(n), v(n), out(n);
        for (int64_t t = 0; t < n; ++t) {
            q[t] = wq.mul(h[t]);
            k[t] = wk.mul(h[t]);
            v[t] = wv.mul(h[t]);
            for (size_t i = 0; i < bq.size(); ++i) q[t][i] += bq[i];
            for (size_t i = 0; i < bk.size(); ++i) k[t][i] += bk[i];
            for (size_t i = 0; i < bv.size(); ++i) v[t][i] += bv[i];
            for (int64_t hh = 0; hh < hp_.n_head; ++hh) rope(&q[t][hh * hd], t, neox, mag);
            for (int64_t hh = 0; hh < hp_.n_head_kv; ++hh) rope(&k[t][hh * hd], t, neox, mag);
        }
        const int64_t group = hp_.n_head / hp_.n_head_kv;
        for (int64_t t = 0; t < n; ++t) {
            Vec o(static_cast<size_t>(hp_.n_head * hd), 0.0);
            for (int64_t hh = 0; hh < hp_.n_head; ++hh) {
                const int64_t g = hh / group;
                Vec s(static_cast<size_t>(t + 1));
                for (int64_t j = 0; j <= t; ++j) {
                    double d = 0.0;
                    for (int64_t i = 0; i < hd; ++i) d += q[t][hh * hd + i] * k[j][g * hd + i];
                    s[j] = d / std::sqrt(static_cast<double>(hd));
                }
                softmax(s);
                for (int64_t j = 0; j <= t; ++j)
                    for (int64_t i = 0; i < hd; ++i) o[hh * hd + i] += s[j] * v[j][g * hd + i];
            }
            out[t] = wo.mul(o);
        }
        return out;
    }

    std::vector<Vec> mla(const LayerWeights& L, const std::vector<Vec>& h) const {
        const int64_t n = static_cast<int64_t>(h.size());
        const int64_t nope = hp_.qk_nope, rp = hp_.qk_rope, lora = hp_.kv_lora_rank,
                      vh = hp_.v_head, qh = nope + rp, H = hp_.n_head;
        const Mat wkv_a = load(L.attn_kv_a_mqa), wo = load(L.attn_output);
        const Vec kv_norm = vec(L.attn_kv_a_norm);
        // Per-head decompression matrices Wk[h][i][j] (nope × lora) and Wv[h][i][j] (vh × lora).
        std::vector<Mat> wk(H), wv(H);
        if (L.attn_kv_b) {
            const Mat kvb = load(L.attn_kv_b);
            for (int64_t hh = 0; hh < H; ++hh) {
                wk[hh] = {lora, nope,
                          Vec(kvb.w.begin() + (hh * (nope + vh)) * lora,
                              kvb.w.begin() + (hh * (nope + vh) + nope) * lora)};
                wv[hh] = {lora, vh,
                          Vec(kvb.w.begin() + (hh * (nope + vh) + nope) * lora,
                              kvb.w.begin() + (hh + 1) * (nope + vh) * lora)};
            }
        } else {
            const Mat kb = load(L.attn_k_b), vb = load(L.attn_v_b);  // rows (j,h) / (i,h)
            for (int64_t hh = 0; hh < H; ++hh) {
                wk[hh] = {lora, nope, Vec(static_cast<size_t>(nope * lora))};
                for (int64_t j = 0; j < lora; ++j)
                    for (int64_t i = 0; i < nope; ++i)
                        wk[hh].w[i * lora + j] = kb.w[(hh * lora + j) * nope + i];
                wv[hh] = {lora, vh,
                          Vec(vb.w.begin() + hh * vh * lora, vb.w.begin() + (hh + 1) * vh * lora)};
            }
        }
        const bool yarn = hp_.scaling == RopeScaling::Yarn && hp_.rope_factor > 1.0f;
        const double mscale =
            yarn ? 1.0 + 0.1 * (hp_.yarn_log_mul / 0.1) * std::log(double{hp_.rope_factor}) : 1.0;
        const double scale = mscale * mscale / std::sqrt(static_cast<double>(qh));

        std::vector<Vec> q(n), kpe(n), c(n);
        const Mat wq = load(L.attn_q_a ? L.attn_q_b : L.attn_q);
        const Mat wq_a = L.attn_q_a ? load(L.attn_q_a) : Mat{};
        const Vec q_a_norm = vec(L.attn_q_a_norm);
        for (int64_t t = 0; t < n; ++t) {
            q[t] = L.attn_q_a ? wq.mul(rms(wq_a.mul(h[t]), q_a_norm)) : wq.mul(h[t]);
            for (int64_t hh = 0; hh < H; ++hh) rope(&q[t][hh * qh + nope], t, false, 1.0);
            const Vec kv = wkv_a.mul(h[t]);
            c[t] = rms(Vec(kv.begin(), kv.begin() + lora), kv_norm);
            kpe[t] = Vec(kv.begin() + lora, kv.end());
            rope(kpe[t].data(), t, false, 1.0);
        }
        std::vector<Vec> out(n);
        for (int64_t t = 0; t < n; ++t) {
            Vec o;
            for (int64_t hh = 0; hh < H; ++hh) {
                Vec s(static_cast<size_t>(t + 1));
                std::vector<Vec> vals(static_cast<size_t>(t + 1));
                for (int64_t j = 0; j <= t; ++j) {
                    const Vec kn = wk[hh].mul(c[j]);  // this head's no-rope key, decompressed
                    vals[j] = wv[hh].mul(c[j]);
                    double d = 0.0;
                    for (int64_t i = 0; i < nope; ++i) d += q[t][hh * qh + i] * kn[i];
                    for (int64_t i = 0; i < rp; ++i) d += q[t][hh * qh + nope + i] * kpe[j][i];
                    s[j] = d * scale;
                }
                softmax(s);
                Vec oh(static_cast<size_t>(vh), 0.0);
                for (int64_t j = 0; j <= t; ++j)
                    for (int64_t i = 0; i < vh; ++i) oh[i] += s[j] * vals[j][i];
                o.insert(o.end(), oh.begin(), oh.end());
            }
            out[t] = wo.mul(o);
        }
        return out;
    }

    Vec moe(const LayerWeights& L, const Vec& x, int64_t il) const {
        const int64_t ne = hp_.n_expert, k = hp_.n_expert_used;
        Vec probs = load(L.ffn_gate_inp).mul(x);
        if (hp_.gating == Gating::Softmax) {
            softmax(probs);
        } else {
            for (double& p : probs) p = 1.0 / (1.0 + std::exp(-p));
        }
        Vec sel = probs;
        const Vec bias = vec(L.exp_probs_b);
        for (size_t e = 0; e < bias.size(); ++e) sel[e] += bias[e];
        std::vector<int64_t> allowed;
        const int64_t per = ne / hp_.n_group;
        std::vector<std::pair<double, int64_t>> groups;
        for (int64_t g = 0; g < hp_.n_group; ++g) {
            Vec s(sel.begin() + g * per, sel.begin() + (g + 1) * per);
            std::sort(s.rbegin(), s.rend());
            groups.push_back({s[0] + (per > 1 ? s[1] : 0.0), g});
        }
        std::stable_sort(groups.begin(), groups.end(),
                         [](auto& a, auto& b) { return a.first > b.first; });
        for (int64_t gi = 0; gi < hp_.n_group_used; ++gi)
            for (int64_t e = 0; e < per; ++e) allowed.push_back(groups[gi].second * per + e);
        std::stable_sort(allowed.begin(), allowed.end(), [&](int64_t a, int64_t b) {
            return sel[a] > sel[b] || (sel[a] == sel[b] && a < b);
        });
        allowed.resize(static_cast<size_t>(k));
        if (routes_.empty()) routes_.resize(static_cast<size_t>(hp_.n_layer));
        std::vector<uint64_t>& counted = routes_[static_cast<size_t>(il)];
        if (counted.empty()) counted.assign(static_cast<size_t>(ne), 0);
        for (int64_t e : allowed) ++counted[static_cast<size_t>(e)];
        Vec w(static_cast<size_t>(k));
        double sum = 0.0;
        for (int64_t i = 0; i < k; ++i) sum += (w[i] = probs[allowed[i]]);
        if (hp_.weights_norm)
            for (double& v : w) v /= std::max(sum, 6.103515625e-5);
        for (double& v : w) v *= hp_.weights_scale;

        const Mat gate = load(L.ffn_gate_exps), up = load(L.ffn_up_exps),
                  down = load(L.ffn_down_exps);
        const int64_t ff = hp_.n_ff_exp;
        Vec y(x.size(), 0.0);
        for (int64_t i = 0; i < k; ++i) {
            const int64_t e = allowed[i];
            Vec g = gate.mul(x, e * ff, ff), u = up.mul(x, e * ff, ff);
            for (int64_t j = 0; j < ff; ++j) g[j] = silu(g[j]) * u[j];
            const Vec d = down.mul(g, e * hp_.n_embd, hp_.n_embd);
            for (size_t j = 0; j < y.size(); ++j) y[j] += w[i] * d[j];
        }
        if (L.ffn_gate_shexp) {
            const Vec s =
                swiglu_ffn(load(L.ffn_gate_shexp), load(L.ffn_up_shexp), load(L.ffn_down_shexp), x);
            for (size_t j = 0; j < y.size(); ++j) y[j] += s[j];
        }
        return y;
    }

    const Model& m_;
    const HParams& hp_;
    mutable std::vector<std::vector<uint64_t>> routes_;  // (n_layer)(n_expert or 0) routes()
};

// The golden README's metrics, from the library (runtime/logit_metrics.h).
using metrics::row_argmax;
using metrics::row_kl;
using metrics::row_max_rel;

}  // namespace strata::test
