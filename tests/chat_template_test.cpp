// Chat templates: hand-worked renderings of each family, random conversations rendered by the
// families' own Jinja templates with Jinja2 (tests/oracle/chat_template.py, as Hugging Face's
// apply_chat_template does), the R1 system-prompt folding, and family detection from files.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "runtime/chat/conversation.h"
#include "runtime/chat/detect.h"
#include "runtime/chat/template.h"
#include "runtime/error.h"
#include "tests/chat_test_util.h"
#include "tests/tokenizer_test_util.h"

namespace strata::chat {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDsBos = "<｜begin▁of▁sentence｜>";
constexpr std::string_view kLlamaBos = "<|begin_of_text|>";

std::vector<Message> conversation(std::initializer_list<std::pair<Role, std::string>> turns) {
    std::vector<Message> out;
    for (const auto& [role, text] : turns) out.push_back({role, text});
    return out;
}

const auto kSys = Role::kSystem;
const auto kUser = Role::kUser;
const auto kAsst = Role::kAssistant;

// ---------------------------------------------------------------------------------------------
// Hand-worked renderings, written from the Jinja templates by reading them.

TEST(ChatTemplate, DeepSeekR1DropsEarlierReasoningAndOpensThink) {
    const ChatTemplate t(Family::kDeepSeekR1, std::string(kDsBos));
    const auto msgs = conversation({{kSys, "Be brief."},
                                    {kUser, "2+2?"},
                                    {kAsst, "<think>\nadd them\n</think>\n\n4"},
                                    {kUser, "and 3+3?"}});
    EXPECT_EQ(t.render(msgs, true),
              "<｜begin▁of▁sentence｜>Be brief.<｜User｜>2+2?<｜Assistant｜>\n\n4"
              "<｜end▁of▁sentence｜><｜User｜>and 3+3?<｜Assistant｜><think>\n");
    EXPECT_EQ(t.render(msgs, false),
              "<｜begin▁of▁sentence｜>Be brief.<｜User｜>2+2?<｜Assistant｜>\n\n4"
              "<｜end▁of▁sentence｜><｜User｜>and 3+3?");
    EXPECT_TRUE(t.opens_reasoning());
    EXPECT_TRUE(t.prefers_system_in_user_turn());
}

TEST(ChatTemplate, DeepSeekR1KeepsTheLastSystemPromptAndTheTextAfterTheLastCloseTag) {
    const ChatTemplate t(Family::kDeepSeekR1, "<s>");
    const auto msgs =
        conversation({{kSys, "one"}, {kUser, "u"}, {kSys, "two"}, {kAsst, "a</think>b</think>c"}});
    EXPECT_EQ(t.render(msgs, false), "<s>two<｜User｜>u<｜Assistant｜>c<｜end▁of▁sentence｜>");
    // An answer without reasoning stays whole.
    EXPECT_EQ(t.render(conversation({{kUser, "u"}, {kAsst, " plain "}}), false),
              "<s><｜User｜>u<｜Assistant｜> plain <｜end▁of▁sentence｜>");
}

TEST(ChatTemplate, DeepSeekV3JoinsSystemPromptsAndKeepsAnswersWhole) {
    const ChatTemplate t(Family::kDeepSeekV3, std::string(kDsBos));
    const auto msgs = conversation(
        {{kSys, "one"}, {kUser, "u"}, {kSys, "two"}, {kAsst, "<think>r</think>a"}, {kUser, "v"}});
    EXPECT_EQ(t.render(msgs, true),
              "<｜begin▁of▁sentence｜>one\n\ntwo<｜User｜>u<｜Assistant｜><think>r</think>a"
              "<｜end▁of▁sentence｜><｜User｜>v<｜Assistant｜>");
    EXPECT_FALSE(t.opens_reasoning());
    EXPECT_FALSE(t.prefers_system_in_user_turn());
}

TEST(ChatTemplate, Llama3TrimsContentAndWritesBosBeforeTheFirstMessageOnly) {
    const ChatTemplate t(Family::kLlama3, std::string(kLlamaBos));
    const auto msgs = conversation({{kSys, "  sys\n"},
                                    {kUser, "\thi there \n\n"},
                                    {kAsst, "hello"},
                                    {kUser, "\xE3\x80\x80q"}});
    EXPECT_EQ(t.render(msgs, true),
              "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nsys<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nhi there<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\nhello<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nq<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n");
    // No message, no BOS (the template writes it with the first message).
    EXPECT_EQ(t.render({}, true), "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama3TrimIsPythonStrip) {
    // Python's str.isspace() set, at both ends: U+001C..U+001F, U+0085, U+00A0, U+1680,
    // U+2000..U+200A, U+2028/9, U+202F, U+205F, U+3000; not U+200B or U+FEFF.
    const ChatTemplate t(Family::kLlama3);
    const auto body = [&](std::string content) {
        const std::string s = t.render(conversation({{kUser, content}}), false);
        const std::string head = "<|start_header_id|>user<|end_header_id|>\n\n";
        return s.substr(head.size(), s.size() - head.size() - std::string("<|eot_id|>").size());
    };
    EXPECT_EQ(body("\x1c\x1f\xC2\x85\xC2\xA0x y\xE1\x9A\x80\xE2\x80\x8A\xE2\x80\xA8\xE2\x80\xAF"
                   "\xE2\x81\x9F\xE3\x80\x80"),
              "x y");
    EXPECT_EQ(body("\xE2\x80\x8Bx\xEF\xBB\xBF"), "\xE2\x80\x8Bx\xEF\xBB\xBF");
    EXPECT_EQ(body(" \n "), "");
    EXPECT_EQ(body("é "), "é");
}

TEST(ChatTemplate, ChatMLDropsReasoningBeforeTheLastQueryOnly) {
    const ChatTemplate t(Family::kChatML);
    const auto msgs = conversation({{kSys, "S"},
                                    {kUser, "q1"},
                                    {kAsst, "<think>\nr1\n</think>\n\na1"},
                                    {kUser, "q2"},
                                    {kAsst, "\n<think>\n\nr2\n</think>\n\n\na2"}});
    EXPECT_EQ(t.render(msgs, false),
              "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nq1<|im_end|>\n"
              "<|im_start|>assistant\na1<|im_end|>\n<|im_start|>user\nq2<|im_end|>\n"
              "<|im_start|>assistant\n<think>\nr2\n</think>\n\na2<|im_end|>\n");
    const auto chat = conversation({{kUser, "q1"}, {kAsst, "a1"}, {kUser, "q2"}});
    EXPECT_EQ(t.render(chat, true),
              "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n"
              "<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n");
    EXPECT_FALSE(t.opens_reasoning());
}

TEST(ChatTemplate, ChatMLWritesItsDefaultSystemPromptWhenThereIsNone) {
    const ChatTemplate t(Family::kChatML, "", "You are Q.");
    EXPECT_EQ(t.render(conversation({{kUser, "hi"}}), true),
              "<|im_start|>system\nYou are Q.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
              "<|im_start|>assistant\n");
    EXPECT_EQ(t.render(conversation({{kSys, "Mine."}, {kUser, "hi"}}), false),
              "<|im_start|>system\nMine.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n");
}

TEST(ChatTemplate, FoldSystemIntoUser) {
    const auto folded = fold_system_into_user(
        conversation({{kSys, "A"}, {kUser, "u1"}, {kAsst, "a"}, {kSys, "B"}, {kUser, "u2"}}));
    ASSERT_EQ(folded.size(), 3u);
    EXPECT_EQ(folded[0].role, Role::kUser);
    EXPECT_EQ(folded[0].content, "A\n\nB\n\nu1");
    EXPECT_EQ(folded[1].content, "a");
    EXPECT_EQ(folded[2].content, "u2");
    // Nothing to fold: unchanged; no user turn: the system text becomes one.
    EXPECT_EQ(fold_system_into_user(conversation({{kUser, "u"}}))[0].content, "u");
    const auto alone = fold_system_into_user(conversation({{kSys, "S"}}));
    ASSERT_EQ(alone.size(), 1u);
    EXPECT_EQ(alone[0].role, Role::kUser);
    EXPECT_EQ(alone[0].content, "S");
}

TEST(ChatTemplate, ConversationFoldsTheSystemPromptForR1UnlessAsked) {
    const ChatTemplate r1(Family::kDeepSeekR1, "<s>");
    Conversation folded(r1, "Think in French.", false);
    folded.add_user("hi");
    EXPECT_EQ(folded.prompt(), "<s><｜User｜>Think in French.\n\nhi<｜Assistant｜><think>\n");
    Conversation as_is(r1, "Think in French.", true);
    as_is.add_user("hi");
    EXPECT_EQ(as_is.prompt(), "<s>Think in French.<｜User｜>hi<｜Assistant｜><think>\n");
    // Other families keep a system prompt where their template puts it.
    Conversation llama(ChatTemplate(Family::kLlama3), "S", false);
    llama.add_user("hi");
    EXPECT_EQ(llama.prompt(),
              "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n");
    // Turns accumulate; clear() keeps the system prompt.
    folded.add_assistant("<think>\nhm\n</think>\n\nsalut");
    folded.add_user("again");
    EXPECT_EQ(folded.prompt(),
              "<s><｜User｜>Think in French.\n\nhi<｜Assistant｜>\n\nsalut<｜end▁of▁sentence｜>"
              "<｜User｜>again<｜Assistant｜><think>\n");
    folded.clear();
    EXPECT_EQ(folded.n_turns(), 0u);
    folded.add_user("x");
    EXPECT_EQ(folded.prompt(), "<s><｜User｜>Think in French.\n\nx<｜Assistant｜><think>\n");
}

TEST(ChatTemplate, FamilyNames) {
    for (Family f : {Family::kDeepSeekR1, Family::kDeepSeekV3, Family::kLlama3, Family::kChatML})
        EXPECT_EQ(parse_family(family_name(f)), f);
    EXPECT_EQ(family_names(), "deepseek-r1, deepseek-v3, llama3, chatml");
    try {
        parse_family("vicuna");
        FAIL() << "no error";
    } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("'vicuna'"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("deepseek-r1, deepseek-v3"), std::string::npos);
    }
}

// ---------------------------------------------------------------------------------------------
// Random conversations against the Jinja templates.

fs::path oracle_dir() {
    return fs::path(STRATA_SOURCE_DIR) / "tests" / "oracle";
}

// A Python with Jinja2 (the machine's python3, or Debian's with python3-jinja2), or "".
std::string find_python() {
    for (const char* python : {"python3", "/usr/bin/python3"}) {
        const std::string cmd = std::string(python) + " -c 'import jinja2' >/dev/null 2>&1";
        if (std::system(cmd.c_str()) == 0) return python;
    }
    return {};
}

// Texts with what templates treat specially: whitespace at the ends (trim, lstrip('\n')),
// think tags in every role and count, tool-response wrappers (Qwen3's last-query rule), and
// non-ASCII text.
class RandomConversation {
  public:
    explicit RandomConversation(uint64_t seed) : rng_(seed) {}

