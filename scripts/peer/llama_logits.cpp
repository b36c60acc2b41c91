// Peer program for scripts/compare-llamacpp.sh: evaluates a prompt with llama.cpp (linked from the
// llama.cpp build whose path the script is given) the way golden/README.md describes the reference
// logits: CPU, F32 KV cache, no flash attention, no repacked buffers, the whole prompt in one batch
// with logits for every position, then greedy decoding one token per call.
//
//   llama_logits MODEL TOKENS(1,2,3) N_GREEDY OUT.f32 [THREADS]
// writes n_prompt × n_vocab little-endian float32 logits to OUT.f32 and prints the greedy ids.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "llama.h"

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s MODEL TOKENS N_GREEDY OUT.f32 [THREADS]\n", argv[0]);
        return 2;
    }
    std::vector<llama_token> prompt;
    for (const char* p = argv[2]; *p;) {
        prompt.push_back(static_cast<llama_token>(std::strtol(p, const_cast<char**>(&p), 10)));
        if (*p == ',') ++p;
    }
    const int n_greedy = std::atoi(argv[3]);
    const int threads = argc > 5 ? std::atoi(argv[5]) : 2;

    llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.use_extra_bufts = false;
    llama_model* model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        std::fprintf(stderr, "llama_logits: cannot load %s\n", argv[1]);
        return 1;
    }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 512;
    cp.n_batch = 512;
    cp.n_ubatch = 512;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
    llama_context* ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        std::fprintf(stderr, "llama_logits: cannot create a context\n");
        return 1;
    }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

    llama_batch batch = llama_batch_init(static_cast<int32_t>(prompt.size()), 0, 1);
    for (size_t i = 0; i < prompt.size(); ++i) {
        batch.token[i] = prompt[i];
        batch.pos[i] = static_cast<llama_pos>(i);
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = static_cast<int32_t>(prompt.size());
    if (llama_decode(ctx, batch) != 0) {
        std::fprintf(stderr, "llama_logits: decode failed\n");
        return 1;
    }
    FILE* out = std::fopen(argv[4], "wb");
    if (!out) {
        std::fprintf(stderr, "llama_logits: cannot write %s\n", argv[4]);
        return 1;
    }
    for (size_t i = 0; i < prompt.size(); ++i)
        std::fwrite(llama_get_logits_ith(ctx, static_cast<int32_t>(i)), sizeof(float), n_vocab,
                    out);
    std::fclose(out);

    auto argmax = [&](const float* l) {
        int best = 0;
        for (int v = 1; v < n_vocab; ++v)
            if (l[v] > l[best]) best = v;
        return best;
    };
    llama_token next = argmax(llama_get_logits_ith(ctx, batch.n_tokens - 1));
    std::string ids;
    for (int step = 0; step < n_greedy; ++step) {
        ids += (step ? "," : "") + std::to_string(next);
        llama_batch one = llama_batch_get_one(&next, 1);
        if (llama_decode(ctx, one) != 0) {
            std::fprintf(stderr, "llama_logits: decode failed at step %d\n", step);
            return 1;
        }
        next = argmax(llama_get_logits_ith(ctx, -1));
    }
    std::printf("%s\n", ids.c_str());
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
