#include "runtime/tokenizer/tokenizer.h"

#include <array>
#include <limits>
#include <unordered_map>

#include "runtime/error.h"
#include "runtime/tokenizer/added_tokens.h"
#include "runtime/tokenizer/bpe.h"
#include "runtime/tokenizer/byte_level.h"
#include "runtime/tokenizer/pretokenizer.h"
#include "runtime/tokenizer/unicode.h"
#include "runtime/tokenizer/utf8.h"

namespace strata::tokenizer {

// Everything a loaded tokenizer knows. Built once in place (the maps hold views into the pools,
// so it never moves) and shared read-only by copies of the Tokenizer.
struct Tokenizer::Data {
    std::string pre_name;
    PreTokenizerSpec spec;

    // Token i's stored text is text_pool[text_offsets[i], text_offsets[i + 1]); its bytes the same
    // range of bytes_pool.
    std::string text_pool;              // (Σ token text lengths)
    std::vector<size_t> text_offsets;   // (n_vocab + 1)
    std::string bytes_pool;             // (Σ token byte lengths)
    std::vector<size_t> bytes_offsets;  // (n_vocab + 1)
    std::vector<TokenType> types;       // (n_vocab)

    std::unordered_map<std::string_view, int32_t> by_text;  // stored text → first id with it
    // Bytes → id of NORMAL tokens, for the whole-piece lookup of ignore_merges (Llama 3 only).
    std::unordered_map<std::string_view, int32_t> by_bytes;
    std::array<int32_t, 256> byte_tokens{};
    Bpe bpe;
    AddedTokenMatcher added;

    std::vector<int32_t> eog;  // (a handful of ids)
    int32_t bos = -1;
    int32_t eos = -1;
    int32_t pad = -1;
    bool add_bos = false;
    bool add_eos = false;

