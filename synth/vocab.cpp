// Synthetic byte-level BPE vocabularies.
#include "synth/vocab.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_set>

#include <fmt/format.h>

#include "runtime/error.h"
#include "synth/templates.h"

namespace strata::synth {
namespace {

// Merges are learned on this text: ordinary English, so that common words become single tokens
// and prompts tokenize into a realistic mix of whole words and pieces.
constexpr std::string_view kTrainingText =
    "The river runs past the old mill and under the stone bridge before it reaches the town. "
    "Every morning the baker opens her shop at six, and the smell of fresh bread drifts along "
    "the street while the first buses start their routes. Children walk to school in small "
    "groups, talking about the games they played the evening before. Some of them stop at the "
    "corner store to buy a pencil or a piece of fruit. The teacher writes the date on the board "
    "and asks the class what they remember from the last lesson. A few hands go up at once. "
    "Outside, the weather changes quickly: clouds gather over the hills, the wind turns cold, "
    "and a light rain begins to fall on the roofs and the gardens. In the library a student "
    "reads about the history of the region, how the first settlers built their houses near the "
    "water, how the railway arrived and changed the way people lived and worked. She takes "
    "notes in a small notebook, writing the names of places and the years when important "
    "things happened. Later she will explain what she learned to her friends, who are more "
    "interested in music and sport than in history. At noon the market square is full of "
    "people. Farmers sell vegetables, cheese and honey; a man plays the violin near the "
    "fountain; tourists take pictures of the church and the clock tower. The clock strikes "
    "twelve and the pigeons rise into the air all together. In an office above the square an "
    "engineer is testing a new program. She runs the tests again and again, reading the results "
    "on the screen and changing a line of code each time something fails. When everything "
    "finally works she writes a short report, saves her files and looks out of the window at the "
    "crowd below. The afternoon is quiet. Old men play cards under the trees, and a dog sleeps "
    "in the shade of a parked car. In the evening the lights come on one by one, the restaurants "
    "fill with families and friends, and the conversation turns to plans for the weekend. "
    "Someone suggests a walk in the forest, someone else prefers to stay at home and read a "
    "good book. Later, when the streets are empty again, the river keeps running under the "
    "bridge, carrying leaves and small branches toward the sea, as it has done for thousands of "
    "years and will do for thousands more. Numbers such as 2024, 365 and 1000 appear in the "
    "notes too, together with questions: what, when, where, why and how?\n";

std::string utf8(uint32_t cp) {
    std::string s;
    if (cp < 0x80) {
        s += static_cast<char>(cp);
    } else if (cp < 0x800) {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        s += static_cast<char>(0xE0 | (cp >> 12));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves; the others take
// U+0100 onwards in byte order. Returns the code point of every byte.
std::vector<uint32_t> byte_code_points() {
    std::vector<uint32_t> cp(256, 0);
    std::vector<bool> printable(256, false);
    for (int b = 0x21; b <= 0x7E; ++b) printable[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) cp[b] = printable[b] ? static_cast<uint32_t>(b) : next++;
    return cp;
}

// Words as GPT-2's pre-tokenizer cuts them, roughly: a run of letters, digits or other symbols
// with the space before it attached. Each word is a list of byte-level symbols.
std::vector<std::vector<std::string>> split_words(std::string_view text) {
    const std::vector<uint32_t> cp = byte_code_points();
    auto kind = [](unsigned char c) {
        if (std::isalpha(c)) return 0;
        if (std::isdigit(c)) return 1;
        if (std::isspace(c)) return 2;
        return 3;
    };
    std::vector<std::vector<std::string>> words;
    size_t i = 0;
    while (i < text.size()) {
        std::vector<std::string> word;
        size_t j = i;
        if (text[j] == ' ' && j + 1 < text.size() && kind(text[j + 1]) != 2) {
            word.push_back(utf8(cp[' ']));
            ++j;
        }
        const int k = kind(static_cast<unsigned char>(text[j]));
        while (j < text.size() && kind(static_cast<unsigned char>(text[j])) == k) {
            word.push_back(utf8(cp[static_cast<unsigned char>(text[j])]));
            ++j;
            if (k == 2) break;  // whitespace one character at a time
        }
        words.push_back(std::move(word));
        i = j;
    }
    return words;
}

struct SpecialToken {
    std::string_view text;
    TokenType type;
};

// Special tokens of each family: the ones placed at the front of the vocabulary, and the ones
// placed at its end.
struct Family {
    std::vector<SpecialToken> front, back;
    std::string_view bos, eos;
    std::optional<std::string_view> pad;
    bool add_bos;
    bool writes_add_eos;
};

const Family& family(Arch arch) {
    static const Family kDeepSeek{
        {{"<｜begin▁of▁sentence｜>", TokenType::Control},
         {"<｜end▁of▁sentence｜>", TokenType::Control}},
        {{"<｜User｜>", TokenType::Control},
         {"<｜Assistant｜>", TokenType::Control},
         {"<think>", TokenType::UserDefined},
         {"</think>", TokenType::UserDefined}},
        "<｜begin▁of▁sentence｜>",
        "<｜end▁of▁sentence｜>",
        "<｜end▁of▁sentence｜>",
        true,
        true,
    };
    static const Family kLlama{
        {},
        {{"<|begin_of_text|>", TokenType::Control},
         {"<|end_of_text|>", TokenType::Control},
         {"<|start_header_id|>", TokenType::Control},
         {"<|end_header_id|>", TokenType::Control},
         {"<|eot_id|>", TokenType::Control}},
        "<|begin_of_text|>",
        "<|eot_id|>",
        std::nullopt,
        true,
        false,
    };
    static const Family kQwen2{
        {},
        {{"<|endoftext|>", TokenType::Control},
         {"<|im_start|>", TokenType::Control},
         {"<|im_end|>", TokenType::Control}},
        "<|endoftext|>",
        "<|im_end|>",
        "<|endoftext|>",
        false,
        false,
    };
    switch (arch) {
        case Arch::Llama:
            return kLlama;
        case Arch::Qwen2:
            return kQwen2;
        case Arch::DeepSeek2:
            break;
    }
    return kDeepSeek;
}

}  // namespace

int64_t min_vocab(Arch arch) {
    const Family& f = family(arch);
    return 256 + static_cast<int64_t>(f.front.size() + f.back.size());
}

std::vector<std::string> byte_tokens() {
    // Vocabulary order is the order of bytes_to_unicode's list: the printable bytes, then the
    // others, each group in byte order.
    const std::vector<uint32_t> cp = byte_code_points();
    std::vector<std::string> out;
    for (int pass = 0; pass < 2; ++pass) {
        for (int b = 0; b < 256; ++b) {
            const bool printable = cp[b] == static_cast<uint32_t>(b);
            if (printable == (pass == 0)) out.push_back(utf8(cp[b]));
        }
    }
    return out;
}

std::vector<std::string> learn_merges(std::string_view text, size_t max_merges) {
    // Distinct words with their counts; each word a sequence of symbols.
    std::map<std::vector<std::string>, int64_t> counted;
    for (auto& w : split_words(text)) ++counted[w];
    std::vector<std::pair<std::vector<std::string>, int64_t>> words(counted.begin(), counted.end());

    std::vector<std::string> merges;
    while (merges.size() < max_merges) {
        std::map<std::pair<std::string, std::string>, int64_t> pairs;
        for (const auto& [symbols, n] : words)
            for (size_t i = 0; i + 1 < symbols.size(); ++i)
                pairs[{symbols[i], symbols[i + 1]}] += n;
        if (pairs.empty()) break;
        // The most frequent pair; std::map order breaks ties by spelling.
        auto best = pairs.begin();
        for (auto it = pairs.begin(); it != pairs.end(); ++it)
            if (it->second > best->second) best = it;
        const auto [a, b] = best->first;
        merges.push_back(a + " " + b);
        for (auto& [symbols, n] : words) {
            std::vector<std::string> merged;
            for (size_t i = 0; i < symbols.size(); ++i) {
                if (i + 1 < symbols.size() && symbols[i] == a && symbols[i + 1] == b) {
                    merged.push_back(a + b);
                    ++i;
                } else {
                    merged.push_back(symbols[i]);
                }
            }
            symbols = std::move(merged);
        }
    }
    return merges;
}

Vocab make_vocab(Arch arch, int64_t n_vocab) {
    const Family& f = family(arch);
    if (n_vocab < min_vocab(arch)) {
        throw UsageError(fmt::format("--vocab {} is too small for the {} tokenizer (at least {})",
                                     n_vocab, arch_name(arch), min_vocab(arch)));
    }
    Vocab v;
    auto add = [&](std::string token, TokenType type) {
        v.tokens.push_back(std::move(token));
        v.types.push_back(static_cast<int32_t>(type));
    };
    for (const SpecialToken& t : f.front) add(std::string(t.text), t.type);
    for (std::string& t : byte_tokens()) add(std::move(t), TokenType::Normal);

    // Merges fill the room left between the bytes and the trailing special tokens. A merge whose
    // result is already a token (reached by another split) adds no token.
    const size_t room = static_cast<size_t>(n_vocab) - v.tokens.size() - f.back.size();
    std::unordered_set<std::string> known(v.tokens.begin(), v.tokens.end());
    size_t added = 0;
    for (std::string& merge : learn_merges(kTrainingText, room * 2)) {
        if (added == room) break;
        const size_t space = merge.find(' ');
        std::string token = merge.substr(0, space) + merge.substr(space + 1);
        v.merges.push_back(std::move(merge));
        if (known.insert(token).second) {
            add(std::move(token), TokenType::Normal);
            ++added;
        }
    }
    while (v.tokens.size() + f.back.size() < static_cast<size_t>(n_vocab))
        add(fmt::format("[PAD{}]", v.tokens.size()), TokenType::Unused);
    for (const SpecialToken& t : f.back) add(std::string(t.text), t.type);

    auto id_of = [&](std::string_view text) {
        return static_cast<int64_t>(std::find(v.tokens.begin(), v.tokens.end(), text) -
                                    v.tokens.begin());
    };
    v.bos = id_of(f.bos);
    v.eos = id_of(f.eos);
    if (f.pad) v.pad = id_of(*f.pad);
    v.add_bos = f.add_bos;
    if (f.writes_add_eos) v.add_eos = false;
    v.chat_template = std::string(chat_template(arch));
    return v;
}

void write_tokenizer(gguf::Writer& out, const Spec& spec) {
    out.set_str("tokenizer.ggml.model", "gpt2");
    out.set_str("tokenizer.ggml.pre", spec.pre);
    if (spec.reduced_tokenizer) {
        out.set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(spec.bos));
        out.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(spec.eos));
        return;
    }
    Vocab v = make_vocab(spec.hp.arch, spec.hp.n_vocab);
    out.set_str_array("tokenizer.ggml.tokens", std::move(v.tokens));
    out.set_i32_array("tokenizer.ggml.token_type", v.types);
    out.set_str_array("tokenizer.ggml.merges", std::move(v.merges));
    out.set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos));
    out.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos));
    if (v.pad) out.set_u32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(*v.pad));
    out.set_bool("tokenizer.ggml.add_bos_token", v.add_bos);
    if (v.add_eos) out.set_bool("tokenizer.ggml.add_eos_token", *v.add_eos);
    out.set_str("tokenizer.chat_template", std::move(v.chat_template));
}

}  // namespace strata::synth
