// `strata run --chat`: the chat flags, and the session behind them (runtime/chat does the work).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "runtime/cli/infer_args.h"

namespace strata::cli {

struct ChatFlags {
    bool enabled = false;            // --chat
    std::string template_name;       // --chat-template NAME
    std::string system;              // --system PROMPT
    bool system_as_is = false;       // --system-as-is
    bool hide_reasoning = false;     // --hide-reasoning
    std::vector<std::string> stops;  // --stop, any number

    // Registers the flags on `strata run`.
    void add(CLI::App* cmd);
};

// What `strata run` passes on when --chat is given.
struct ChatRequest {
    std::string model;
    std::string prompt;                // -p: answer this one turn and exit
    std::string prompt_file;           // -f: the same, read from a file
    bool tokens_given = false;         // --tokens, which a chat cannot take
    std::optional<int64_t> n_predict;  // -n when given: the limit per answer
    SessionOptions session;
    std::string routing_profile;              // written when the chat ends (empty: not written)
    const SamplingFlags* sampling = nullptr;  // never null
};

// Runs the chat: one answer with -p/-f, else the interactive session. Throws UsageError for
// flags that do not go together, strata::Error for the rest.
void run_chat(const ChatFlags& flags, const ChatRequest& request);

}  // namespace strata::cli
