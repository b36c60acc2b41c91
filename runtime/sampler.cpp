// Token sampling (see sampler.h for the order of the steps).
#include "runtime/sampler.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>

#include "runtime/error.h"

namespace strata {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// A metadata string, or "" when absent or not a string.
std::string_view meta_str(const gguf::File& f, std::string_view key) {
    const gguf::Value* v = f.find(key);
    return v && v->type == gguf::ValueType::STRING ? v->s : std::string_view();
}

}  // namespace

bool is_reasoning_model(const Model& model) {
    const gguf::File& f = model.file();
    for (std::string_view key : {"general.name", "general.basename", "general.base_model.0.name"}) {
        const std::string name = lower(meta_str(f, key));
        if (name.find("deepseek") != std::string::npos && name.find("r1") != std::string::npos)
            return true;
    }
    return meta_str(f, "tokenizer.chat_template").find("think>") != std::string_view::npos;
}

SamplerParams default_sampling(const Model& model) {
    SamplerParams p;
    if (is_reasoning_model(model)) {
        p.temperature = 0.6f;
        p.top_p = 0.95f;
        p.top_k = 0;
        p.min_p = 0.0f;
    }
    return p;
}

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {
    if (!std::isfinite(params.temperature))
        fail("--temp is {}, expected a finite number", params.temperature);
    if (params.top_k < 0) fail("--top-k is {}, expected 0 (off) or more", params.top_k);
    if (!(params.top_p > 0.0f && params.top_p <= 1.0f))
        fail("--top-p is {}, expected a number in (0, 1]", params.top_p);
    if (!(params.min_p >= 0.0f && params.min_p <= 1.0f))
        fail("--min-p is {}, expected a number in [0, 1]", params.min_p);
    if (!(params.repeat_penalty > 0.0f && std::isfinite(params.repeat_penalty)))
        fail("--repeat-penalty is {}, expected a positive number", params.repeat_penalty);
    if (params.repeat_last_n < 0)
        fail("--repeat-last-n is {}, expected 0 or more", params.repeat_last_n);
}

void Sampler::accept(int32_t token) {
    if (params_.repeat_last_n == 0) return;
    recent_.push_back(token);
    if (static_cast<int64_t>(recent_.size()) > params_.repeat_last_n)
        recent_.erase(recent_.begin());
}

void Sampler::accept_context(std::span<const int32_t> tokens) {
    const size_t window = static_cast<size_t>(std::max<int64_t>(params_.repeat_last_n, 0));
    for (size_t i = tokens.size() > window ? tokens.size() - window : 0; i < tokens.size(); ++i)
        accept(tokens[i]);
}

void Sampler::reset() {
    recent_.clear();
    rng_.seed(params_.seed);
}

int32_t Sampler::sample(std::span<const float> logits) {
    const auto n = static_cast<int64_t>(logits.size());
    if (n == 0) fail("no logits to sample from");
    logits_.assign(logits.begin(), logits.end());
    if (params_.repeat_penalty != 1.0f) {
        // Each distinct recent token is penalised once.
        std::vector<int32_t> seen = recent_;
        std::sort(seen.begin(), seen.end());
        seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
        for (int32_t id : seen) {
            if (id < 0 || id >= n) continue;
            float& l = logits_[static_cast<size_t>(id)];
            l = l > 0.0f ? l / params_.repeat_penalty : l * params_.repeat_penalty;
        }
    }
    if (params_.temperature <= 0.0f) {
        // max_element keeps the first of equal maxima: the lowest id.
        return static_cast<int32_t>(std::max_element(logits_.begin(), logits_.end()) -
                                    logits_.begin());
    }

    cand_.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
        cand_[static_cast<size_t>(i)] = {static_cast<int32_t>(i), logits_[static_cast<size_t>(i)]};
    const auto better = [](const Candidate& a, const Candidate& b) {
        return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
    };
    size_t keep = cand_.size();
    if (params_.top_k > 0 && params_.top_k < n) keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<ptrdiff_t>(keep), cand_.end(),
                      better);
    cand_.resize(keep);

    // Probabilities of the survivors at temperature 1, for top-p and min-p.
    const auto softmax = [&](float temperature) {
        probs_.resize(cand_.size());
        double sum = 0.0;
        for (size_t i = 0; i < cand_.size(); ++i) {
            probs_[i] =
                std::exp(static_cast<double>(cand_[i].logit - cand_[0].logit) / temperature);
            sum += probs_[i];
        }
        for (double& p : probs_) p /= sum;
    };
    if (params_.top_p < 1.0f) {
        softmax(1.0f);
        double cum = 0.0;
        size_t m = 0;
        while (m < cand_.size()) {
            cum += probs_[m++];
            if (cum >= params_.top_p) break;
        }
        cand_.resize(m);
    }
    if (params_.min_p > 0.0f) {
        softmax(1.0f);
        size_t m = 1;
        while (m < cand_.size() && probs_[m] >= params_.min_p * probs_[0]) ++m;
        cand_.resize(m);
    }

    softmax(params_.temperature);
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    double cum = 0.0;
    for (size_t i = 0; i < cand_.size(); ++i) {
        cum += probs_[i];
        if (u < cum) return cand_[i].id;
    }
    return cand_.back().id;  // u within rounding of 1
}

}  // namespace strata
