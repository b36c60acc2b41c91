// Attention over the cache, one (token, head) pair per task.
#include "runtime/arch/attention.h"

#include <algorithm>

#include "runtime/arch/tap.h"
#include "runtime/ops.h"
#include "simd/avx512/kernels.h"
#include "simd/dispatch.h"
#include "simd/float_order.h"
#include "simd/parallel.h"

namespace strata::arch {

namespace {

// The probabilities of a decoding step, kept between calls (one allocation per thread that
// calls attend, not one per call).
std::vector<float>& probs_scratch() {
    thread_local std::vector<float> p;
    return p;
}

// attend_decode's job lists, kept between calls like probs_scratch.
struct DecodeScratch {
    struct Chunk {
        int64_t t, g, first;  // query, KV group, first position or value row
    };
    std::vector<int64_t> at;
    std::vector<Chunk> score_jobs, sum_jobs;
};
DecodeScratch& decode_scratch() {
    thread_local DecodeScratch s;
    return s;
}

// out[c] = simd::dot_f32_vec_prefix(x, y[c], n, n_total) for c < n_y.
using RowsFn = void (*)(const float* x, const float* const* y, int n_y, int64_t n, int64_t n_total,
                        float* out);

void scalar_rows(const float* x, const float* const* y, int n_y, int64_t n, int64_t n_total,
                 float* out) {
    for (int c = 0; c < n_y; ++c) out[c] = simd::dot_f32_vec_prefix(x, y[c], n, n_total);
}

// out[r · 4 + c] = simd::dot_f32_vec_prefix(x[r], y[c], n, n_total) for r, c < 4.
using BlockFn = void (*)(const float* const* x, const float* const* y, int64_t n, int64_t n_total,
                         float* out);

// out[r · 4 + c] = simd::dot_f32_gemm(x[r], y[c], n) for r, c < 4.
using GemmFn = void (*)(const float* const* x, const float* const* y, int64_t n, float* out);

struct ProductFns {
    RowsFn rows;
    BlockFn block;
    GemmFn gemm;
};

// The AVX-512 kernels (each product the same bits, loads shared) where the float kernels run at
// that level (not under STRATA_ISA=avx2 or scalar), else the scalar twins.
const ProductFns& product_fns() {
    static const ProductFns fns =
        dispatch::kernels()[quant::Type::F32].vec_dot_isa >= dispatch::Isa::avx512
            ? ProductFns{quant::avx512::vec_dot_f32_prefix_rows,
                         quant::avx512::vec_dot_f32_prefix_4x4, quant::avx512::dot_f32_gemm_4x4}
            : ProductFns{scalar_rows, simd::dot_f32_vec_prefix_4x4, simd::dot_f32_gemm_4x4};
    return fns;
}

// How much of each row of the next block all_products prefetches.
constexpr int64_t kPrefetchFloats = 256;

// store(r, c, simd::dot_f32_vec_prefix(x[r], y[c], n, n_total)) for every row r and vector c:
// blocks of four by four share their loads (ProductFns::block), the rest go by row.
template <class Store>
void all_products(const std::vector<const float*>& x, const std::vector<const float*>& y, int64_t n,
                  int64_t n_total, Store&& store) {
    const auto n_x = static_cast<int64_t>(x.size()), n_y = static_cast<int64_t>(y.size());
    const int64_t x4 = n_x / 4 * 4, y4 = n_y / 4 * 4;
    const ProductFns& fns = product_fns();
    const RowsFn rows = fns.rows;
    const BlockFn block = fns.block;
    float v[16];
    // The next block's rows are prefetched: key rows are short and strided (one head's slice of
    // a cache row), which the hardware prefetcher does not follow; a long row (values at depth)
    // only needs its start, the prefetcher takes it from there.
    const int64_t ahead =
        std::min<int64_t>(n, kPrefetchFloats) * static_cast<int64_t>(sizeof(float));
    for (int64_t r = 0; r < n_x; r += 4) {
        for (int64_t a = r + 4; a < std::min(r + 8, n_x); ++a)
            for (int64_t b = 0; b < ahead; b += 64)
                __builtin_prefetch(reinterpret_cast<const char*>(x[static_cast<size_t>(a)]) + b);
        if (r < x4) {
            for (int64_t c = 0; c < y4; c += 4) {
                block(x.data() + r, y.data() + c, n, n_total, v);
                for (int64_t a = 0; a < 4; ++a)
                    for (int64_t b = 0; b < 4; ++b) store(r + a, c + b, v[a * 4 + b]);
            }
        }
        // Vectors past the last block of four (rows of full blocks), or every vector (the rows
        // past the last block of four).
        const int64_t c0 = r < x4 ? y4 : 0;
        if (c0 == n_y) continue;
        for (int64_t a = r; a < std::min(r + 4, n_x); ++a) {
            for (int64_t c = c0; c < n_y; c += 16) {
                const int count = static_cast<int>(std::min<int64_t>(16, n_y - c));
                rows(x[static_cast<size_t>(a)], y.data() + c, count, n, n_total, v);
                for (int b = 0; b < count; ++b) store(a, c + b, v[b]);
            }
        }
    }
}

}  // namespace

int64_t kv_view_length(int64_t n_used) {
    constexpr int64_t kPad = 256;
    return std::max<int64_t>(kPad, (n_used + kPad - 1) / kPad * kPad);
}

void attend_decode(const AttentionShape& s, std::span<const DecodeRow> rows, int64_t layer,
                   const float* q, int64_t q_stride, float* out, int64_t out_stride) {
    // Every head of a KV group reads the same key and value rows, so the rows are the outer loop
    // and the heads the inner one (MLA: all heads share one latent, read once instead of once
    // per head). Three jobs over all queries: scores by (query, group, position chunk), softmax
    // by (query, head), weighted sums by (query, group, value-row chunk).
    constexpr int64_t kPositions = 64, kRows = 16;
    const int64_t group = s.n_head / s.n_head_kv;
    const auto n = static_cast<int64_t>(rows.size());
    // The caller's scratch, bound here: the workers below must see this thread's vectors.
    DecodeScratch& scratch = decode_scratch();
    std::vector<int64_t>& at = scratch.at;  // (n + 1) where each query's probabilities begin
    std::vector<DecodeScratch::Chunk>& score_jobs = scratch.score_jobs;
    std::vector<DecodeScratch::Chunk>& sum_jobs = scratch.sum_jobs;
    at.assign(static_cast<size_t>(n + 1), 0);
    score_jobs.clear();
    sum_jobs.clear();
    int64_t work = 0;
    for (int64_t t = 0; t < n; ++t) {
        const int64_t n_valid = rows[static_cast<size_t>(t)].pos + 1;
        at[static_cast<size_t>(t + 1)] = at[static_cast<size_t>(t)] + s.n_head * n_valid;
        work += s.n_head * n_valid * (s.k_dim + s.v_dim);
        for (int64_t g = 0; g < s.n_head_kv; ++g) {
            for (int64_t j0 = 0; j0 < n_valid; j0 += kPositions) score_jobs.push_back({t, g, j0});
            for (int64_t i0 = 0; i0 < s.v_dim; i0 += kRows) sum_jobs.push_back({t, g, i0});
        }
    }
    std::vector<float>& p = probs_scratch();  // per query (n_head, n_valid)
    if (p.size() < static_cast<size_t>(at.back())) p.resize(static_cast<size_t>(at.back()));
    simd::parallel_for(static_cast<int64_t>(score_jobs.size()), work, [&](int64_t job) {
        const DecodeScratch::Chunk& c = score_jobs[static_cast<size_t>(job)];
        const DecodeRow& row = rows[static_cast<size_t>(c.t)];
        const int64_t n_valid = row.pos + 1, j1 = std::min(n_valid, c.first + kPositions);
        float* pt = p.data() + at[static_cast<size_t>(c.t)];
        const float* qt = q + c.t * q_stride;
        thread_local std::vector<const float*> ks, qs;
        ks.resize(static_cast<size_t>(j1 - c.first));
        qs.resize(static_cast<size_t>(group));
        for (int64_t j = c.first; j < j1; ++j)
            ks[static_cast<size_t>(j - c.first)] = row.cache->k(layer, j) + c.g * s.k_dim;
        for (int64_t k = 0; k < group; ++k)
            qs[static_cast<size_t>(k)] = qt + (c.g * group + k) * s.k_dim;
        all_products(ks, qs, s.k_dim, s.k_dim, [&](int64_t r, int64_t k, float v) {
            pt[static_cast<size_t>((c.g * group + k) * n_valid + c.first + r)] = v * s.scale;
        });
    });
    simd::parallel_for(n * s.n_head, work, [&](int64_t job) {
        const int64_t t = job / s.n_head, h = job % s.n_head;
        const int64_t n_valid = rows[static_cast<size_t>(t)].pos + 1;
        ops::softmax_masked(p.data() + at[static_cast<size_t>(t)] + h * n_valid, n_valid,
                            kv_view_length(n_valid));
    });
    simd::parallel_for(static_cast<int64_t>(sum_jobs.size()), work, [&](int64_t job) {
        const DecodeScratch::Chunk& c = sum_jobs[static_cast<size_t>(job)];
        const DecodeRow& row = rows[static_cast<size_t>(c.t)];
        const int64_t n_valid = row.pos + 1, i1 = std::min(s.v_dim, c.first + kRows);
        const float* pt = p.data() + at[static_cast<size_t>(c.t)];
        float* ot = out + c.t * out_stride;
        thread_local std::vector<const float*> vs, ps;
        vs.resize(static_cast<size_t>(i1 - c.first));
        ps.resize(static_cast<size_t>(group));
        for (int64_t i = c.first; i < i1; ++i)
            vs[static_cast<size_t>(i - c.first)] = row.cache->v_col(layer, c.g * s.v_dim + i);
        for (int64_t k = 0; k < group; ++k)
            ps[static_cast<size_t>(k)] = pt + (c.g * group + k) * n_valid;
        all_products(vs, ps, n_valid, kv_view_length(n_valid), [&](int64_t r, int64_t k, float v) {
            ot[(c.g * group + k) * s.v_dim + c.first + r] = v;
        });
    });
}

void attend(const AttentionShape& s, const KvCache& cache, int64_t layer, int64_t pos0, int64_t n,
            const float* q, int64_t q_stride, float* out, int64_t out_stride) {
    const int64_t group = s.n_head / s.n_head_kv;
    const int64_t n_used = pos0 + n;              // cache positions this batch can see
    const int64_t n_kv = kv_view_length(n_used);  // the reference's cache view, later ones masked
    const int64_t jobs = n * s.n_head;

    // The weighted sum of values is the reference's matrix product of the value rows [n_kv,
    // v_dim] with the probabilities [n_kv, n]: tinyBLAS (n_kv is a multiple of 16) unless the
    // batch has one row or v_dim is not a multiple of 4, then ggml_vec_dot_f32.
    const bool gemm_order = n >= 2 && s.v_dim % 4 == 0;
    // Debugging taps (tap.h): the probabilities as the reference's [n_kv, n, n_head] tensor.
    std::vector<float> tap_probs;
    if (tap_enabled()) tap_probs.assign(static_cast<size_t>(s.n_head * n * n_kv), 0.0f);

    // Probabilities of query t of head h over positions [0, n_valid), zeros after them up to
    // `width` (the weighted sums below may run several queries over the longest of them).
    const auto probabilities = [&](int64_t t, int64_t h, float* p, int64_t width) {
        const int64_t g = h / group;
        const int64_t n_valid = pos0 + t + 1;  // causal: itself and everything before
        const float* qh = q + t * q_stride + h * s.k_dim;
        for (int64_t j = 0; j < n_valid; ++j) {
            const float* kj = cache.k(layer, j) + g * s.k_dim;
            p[j] = simd::dot_f32_vec(kj, qh, s.k_dim) * s.scale;
        }
        ops::softmax_masked(p, n_valid, n_kv);
        std::fill(p + n_valid, p + width, 0.0f);
        if (tap_enabled()) std::copy(p, p + n_valid, tap_probs.begin() + (h * n + t) * n_kv);
    };

    if (n == 1) {
        const DecodeRow row{&cache, pos0};
        attend_decode(s, {&row, 1}, layer, q, q_stride, out, out_stride);
        if (tap_enabled()) {
            const std::vector<float>& p = probs_scratch();
            for (int64_t h = 0; h < s.n_head; ++h)
                std::copy(p.begin() + h * n_used, p.begin() + (h + 1) * n_used,
                          tap_probs.begin() + h * n_kv);
        }
        tap("kq_soft_max", layer, tap_probs.data(), static_cast<int64_t>(tap_probs.size()));
        return;
    }

    if (!gemm_order) {
        simd::parallel_for(jobs, jobs * n_used * (s.k_dim + s.v_dim), [&](int64_t job) {
            thread_local std::vector<float> scores;  // (n_used) of one query
            if (scores.size() < static_cast<size_t>(n_used))
                scores.resize(static_cast<size_t>(n_used));
            const int64_t t = job / s.n_head, h = job % s.n_head, g = h / group;
            const int64_t n_valid = pos0 + t + 1;
            probabilities(t, h, scores.data(), n_valid);
            float* oh = out + t * out_stride + h * s.v_dim;
            for (int64_t i = 0; i < s.v_dim; ++i) {
                const float* vi = cache.v_col(layer, g * s.v_dim + i);
                oh[i] = simd::dot_f32_vec_prefix(vi, scores.data(), n_valid, n_kv);
            }
        });
        tap("kq_soft_max", layer, tap_probs.data(), static_cast<int64_t>(tap_probs.size()));
        return;
    }

    // Batches: a task is up to four consecutive queries of four heads of one KV group (one head
    // where a group has not four), so that each key and value row read serves up to sixteen
    // queries. Scores go four keys by four queries at a time (simd::dot_f32_vec_prefix_4x4,
    // over the last query's positions: the extra scores of earlier queries are never used);
    // weighted sums four value rows by four queries (ProductFns::gemm): the same bits as
    // one product each, the zeros past a query's positions leaving its lanes as they are.
    constexpr int64_t kQueries = 4;
    const int64_t heads = group % 4 == 0 ? 4 : 1;  // per task
    const int64_t head_blocks = s.n_head / heads;
    const int64_t n_groups = (n + kQueries - 1) / kQueries;
    const GemmFn gemm = product_fns().gemm;
    simd::parallel_for(
        n_groups * head_blocks, jobs * n_used * (s.k_dim + s.v_dim), [&](int64_t job) {
            thread_local std::vector<float> scores;  // (heads · kQueries, n_used)
            thread_local std::vector<const float*> keys, queries, probs;
            if (scores.size() < static_cast<size_t>(heads * kQueries * n_used))
                scores.resize(static_cast<size_t>(heads * kQueries * n_used));
            const int64_t h0 = job % head_blocks * heads, g = h0 / group;
            const int64_t t0 = job / head_blocks * kQueries, m = std::min(kQueries, n - t0);
            const int64_t width = pos0 + t0 + m;  // the last query's positions
            keys.resize(static_cast<size_t>(width));
            for (int64_t j = 0; j < width; ++j)
                keys[static_cast<size_t>(j)] = cache.k(layer, j) + g * s.k_dim;
            // Query b = (head h0 + b / kQueries, token t0 + b % kQueries); a short last group
            // repeats its first token.
            const int64_t n_q = heads * kQueries;
            queries.resize(static_cast<size_t>(n_q));
            probs.resize(static_cast<size_t>(n_q));
            for (int64_t b = 0; b < n_q; ++b) {
                const int64_t h = h0 + b / kQueries, c = b % kQueries < m ? b % kQueries : 0;
                queries[static_cast<size_t>(b)] = q + (t0 + c) * q_stride + h * s.k_dim;
                probs[static_cast<size_t>(b)] =
                    scores.data() + (b / kQueries * kQueries + c) * n_used;
            }
            all_products(keys, queries, s.k_dim, s.k_dim, [&](int64_t j, int64_t b, float v) {
                scores[static_cast<size_t>(b * n_used + j)] = v * s.scale;
            });
            for (int64_t b = 0; b < n_q; ++b) {
                const int64_t h = h0 + b / kQueries, c = b % kQueries;
                if (c >= m) continue;
                float* pb = scores.data() + b * n_used;
                const int64_t n_valid = pos0 + t0 + c + 1;  // causal: itself and everything before
                ops::softmax_masked(pb, n_valid, n_kv);
                std::fill(pb + n_valid, pb + width, 0.0f);
                if (tap_enabled())
                    std::copy(pb, pb + n_valid, tap_probs.begin() + (h * n + t0 + c) * n_kv);
            }
            float sums[kQueries * kQueries];
            for (int64_t i = 0; i < s.v_dim; i += kQueries) {
                const float* v[kQueries];
                for (int64_t r = 0; r < kQueries; ++r)
                    v[r] = cache.v_col(layer, g * s.v_dim + i + r);
                for (int64_t hb = 0; hb < heads; ++hb) {
                    gemm(v, probs.data() + hb * kQueries, width, sums);
                    for (int64_t c = 0; c < m; ++c) {
                        float* oh = out + (t0 + c) * out_stride + (h0 + hb) * s.v_dim + i;
                        for (int64_t r = 0; r < kQueries; ++r) oh[r] = sums[r * kQueries + c];
                    }
                }
            }
        });
    tap("kq_soft_max", layer, tap_probs.data(), static_cast<int64_t>(tap_probs.size()));
}

}  // namespace strata::arch
