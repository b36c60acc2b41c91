// strata tokenize: a model's token ids (and their pieces) for a text or a file.
//   strata tokenize -m MODEL (--text T | -f FILE) [--json] [--no-bos] [--no-special]
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "runtime/cli/commands.h"
#include "runtime/cli/default_model.h"
#include "runtime/error.h"
#include "runtime/gguf.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/utf8.h"

namespace strata::cli {

namespace {

struct TokenizeOptions {
    std::string model;
    std::string text;
    std::string file;
    bool json = false;
    bool no_bos = false;
    bool no_special = false;
};

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("{}: cannot open for reading", path);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail("{}: read error", path);
    return bytes;
}

// A piece for a terminal: printable text as it is; control characters and bytes that are not
// (complete) UTF-8 as C-style escapes, so that every byte of the piece is visible.
std::string escape_piece(std::string_view piece) {
    std::string out;
    for (size_t i = 0; i < piece.size();) {
        const tokenizer::Utf8Sequence seq = tokenizer::decode_utf8(piece, i);
        const auto b = static_cast<uint8_t>(piece[i]);
        if (seq.status != tokenizer::Utf8Sequence::kValid) {
            out += fmt::format("\\x{:02x}", b);
            ++i;
            continue;
        }
        switch (seq.cp) {
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\'':
                out += "\\'";
                break;
            default:
                if (seq.cp < 0x20 || seq.cp == 0x7F)
                    out += fmt::format("\\x{:02x}", b);
                else
                    out.append(piece.substr(i, seq.len));
        }
        i += seq.len;
    }
    return out;
}

void run_tokenize(const TokenizeOptions& opt, bool from_file) {
    const std::string input = from_file ? read_bytes(opt.file) : opt.text;

    const gguf::File file = gguf::File::open(opt.model);
    const auto tok = tokenizer::Tokenizer::load(file);
    const std::vector<int32_t> ids = tok.encode(input, !opt.no_bos, !opt.no_special);

    if (opt.json) {
        auto pieces = nlohmann::json::array();
        for (const int32_t id : ids)
            pieces.push_back(std::string(tok.piece(id, tokenizer::Control::kRender)));
        const nlohmann::json out = {{"ids", ids}, {"pieces", std::move(pieces)}};
        // A piece can be part of a UTF-8 character (a byte token); JSON strings cannot, so such
        // bytes are written as U+FFFD there. The ids are exact.
        fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        fmt::print(stderr, "{} tokens\n", ids.size());
        return;
    }
    for (const int32_t id : ids)
        fmt::print("{:>7} -> '{}'\n", id, escape_piece(tok.piece(id, tokenizer::Control::kRender)));
    fmt::print("{} tokens\n", ids.size());
}

}  // namespace

void add_tokenize(CLI::App& app) {
    auto* cmd = app.add_subcommand("tokenize", "Show the token ids (and pieces) of a text");
    static TokenizeOptions opt;
    add_model_option(cmd, opt.model, "GGUF model or vocab-only file");
    auto* text = cmd->add_option("--text", opt.text, "the text to tokenize");
    auto* file =
        cmd->add_option("-f,--file", opt.file, "read the text from FILE (bytes as they are)");
    text->excludes(file);
    cmd->add_flag("--json", opt.json, "print one JSON object {\"ids\": [...], \"pieces\": [...]}");
    cmd->add_flag("--no-bos", opt.no_bos, "do not add BOS (or EOS) even where the model does");
    cmd->add_flag("--no-special", opt.no_special,
                  "tokenize control tokens written in the text as plain text");
    cmd->callback([text, file] {
        if (text->count() + file->count() != 1)
            throw UsageError("tokenize: give the text with exactly one of --text and -f/--file");
        use_default_model(opt.model);
        run_tokenize(opt, file->count() > 0);
    });
}

}  // namespace strata::cli