    int32_t n_vocab() const { return static_cast<int32_t>(types.size()); }
    std::string_view text(int32_t id) const {
        const auto i = static_cast<size_t>(id);
        return std::string_view(text_pool).substr(text_offsets[i],
                                                  text_offsets[i + 1] - text_offsets[i]);
    }
    std::string_view bytes(int32_t id) const {
        const auto i = static_cast<size_t>(id);
        return std::string_view(bytes_pool)
            .substr(bytes_offsets[i], bytes_offsets[i + 1] - bytes_offsets[i]);
    }
};

namespace {

constexpr std::string_view kKeyModel = "tokenizer.ggml.model";
constexpr std::string_view kKeyPre = "tokenizer.ggml.pre";
constexpr std::string_view kKeyTokens = "tokenizer.ggml.tokens";
constexpr std::string_view kKeyTypes = "tokenizer.ggml.token_type";
constexpr std::string_view kKeyMerges = "tokenizer.ggml.merges";

// Control tokens that end a turn in the supported families, besides the file's EOS/EOT/EOM ids
// (llama.cpp recognizes the same texts).
constexpr std::array<std::string_view, 6> kEndOfGenerationTexts = {
    "<|eot_id|>", "<|eom_id|>",    "<|end_of_text|>",
    "<|im_end|>", "<|endoftext|>", "<｜end▁of▁sentence｜>",
};

// An optional token id key, checked against the vocabulary; -1 when absent.
int32_t optional_id(const gguf::File& file, std::string_view key, int32_t n_vocab) {
    if (!file.has(key)) return -1;
    const int64_t id = file.get_i64(key);
    if (id < 0 || id >= n_vocab)
        fail("{}: {}: token id {} is outside the vocabulary [0, {})", file.path(), key, id,
             n_vocab);
    return static_cast<int32_t>(id);
}

void load_vocabulary(const gguf::File& file, Tokenizer::Data& d) {
    const auto& tokens = file.get_str_array(kKeyTokens);
    if (tokens.empty()) fail("{}: {} is empty", file.path(), kKeyTokens);
    if (tokens.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
        fail("{}: {} has {} tokens; at most 2^31 - 1 are supported", file.path(), kKeyTokens,
             tokens.size());
    const size_t n = tokens.size();

    d.types.assign(n, TokenType::kNormal);
    if (file.has(kKeyTypes)) {
        const std::vector<int32_t> types = file.get_i32_array(kKeyTypes);
        if (types.size() != n)
            fail("{}: {} has {} entries, expected one per token ({})", file.path(), kKeyTypes,
                 types.size(), n);
        for (size_t i = 0; i < n; ++i) {
            if (types[i] < 0 || types[i] > static_cast<int32_t>(TokenType::kByte))
                fail("{}: {}[{}] = {}: expected a token type 0..6", file.path(), kKeyTypes, i,
                     types[i]);
            d.types[i] = static_cast<TokenType>(types[i]);
        }
    }

    d.text_offsets.assign(n + 1, 0);
    d.bytes_offsets.assign(n + 1, 0);
    std::string bytes;
    for (size_t i = 0; i < n; ++i) {
        d.text_pool.append(tokens[i]);
        d.text_offsets[i + 1] = d.text_pool.size();
        // Ordinary tokens are spelled in the byte-level alphabet; added and control tokens hold
        // their text as it is. A spelling outside the alphabet is kept verbatim too.
        const bool spelled = d.types[i] == TokenType::kNormal || d.types[i] == TokenType::kByte ||
                             d.types[i] == TokenType::kUndefined;
        if (spelled && byte_level_decode(tokens[i], bytes))
            d.bytes_pool.append(bytes);
        else
            d.bytes_pool.append(tokens[i]);
        d.bytes_offsets[i + 1] = d.bytes_pool.size();
    }

    d.by_text.reserve(n);
    for (int32_t id = 0; id < d.n_vocab(); ++id) d.by_text.emplace(d.text(id), id);

    std::string spelling;
    for (uint32_t b = 0; b < 256; ++b) {
        spelling.clear();
        append_utf8(spelling, byte_to_code_point(static_cast<uint8_t>(b)));
        const auto it = d.by_text.find(spelling);
        if (it == d.by_text.end())
            fail("{}: {}: no token for byte 0x{:02X} (\"{}\"); byte-level BPE needs all 256",
                 file.path(), kKeyTokens, b, spelling);
        d.byte_tokens[b] = it->second;
    }
}

void load_merges(const gguf::File& file, Tokenizer::Data& d) {
    const auto& merges = file.get_str_array(kKeyMerges);
    std::vector<Merge> table;
    table.reserve(merges.size());
    std::string joined;
    const auto lookup = [&](size_t i, std::string_view token) {
        const auto it = d.by_text.find(token);
        if (it == d.by_text.end())
            fail("{}: {}[{}] = \"{}\": \"{}\" is not a token of the vocabulary", file.path(),
                 kKeyMerges, i, merges[i], token);
        return it->second;
    };
    for (size_t i = 0; i < merges.size(); ++i) {
        const std::string_view m = merges[i];
        // Split at the first space after the first character, as llama.cpp does.
        const size_t space = m.find(' ', 1);
        if (space == std::string_view::npos || space + 1 == m.size())
            fail("{}: {}[{}] = \"{}\": expected two tokens separated by a space", file.path(),
                 kKeyMerges, i, m);
        const std::string_view left = m.substr(0, space);
        const std::string_view right = m.substr(space + 1);
        joined.assign(left).append(right);
        table.push_back({lookup(i, left), lookup(i, right), lookup(i, joined)});
    }
    d.bpe = Bpe(d.byte_tokens, table);
}

void load_special(const gguf::File& file, Tokenizer::Data& d) {
    const int32_t n = d.n_vocab();
    d.bos = optional_id(file, "tokenizer.ggml.bos_token_id", n);
    d.eos = optional_id(file, "tokenizer.ggml.eos_token_id", n);
    d.pad = optional_id(file, "tokenizer.ggml.padding_token_id", n);
    // llama.cpp adds BOS for Llama 3 vocabularies that do not say otherwise.
    const bool llama3 = d.spec.kind == PreTokenizer::kLlama3;
    d.add_bos = file.get_bool_or("tokenizer.ggml.add_bos_token", llama3);
    d.add_eos = file.get_bool_or("tokenizer.ggml.add_eos_token", false);

    for (const int32_t id : {d.eos, optional_id(file, "tokenizer.ggml.eot_token_id", n),
                             optional_id(file, "tokenizer.ggml.eom_token_id", n)})
        if (id >= 0) d.eog.push_back(id);
    for (int32_t id = 0; id < n; ++id) {
        const TokenType type = d.types[static_cast<size_t>(id)];
        if (type != TokenType::kControl && type != TokenType::kUserDefined) continue;
        d.added.add(d.text(id), id, type == TokenType::kControl);
        if (type != TokenType::kControl) continue;
        for (const std::string_view end : kEndOfGenerationTexts)
            if (d.text(id) == end) d.eog.push_back(id);
    }

    if (d.spec.ignore_merges) {
        d.by_bytes.reserve(static_cast<size_t>(n));
        for (int32_t id = 0; id < n; ++id)
            if (d.types[static_cast<size_t>(id)] == TokenType::kNormal)
                d.by_bytes.emplace(d.bytes(id), id);
    }
}

// Reused buffers of one encode call.
struct EncodeScratch {
    std::string normalized;
    std::vector<CodePoint> code_points;  // (section code points + 1)
    std::vector<Piece> pieces;
    BpeScratch bpe;
};

// Text without added tokens: normalization, pre-tokenizer pieces, BPE of each piece.
void encode_ordinary(const Tokenizer::Data& d, std::string_view text, std::vector<int32_t>& out,
                     EncodeScratch& s) {
    if (text.empty()) return;
    if (d.spec.nfc) {
        s.normalized = nfc(text);
        text = s.normalized;
    }
    s.pieces.clear();
    pre_tokenize(d.spec.kind, text, s.code_points, s.pieces);
    for (const Piece& p : s.pieces) {
        const std::string_view piece = text.substr(p.begin, p.end - p.begin);
        if (d.spec.ignore_merges) {
            const auto it = d.by_bytes.find(piece);
            if (it != d.by_bytes.end()) {
                out.push_back(it->second);
                continue;
            }
        }
        d.bpe.encode(piece, out, s.bpe);
    }
}

}  // namespace

Tokenizer Tokenizer::load(const gguf::File& file) {
    const std::string_view model = file.get_str_or(kKeyModel, "");
    if (model != "gpt2")
        fail("{}: {} is \"{}\"; only \"gpt2\" (byte-level BPE) is supported", file.path(),
             kKeyModel, model);
    if (!file.has(kKeyPre))
        fail("{}: {} is missing; expected one of deepseek-v3, llama-bpe, qwen2, deepseek-r1-qwen",
             file.path(), kKeyPre);

    auto d = std::make_shared<Data>();
    d->pre_name = file.get_str(kKeyPre);
    d->spec = pre_tokenizer_from_name(d->pre_name);
    load_vocabulary(file, *d);
    load_merges(file, *d);
    load_special(file, *d);
    return Tokenizer(std::move(d));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
    // BPE indexes symbols of a piece with int32_t.
    if (text.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
        fail("text of {} bytes is too long to tokenize (at most 2^31 - 1)", text.size());
    const Data& data = d();
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 2);
    if (add_special && data.add_bos && data.bos >= 0) out.push_back(data.bos);
    EncodeScratch scratch;
    for (size_t pos = 0;;) {
        const AddedTokenMatcher::Match m = data.added.find(text, pos, parse_special);
        encode_ordinary(data, text.substr(pos, m.pos - pos), out, scratch);
        if (m.len == 0) break;
        out.push_back(m.id);
        pos = m.pos + m.len;
    }
    if (add_special && data.add_eos && data.eos >= 0) out.push_back(data.eos);
    return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, Control control) const {
    std::string out;
    for (const int32_t id : ids) out.append(piece(id, control));
    return out;
}

std::string_view Tokenizer::piece(int32_t id, Control control) const {
    check_id(id);
    const TokenType type = d().types[static_cast<size_t>(id)];
    const bool hidden =
        type == TokenType::kControl || type == TokenType::kUnused || type == TokenType::kUnknown;
    return hidden && control == Control::kSkip ? std::string_view() : d().bytes(id);
}

void Tokenizer::check_id(int32_t id) const {
    if (id < 0 || id >= d().n_vocab())
        fail("token id {} is outside the vocabulary [0, {})", id, d().n_vocab());
}

int64_t Tokenizer::n_vocab() const {
    return d().n_vocab();
}

std::string_view Tokenizer::token_text(int32_t id) const {
    check_id(id);
    return d().text(id);
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
    check_id(id);
    return d().bytes(id);
}

TokenType Tokenizer::token_type(int32_t id) const {
    check_id(id);
    return d().types[static_cast<size_t>(id)];
}

bool Tokenizer::is_eog(int32_t id) const {
    for (const int32_t e : d().eog)
        if (e == id) return true;
    return false;
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
    const auto it = d().by_text.find(text);
    if (it == d().by_text.end()) return std::nullopt;
    return it->second;
}

int32_t Tokenizer::byte_token(uint8_t b) const {
    return d().byte_tokens[b];
}
int32_t Tokenizer::bos() const {
    return d().bos;
}
int32_t Tokenizer::eos() const {
    return d().eos;
}
int32_t Tokenizer::pad() const {
    return d().pad;
}
bool Tokenizer::add_bos() const {
    return d().add_bos;
}
bool Tokenizer::add_eos() const {
    return d().add_eos;
}
std::string_view Tokenizer::pre() const {
    return d().pre_name;
}

}  // namespace strata::tokenizer