    std::vector<Message> next() {
        std::vector<Message> msgs;
        if (pick(2) == 0) msgs.push_back({Role::kSystem, text()});
        const size_t n = 1 + pick(6);
        for (size_t i = 0; i < n; ++i) {
            msgs.push_back({i % 2 == 0 ? Role::kUser : Role::kAssistant, text()});
            if (pick(12) == 0) msgs.push_back({Role::kSystem, text()});
        }
        return msgs;
    }
    bool coin() { return pick(2) == 0; }

  private:
    size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
    std::string text() {
        static const char* const kAtoms[] = {"hello",
                                             "Wie geht's?",
                                             "日本語のテキスト",
                                             "🙂",
                                             "x",
                                             "1 + 1 = 2",
                                             " ",
                                             "  ",
                                             "\n",
                                             "\n\n",
                                             "\t",
                                             "\r\n",
                                             "\xE3\x80\x80",
                                             "\xC2\xA0",
                                             "<think>",
                                             "</think>",
                                             "<think>\n",
                                             "\n</think>\n\n",
                                             "<tool_response>",
                                             "</tool_response>",
                                             "<|im_end|>",
                                             "{{ x }}",
                                             "'quoted'",
                                             "\\n",
                                             "\x1c",
                                             "\xC2\x85",
                                             "\xEF\xBB\xBF",
                                             "\xE2\x80\x8B"};
        std::string s;
        if (pick(10) == 0) return "<tool_response>r</tool_response>";
        for (size_t k = pick(7); k > 0; --k) s += kAtoms[pick(std::size(kAtoms))];
        return s;
    }
    std::mt19937_64 rng_;
};

// The Jinja templates: the golden vocabularies' tokenizer.chat_template (DeepSeek-V3, Llama 3.1,
// Qwen3, from their tokenizer_config.json) and DeepSeek-R1's (tests/oracle/templates).
nlohmann::json jinja_templates() {
    const auto chat_template = [](const char* vocab) {
        const auto file = gguf::File::open((test::golden_dir() / "vocab" / vocab).string());
        return std::string(file.get_str("tokenizer.chat_template"));
    };
    return {{"deepseek-r1", test::read_file(oracle_dir() / "templates" / "deepseek-r1.jinja")},
            {"deepseek-v3", chat_template("deepseek-v3.gguf")},
            {"llama3", chat_template("llama-bpe.gguf")},
            {"chatml", chat_template("qwen2.gguf")}};
}

TEST(ChatTemplateOracle, RandomConversationsMatchTheJinjaTemplates) {
    STRATA_REQUIRE_GOLDEN();
    const std::string python = find_python();
    if (python.empty()) GTEST_SKIP() << "no python3 with jinja2 (apt-get install python3-jinja2)";
    constexpr size_t kPerFamily = 300;
    struct Case {
        Family family;
        std::vector<Message> messages;
        bool add_generation_prompt;
    };
    const std::vector<std::pair<Family, std::string>> families = {
        {Family::kDeepSeekR1, std::string(kDsBos)},
        {Family::kDeepSeekV3, std::string(kDsBos)},
        {Family::kLlama3, std::string(kLlamaBos)},
        {Family::kChatML, ""}};
    RandomConversation random(20250607);
    std::vector<Case> cases;
    nlohmann::json in = nlohmann::json::array();
    for (const auto& [family, bos] : families) {
        for (size_t i = 0; i < kPerFamily; ++i) {
            Case c{family, random.next(), random.coin()};
            nlohmann::json msgs = nlohmann::json::array();
            for (const Message& m : c.messages)
                msgs.push_back({{"role", role_name(m.role)}, {"content", m.content}});
            in.push_back({{"template", family_name(family)},
                          {"bos_token", bos},
                          {"messages", msgs},
                          {"add_generation_prompt", c.add_generation_prompt}});
            cases.push_back(std::move(c));
        }
    }
    test::TempDir dir;
    {
        const nlohmann::json job = {{"templates", jinja_templates()}, {"cases", in}};
        std::ofstream f(dir / "in.json", std::ios::binary);
        f << job.dump();
    }
    const std::string cmd = python + " '" + (oracle_dir() / "chat_template.py").string() + "' '" +
                            (dir / "in.json").string() + "' '" + (dir / "out.json").string() +
                            "' 2>'" + (dir / "err").string() + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << test::read_file(dir / "err");
    const auto expected = nlohmann::json::parse(test::read_file(dir / "out.json"));
    ASSERT_EQ(expected.size(), cases.size());

    size_t same = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
        const Case& c = cases[i];
        const ChatTemplate t(c.family, families[static_cast<size_t>(i / kPerFamily)].second);
        const std::string got = t.render(c.messages, c.add_generation_prompt);
        const std::string want = expected[i].get<std::string>();
        if (got == want) {
            ++same;
            continue;
        }
        ADD_FAILURE() << family_name(c.family) << " case " << i << ": " << in[i].dump()
                      << "\n  strata: " << test::escaped(got)
                      << "\n  jinja:  " << test::escaped(want);
        if (same + 10 < i) break;  // a handful of failures says enough
    }
    EXPECT_EQ(same, cases.size());
}

