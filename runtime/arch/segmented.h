// The run / run_batch plumbing every architecture shares: a pass over rows grouped in segments
// (common.h), one segment for a prompt's batch, one per row for a batch of sequences, whose rows
// are kept apart (Products::set_rows_apart); and the products' device (use_device).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/arch/common.h"
#include "runtime/arch/forward.h"
#include "runtime/arch/products.h"

namespace strata::arch {

class SegmentedForward : public Forward {
  public:
    using Forward::Forward;

    void run(std::span<const int32_t> tokens, int64_t pos0, KvCache& cache, bool all_logits,
             float* logits) final {
        const auto n = static_cast<int64_t>(tokens.size());
        const Segment whole{&cache, pos0, 0, n};
        pass(tokens, {&whole, 1}, output_rows(n, all_logits, logits != nullptr), logits);
    }

    void run_batch(std::span<const BatchRow> rows, float* logits) final {
        segments_.clear();
        tokens_.clear();
        for (const BatchRow& r : rows) {
            segments_.push_back({r.cache, r.pos, static_cast<int64_t>(segments_.size()), 1});
            tokens_.push_back(r.token);
        }
        const RowsApart apart(mm_);
        pass(tokens_, segments_, static_cast<int64_t>(rows.size()), logits);
    }

    void use_device(const DeviceTier* tier) final { mm_.use_device(tier); }

  protected:
    // The rows of every segment (tokens in row order) through the layers, each segment's keys
    // and values into its cache; logits of the last n_out rows (null: none).
    virtual void pass(std::span<const int32_t> tokens, std::span<const Segment> segs, int64_t n_out,
                      float* logits) = 0;

    Products mm_;  // where each product runs (the CPU, or a device's copy of its weights)

  private:
    std::vector<Segment> segments_;  // run_batch: one per row
    std::vector<int32_t> tokens_;    // run_batch: the rows' tokens
};

}  // namespace strata::arch
