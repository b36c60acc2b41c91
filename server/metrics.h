// Counters behind `strata serve`'s /metrics, shared by the HTTP handlers and the scheduler.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace strata::server {

struct Metrics {
    std::atomic<int64_t> requests{0};       // every HTTP request
    std::atomic<int64_t> completions{0};    // generations finished
    std::atomic<int64_t> rejected{0};       // answered 4xx
    std::atomic<int64_t> cancelled{0};      // client went away mid-generation
    std::atomic<int64_t> prompt_tokens{0};  // evaluated or reused
    std::atomic<int64_t> generated_tokens{0};
    std::atomic<int64_t> queued{0};          // waiting for a slot now
    std::atomic<int64_t> active{0};          // holding a slot now (prefilling or decoding)
    std::atomic<int64_t> latency_us_sum{0};  // request start to last token, generations
    std::atomic<int64_t> ttft_us_sum{0};     // request start to first token

    // Rows of each batched decode step (strata_batch_rows histogram): bucket i counts the steps
    // of at most kBatchBuckets[i] rows; the last bucket is +Inf.
    static constexpr std::array<int64_t, 9> kBatchBuckets = {1, 2, 4, 8, 16, 32, 64, 128, 256};
    std::array<std::atomic<int64_t>, kBatchBuckets.size() + 1> batch_steps{};
    std::atomic<int64_t> batch_rows_sum{0};
    std::atomic<int64_t> batch_count{0};

    void count_batch(int64_t rows) {
        size_t b = 0;
        while (b < kBatchBuckets.size() && rows > kBatchBuckets[b]) ++b;
        ++batch_steps[b];
        batch_rows_sum += rows;
        ++batch_count;
    }
};

}  // namespace strata::server