// ---------------------------------------------------------------------------------------------
// Detection.

using VocabFile = test::ChatVocabFile;

DetectedTemplate detect(const VocabFile& v, std::optional<Family> forced = std::nullopt) {
    test::TempDir dir;
    const gguf::File file = v.write(dir);
    return detect_template(file, tokenizer::Tokenizer::load(file), forced);
}

TEST(ChatTemplateDetect, FromTheTemplateText) {
    const std::vector<std::string> ds = {"<｜begin▁of▁sentence｜>", "<｜User｜>",
                                         "<｜Assistant｜>"};
    auto d = detect({ds, "{{bos_token}}{{'<｜User｜>' + m}}{{'<｜Assistant｜><think>\\n'}}", ""});
    EXPECT_EQ(d.tmpl.family(), Family::kDeepSeekR1);
    EXPECT_EQ(d.tmpl.bos_text(), "<｜begin▁of▁sentence｜>");
    EXPECT_EQ(d.reason, "tokenizer.chat_template");
    EXPECT_FALSE(d.fallback);
    // The V3 template (no <think>) is R1 unless the name says V2/V3 without R1.
    const std::string v3 = "{{'<｜User｜>' + m}}{{'<｜Assistant｜>'}}";
    EXPECT_EQ(detect({ds, v3, "Tiny DeepSeek-R1"}).tmpl.family(), Family::kDeepSeekR1);
    EXPECT_EQ(detect({ds, v3, ""}).tmpl.family(), Family::kDeepSeekR1);
    EXPECT_EQ(detect({ds, v3, "DeepSeek-V3-0324"}).tmpl.family(), Family::kDeepSeekV3);
    EXPECT_EQ(detect({ds, v3, "deepseek-v2-lite-chat"}).tmpl.family(), Family::kDeepSeekV3);
    EXPECT_EQ(detect({ds, v3, "DeepSeek-R1 (V3 base)"}).tmpl.family(), Family::kDeepSeekR1);

    const std::vector<std::string> llama = {"<|begin_of_text|>", "<|start_header_id|>"};
    d = detect({llama, "{{ '<|start_header_id|>' + role }}", ""});
    EXPECT_EQ(d.tmpl.family(), Family::kLlama3);
    EXPECT_EQ(d.tmpl.bos_text(), "<|begin_of_text|>");

    // R1-Distill-Llama: Llama's vocabulary with DeepSeek's markers and template.
    d = detect({{"<｜begin▁of▁sentence｜>", "<|start_header_id|>", "<｜User｜>"},
                "{{'<｜User｜>' + m}}{% if '</think>' in c %}{% endif %}",
                "R1 Distill Llama 8B"});
    EXPECT_EQ(d.tmpl.family(), Family::kDeepSeekR1);

    d = detect({{"<|endoftext|>", "<|im_start|>"},
                "{{'<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a "
                "helpful assistant.<|im_end|>\\n'}}",
                ""});
    EXPECT_EQ(d.tmpl.family(), Family::kChatML);
    EXPECT_EQ(d.tmpl.default_system(),
              "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
}

TEST(ChatTemplateDetect, FromTheVocabularyWhenTheTemplateSaysNothing) {
    auto d = detect({{"<s>", "<|im_start|>"}, "", ""});
    EXPECT_EQ(d.tmpl.family(), Family::kChatML);
    EXPECT_NE(d.reason.find("no tokenizer.chat_template"), std::string::npos) << d.reason;
    EXPECT_FALSE(d.fallback);
    d = detect({{"<s>", "<|start_header_id|>"}, "{{ messages }}", ""});
    EXPECT_EQ(d.tmpl.family(), Family::kLlama3);
    EXPECT_NE(d.reason.find("not recognised"), std::string::npos) << d.reason;
    d = detect({{"<s>", "<｜Assistant｜>", "<｜User｜>"}, "", "DeepSeek-V3"});
    EXPECT_EQ(d.tmpl.family(), Family::kDeepSeekV3);
}

TEST(ChatTemplateDetect, FallsBackToChatMLAndSaysSo) {
    const auto d = detect({{"<s>"}, "", ""});
    EXPECT_EQ(d.tmpl.family(), Family::kChatML);
    EXPECT_TRUE(d.fallback);
    EXPECT_NE(d.reason.find("assuming ChatML"), std::string::npos) << d.reason;
    EXPECT_NE(d.reason.find("--chat-template"), std::string::npos) << d.reason;
    // The markers are missing from the vocabulary: said too.
    EXPECT_NE(d.reason.find("no <|im_start|> token"), std::string::npos) << d.reason;
}

TEST(ChatTemplateDetect, ForcedFamilyWins) {
    const auto d = detect({{"<s>", "<|im_start|>"}, "{{'<|im_start|>'}}", ""}, Family::kLlama3);
    EXPECT_EQ(d.tmpl.family(), Family::kLlama3);
    EXPECT_NE(d.reason.find("--chat-template"), std::string::npos) << d.reason;
    EXPECT_NE(d.reason.find("no <|start_header_id|> token"), std::string::npos) << d.reason;
    EXPECT_EQ(d.tmpl.bos_text(), "<s>");
}

TEST(ChatTemplateDetect, GoldenFiles) {
    STRATA_REQUIRE_GOLDEN();
    const fs::path g = test::golden_dir();
    const struct {
        const char* file;
        Family family;
        const char* bos;
    } expected[] = {
        {"vocab/deepseek-v3.gguf", Family::kDeepSeekV3, "<｜begin▁of▁sentence｜>"},
        {"vocab/llama-bpe.gguf", Family::kLlama3, "<|begin_of_text|>"},
        {"vocab/qwen2.gguf", Family::kChatML, "<|endoftext|>"},
        {"models/deepseek2.f32.gguf", Family::kDeepSeekR1, "<｜begin▁of▁sentence｜>"},
        {"models/deepseek2-lite.f32.gguf", Family::kDeepSeekV3, "<｜begin▁of▁sentence｜>"},
        {"models/llama.f32.gguf", Family::kLlama3, "<|begin_of_text|>"},
        {"models/qwen2.f32.gguf", Family::kChatML, "<|endoftext|>"},
    };
    for (const auto& e : expected) {
        const gguf::File file = gguf::File::open((g / e.file).string());
        const auto d = detect_template(file, tokenizer::Tokenizer::load(file));
        EXPECT_EQ(d.tmpl.family(), e.family) << e.file << ": " << d.reason;
        EXPECT_EQ(d.tmpl.bos_text(), e.bos) << e.file;
        EXPECT_EQ(d.reason, "tokenizer.chat_template") << e.file;
        EXPECT_TRUE(d.tmpl.default_system().empty()) << e.file;
    }
}

}  // namespace
}  // namespace strata::chat
