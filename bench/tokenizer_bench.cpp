// Tokenizer speed: encoding 1 MB of mixed text (every script, emoji, code, numbers and chat
// markers of golden/tokenizer/strings.json, drawn in random order), decoding it back, and loading
// a vocabulary. Needs the golden set: ../shared/golden beside the checkout or $STRATA_GOLDEN_DIR.
//   build/bench/strata_bench --benchmark_filter=Tokenizer
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "runtime/gguf.h"
#include "runtime/tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using strata::tokenizer::Tokenizer;

constexpr size_t kTextBytes = 1 << 20;

fs::path golden_dir() {
    if (const char* env = std::getenv("STRATA_GOLDEN_DIR")) return env;
    return fs::path(__FILE__).parent_path() / ".." / ".." / "shared" / "golden";
}

const std::string& mixed_text() {
    static const std::string text = [] {
        std::ifstream in(golden_dir() / "tokenizer" / "strings.json", std::ios::binary);
        std::stringstream raw;
        raw << in.rdbuf();
        const auto strings = nlohmann::json::parse(raw.str()).get<std::vector<std::string>>();
        std::mt19937 rng(7);
        std::string t;
        while (t.size() < kTextBytes) {
            t += strings[rng() % strings.size()];
            t += rng() % 4 == 0 ? "\n" : " ";
        }
        return t;
    }();
    return text;
}

const Tokenizer& vocab(const std::string& name) {
    static std::map<std::string, Tokenizer> cache;
    auto it = cache.find(name);
    if (it == cache.end()) {
        const auto file =
            strata::gguf::File::open((golden_dir() / "vocab" / (name + ".gguf")).string());
        it = cache.emplace(name, Tokenizer::load(file)).first;
    }
    return it->second;
}

bool have_golden(benchmark::State& state) {
    if (fs::exists(golden_dir() / "tokenizer" / "strings.json")) return true;
    state.SkipWithError("golden set not found (../shared/golden or STRATA_GOLDEN_DIR)");
    return false;
}

void BM_TokenizerEncode1MB(benchmark::State& state, const std::string& name) {
    if (!have_golden(state)) return;
    const Tokenizer& tok = vocab(name);
    const std::string& text = mixed_text();
    size_t n_tokens = 0;
    for (auto _ : state) {
        const auto ids = tok.encode(text, false);
        n_tokens = ids.size();
        benchmark::DoNotOptimize(ids.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
    state.counters["tokens"] = static_cast<double>(n_tokens);
}

void BM_TokenizerDecode1MB(benchmark::State& state, const std::string& name) {
    if (!have_golden(state)) return;
    const Tokenizer& tok = vocab(name);
    const auto ids = tok.encode(mixed_text(), false);
    for (auto _ : state) {
        const std::string text = tok.decode(ids, strata::tokenizer::Control::kRender);
        benchmark::DoNotOptimize(text.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * mixed_text().size()));
}

void BM_TokenizerLoad(benchmark::State& state, const std::string& name) {
    if (!have_golden(state)) return;
    const auto file =
        strata::gguf::File::open((golden_dir() / "vocab" / (name + ".gguf")).string());
    for (auto _ : state) benchmark::DoNotOptimize(Tokenizer::load(file).n_vocab());
}

#define STRATA_TOKENIZER_BENCH(fn)                                                                 \
    BENCHMARK_CAPTURE(fn, deepseek_v3, std::string("deepseek-v3"))->Unit(benchmark::kMillisecond); \
    BENCHMARK_CAPTURE(fn, llama_bpe, std::string("llama-bpe"))->Unit(benchmark::kMillisecond);     \
    BENCHMARK_CAPTURE(fn, qwen2, std::string("qwen2"))->Unit(benchmark::kMillisecond)

STRATA_TOKENIZER_BENCH(BM_TokenizerEncode1MB);
STRATA_TOKENIZER_BENCH(BM_TokenizerDecode1MB);
STRATA_TOKENIZER_BENCH(BM_TokenizerLoad);

}  // namespace
