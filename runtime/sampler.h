// Choosing the next token from logits.
//
// Steps, in llama.cpp's default order: repetition penalty over the last repeat_last_n accepted
// tokens (a positive logit is divided by the penalty, a negative one multiplied), then top-k,
// top-p (smallest set whose probability reaches p), min-p (tokens at least min_p times as likely
// as the best), temperature, and a draw from the rest with a seeded generator. Temperature ≤ 0
// is greedy: the largest penalised logit, lowest id on ties.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "runtime/model.h"

namespace strata {

struct SamplerParams {
    float temperature = 0.8f;     // ≤ 0: greedy
    int64_t top_k = 40;           // 0: off
    float top_p = 0.95f;          // 1: off
    float min_p = 0.05f;          // 0: off
    float repeat_penalty = 1.0f;  // 1: off
    int64_t repeat_last_n = 64;   // how many recent tokens the penalty looks at
    uint64_t seed = 0;
};

// The defaults for a model when no sampling flag is given: DeepSeek reasoning models (R1 and
// its distills) get temperature 0.6 and top-p 0.95 as DeepSeek recommends, without top-k or
// min-p; other models get llama.cpp's defaults.
SamplerParams default_sampling(const Model& model);
// Whether the model is a DeepSeek reasoning model: a deepseek2 file, a name that says
// DeepSeek-R1, or a chat template that opens a <think> block.
bool is_reasoning_model(const Model& model);

class Sampler {
  public:
    // Throws strata::Error naming the flag when a parameter is out of range.
    explicit Sampler(const SamplerParams& params);

    // The next token for these logits (n_vocab floats).
    int32_t sample(std::span<const float> logits);
    // Records a token of the context (prompt or generated) for the repetition penalty.
    void accept(int32_t token);
    // Records the end of a context just prefilled (the last repeat_last_n of `tokens`): what the
    // penalty looks at after a prompt (`strata run --chat`, `strata serve`).
    void accept_context(std::span<const int32_t> tokens);
    void reset();

    const SamplerParams& params() const { return params_; }

  private:
    struct Candidate {
        int32_t id;
        float logit;
    };

    SamplerParams params_;
    std::mt19937_64 rng_;
    std::vector<int32_t> recent_;  // (≤ repeat_last_n) accepted tokens, oldest first
    std::vector<float> logits_;    // (n_vocab) penalised copy
    std::vector<Candidate> cand_;  // surviving candidates, best first
    std::vector<double> probs_;    // their probabilities
};

}  // namespace strata
