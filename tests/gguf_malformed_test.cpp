// Malformed GGUF files are refused with one clear line, quickly and in little memory: the corpus
// of tests/fuzz/gguf_corpus.h (mutations and truncations of a small valid file) and broken split
// models, each parsed in-process and opened by `strata inspect` as a subprocess whose exit status,
// output, time and peak memory are measured.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include "runtime/error.h"
#include "runtime/gguf.h"
#include "tests/fuzz/gguf_corpus.h"
#include "tests/gguf_test_helpers.h"
#include "tests/test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define STRATA_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STRATA_UNDER_ASAN 1
#endif
#endif

namespace strata {
namespace {

namespace fs = std::filesystem;
using test::BadFile;
using test::Bytes;
using test::RawGguf;
using Clock = std::chrono::steady_clock;

constexpr double kMaxSeconds = 1.0;
constexpr long kMaxRssBytes = 100L << 20;

void write_bytes(const fs::path& path, const Bytes& b) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    ASSERT_TRUE(out.good()) << path;
}

// The resident set size of this process now, from /proc/self/status (VmRSS, in kB).
long current_rss_bytes() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6)) * 1024L;
    }
    return 0;
}

// The checks every refusal message passes: one line, names the file (starts with `prefix`), says
// what is wrong.
void expect_clear_message(const std::string& msg, const std::string& prefix,
                          const std::vector<std::string>& expect) {
    EXPECT_EQ(msg.find_first_of("\r\n"), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind(prefix, 0), 0u) << "message should start with the file: " << msg;
    EXPECT_LT(msg.size(), 400u) << msg;
    for (const std::string& part : expect) EXPECT_PRED2(test::contains, msg, part);
}

TEST(GgufMalformed, TheBaseFileIsValid) {
    const Bytes base = test::BaseFile{}.bytes();
    const auto f = gguf::File::parse("base", base.data(), base.size());
    EXPECT_EQ(f.arch(), "llama");
    EXPECT_EQ(f.get_str_array("tokenizer.ggml.tokens").size(), 3u);
    ASSERT_EQ(f.tensors().size(), 2u);
    EXPECT_EQ(f.tensors()[1].nbytes, 68u);
    const test::BaseLayout at;
    EXPECT_EQ(f.shards()[0].data_offset, at.data_offset);
    EXPECT_EQ(f.tensors()[1].file_offset + 68, at.data_end);
    // Mutations the reader must accept, so that the corpus tests refusals and not the base.
    Bytes v2 = test::patched<uint32_t>(base, at.version, 2);
    EXPECT_EQ(gguf::File::parse("v2", v2.data(), v2.size()).version(), 2u);
    Bytes unpadded(base.begin(), base.begin() + static_cast<long>(at.data_end));
    EXPECT_NO_THROW(gguf::File::parse("unpadded", unpadded.data(), unpadded.size()));
    test::BaseFile aligned;
    aligned.with_alignment = true;
    aligned.alignment = 64;
    const Bytes a64 = aligned.bytes();
    EXPECT_EQ(gguf::File::parse("a64", a64.data(), a64.size()).alignment(), 64u);
}

TEST(GgufMalformed, EveryCorpusFileIsRefusedInProcess) {
    const std::vector<BadFile> corpus = test::malformed_corpus();
    ASSERT_GT(corpus.size(), 500u);
    double worst = 0;
    // Memory: no parse can have used more than the process's peak RSS at the end minus its RSS
    // now, so that difference bounds every file's cost at once.
    const long rss_before = current_rss_bytes();
    std::map<std::string, int> names;
    for (const BadFile& bad : corpus) {
        SCOPED_TRACE(bad.name);
        EXPECT_EQ(++names[bad.name], 1) << "duplicate corpus name";
        ASSERT_FALSE(bad.expect.empty());
        const auto start = Clock::now();
        std::string msg;
        try {
            gguf::File::parse(bad.name, bad.bytes.data(), bad.bytes.size());
            msg = "(accepted)";
        } catch (const Error& e) {
            msg = e.what();
        }
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        worst = std::max(worst, seconds);
        EXPECT_LT(seconds, kMaxSeconds);
        expect_clear_message(msg, bad.name + ": ", bad.expect);
    }
    struct rusage usage {};
    ::getrusage(RUSAGE_SELF, &usage);
    const long grown = usage.ru_maxrss * 1024L - rss_before;
    EXPECT_LT(grown, kMaxRssBytes) << "a parse may have used more than 100 MB";
    std::printf(
        "[ measured ] %zu files parsed in-process: slowest %.3f ms, peak RSS above the "
        "start at most %.1f MB\n",
        corpus.size(), worst * 1e3, std::max(0L, grown) / 1e6);
}

// ---------------------------------------------------------------------------------------------
// Split models: a set of shard files and the one to open.

struct SplitCase {
    std::string name;
    std::map<std::string, Bytes> files;  // file name → contents
    std::vector<std::string> dirs;       // names made directories instead of files
    std::string open;
    std::vector<std::string> expect;
};

struct ShardSpec {
    std::optional<uint64_t> no, count;
    std::optional<int64_t> n_total;
    std::vector<std::string> tensors;
    uint32_t count_type = test::vt::U16;
};

// A shard as llama-gguf-split writes one; F32 [8] tensors of 32 bytes each.
Bytes shard(const ShardSpec& s) {
    RawGguf g;
    if (s.no.value_or(1) == 0) g.kv_str("general.architecture", "llama");
    if (s.no) g.kv_u16("split.no", static_cast<uint16_t>(*s.no));
    if (s.count) {
        if (s.count_type == test::vt::U32) {
            g.kv_u32("split.count", static_cast<uint32_t>(*s.count));
        } else {
            g.kv_u16("split.count", static_cast<uint16_t>(*s.count));
        }
    }
    if (s.n_total) g.kv_i32("split.tensors.count", static_cast<int32_t>(*s.n_total));
    for (size_t k = 0; k < s.tensors.size(); ++k) g.tensor(s.tensors[k], {8}, 0, 32 * k);
    g.data.assign(32 * s.tensors.size(), 0x5a);
    return g.bytes();
}

// A valid three-shard model (2 + 3 + 1 tensors), for cases to break one piece of.
std::map<std::string, Bytes> three_shards(const std::string& prefix) {
    std::map<std::string, Bytes> f;
    f[prefix + "-00001-of-00003.gguf"] = shard({0, 3, 6, {"a", "b"}});
    f[prefix + "-00002-of-00003.gguf"] = shard({1, 3, 6, {"c", "d", "e"}});
    f[prefix + "-00003-of-00003.gguf"] = shard({2, 3, 6, {"f"}});
    return f;
}

std::vector<SplitCase> split_corpus() {
    std::vector<SplitCase> c;
    const std::string first = "m-00001-of-00003.gguf", second = "m-00002-of-00003.gguf",
                      third = "m-00003-of-00003.gguf";
    auto broken = [&](std::string name, const std::string& file, Bytes bytes, std::string open,
                      std::vector<std::string> expect) {
        SplitCase s{std::move(name), three_shards("m"), {}, std::move(open), std::move(expect)};
        if (bytes.empty()) {
            s.files.erase(file);
        } else {
            s.files[file] = std::move(bytes);
        }
        c.push_back(std::move(s));
    };
    broken("missing-shard", second, {}, first, {"missing shard 2 of 3", second});
    broken("wrong-split-no", second, shard({2, 3, 6, {"c", "d", "e"}}), first,
           {second, "has split.no 2 and split.count 3, expected 1 and 3"});
    broken("shard-without-split-keys", third, shard({{}, {}, {}, {"f"}}), first,
           {third, "split.no (absent)"});
    broken("shard-count-mismatch", third, shard({2, 4, 6, {"f"}}), first,
           {third, "split.count 4, expected 2 and 3"});
    broken("later-shard-named", second, shard({1, 3, 6, {"c", "d", "e"}}), second,
           {"this is shard 2 of 3 (split.no 1)", "open the first shard"});
    broken("tensors-count-mismatch", first, shard({0, 3, 9, {"a", "b"}}), first,
           {"split.tensors.count is 9 but the 3 shard(s) hold 6 tensors"});
    broken("duplicate-across-shards", third, shard({2, 3, 6, {"a"}}), first,
           {third, "duplicate tensor 'a'"});
    Bytes cut = shard({2, 3, 6, {"f"}});
    cut.resize(40);  // inside the first key
    broken("corrupt-later-shard", third, cut, first, {third, "truncated"});
    broken("split-no-beyond-count", first, shard({5, 3, 6, {"a", "b"}}), first,
           {"split.no 5 is not below split.count 3"});
    broken("split-count-absurd", first, shard({0, 70000, 6, {"a", "b"}, test::vt::U32}), first,
           {"split.count 70000 is more than 65535"});
    c.push_back({"single-file-tensors-count",
                 {{"one.gguf", shard({{}, {}, 5, {"a", "b"}})}},
                 {},
                 "one.gguf",
                 {"split.tensors.count is 5 but the 1 shard(s) hold 2 tensors"}});
    c.push_back({"split-no-without-count",
                 {{"one.gguf", shard({1, {}, {}, {"a"}})}},
                 {},
                 "one.gguf",
                 {"split.no 1 is not below split.count 1"}});
    c.push_back({"name-not-a-shard",
                 {{"model.gguf", shard({0, 3, 6, {"a", "b"}})}},
                 {},
                 "model.gguf",
                 {"file name is not NAME-00001-of-00003.gguf"}});
    c.push_back({"name-count-mismatch",
                 {{"m-00001-of-00002.gguf", shard({0, 3, 6, {"a"}})}},
                 {},
                 "m-00001-of-00002.gguf",
                 {"file name says shard 1 of 2 but its keys say shard 1 of 3"}});
    SplitCase dir{
        "shard-is-directory", three_shards("m"), {second}, first, {second, "not a regular file"}};
    dir.files.erase(second);
    c.push_back(std::move(dir));
    return c;
}

// Writes a case's files into `dir`; returns the path to open.
fs::path materialize(const SplitCase& s, const fs::path& dir) {
    fs::create_directories(dir);
    for (const auto& [name, bytes] : s.files) write_bytes(dir / name, bytes);
    for (const std::string& d : s.dirs) fs::create_directories(dir / d);
    return dir / s.open;
}

TEST(GgufMalformed, ValidSplitModelOpens) {
    test::TempDir dir;
    SplitCase ok{"ok", three_shards("m"), {}, "m-00001-of-00003.gguf", {}};
    const auto f = gguf::File::open(materialize(ok, dir.path()).string());
    EXPECT_EQ(f.shards().size(), 3u);
    EXPECT_EQ(f.tensors().size(), 6u);
    EXPECT_EQ(f.tensor("f").shard, 2u);
}

TEST(GgufMalformed, BrokenSplitModelsAreRefused) {
    test::TempDir dir;
    for (const SplitCase& s : split_corpus()) {
        SCOPED_TRACE(s.name);
        const fs::path path = materialize(s, dir / s.name);
        const std::string msg = test::error_of([&] { gguf::File::open(path.string()); });
        expect_clear_message(msg, (dir / s.name).string() + "/", s.expect);
    }
}

// ---------------------------------------------------------------------------------------------
// The CLI: `strata inspect FILE` for every corpus file, measured.
//
// Linux counts in a child's peak RSS the memory of the process it was forked from (the peak
// before exec is kept), so `strata` forked from this test process, large after the other tests,
// would be charged for the test's heap. The runs are therefore made by a launcher: this same
// binary started afresh with STRATA_GGUF_LAUNCH=DIR set, which before main() runs
// `strata inspect` on every path listed in DIR/list, one after another, and writes each run's
// stdout, stderr and figures into DIR. Its own small footprint is the floor of every figure,
// and the baseline run on a valid file shows it.

struct InspectRun {
    int status = -1;  // exit status, or -1 when killed by a signal
    std::string out, err;
    double wall_s = 0, cpu_s = 0;
    long max_rss_bytes = 0;
};

// Launcher side: runs one file, the child's output going to OUT and ERR.
void launch_one(const std::string& file, const std::string& out, const std::string& err,
                std::FILE* report) {
    const auto start = Clock::now();
    const pid_t pid = ::fork();
    if (pid == 0) {
        // CPU time is capped so that a hang fails the test instead of stalling it.
        struct rlimit cpu = {10, 10};
        ::setrlimit(RLIMIT_CPU, &cpu);
        const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int in = ::open("/dev/null", O_RDONLY);
        if (o < 0 || e < 0 || in < 0) ::_exit(126);
        ::dup2(in, 0);
        ::dup2(o, 1);
        ::dup2(e, 2);
        const char* argv[] = {STRATA_BIN, "inspect", file.c_str(), nullptr};
        ::execv(STRATA_BIN, const_cast<char* const*>(argv));
        ::_exit(127);
    }
    int status = 0;
    struct rusage usage {};
    if (pid < 0 || ::wait4(pid, &status, 0, &usage) != pid) {
        std::fprintf(report, "-1 0 0 0\n");
        return;
    }
    const double wall = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                       1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
    std::fprintf(report, "%d %.6f %.6f %ld\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1, wall,
                 cpu, usage.ru_maxrss * 1024L);
}

// Runs before main() in every start of the test binary; does nothing unless asked.
const bool kLauncherRan = [] {
    const char* dir = std::getenv("STRATA_GGUF_LAUNCH");
    if (!dir) return false;
    std::ifstream list(std::string(dir) + "/list");
    std::FILE* report = std::fopen((std::string(dir) + "/report").c_str(), "w");
    if (!report) ::_exit(3);
    std::string file;
    for (size_t k = 0; std::getline(list, file); ++k) {
        const std::string base = std::string(dir) + "/" + std::to_string(k);
        launch_one(file, base + ".out", base + ".err", report);
    }
    std::fclose(report);
    ::_exit(0);
}();

// Test side: runs `strata inspect` on every file through a fresh launcher.
std::vector<InspectRun> run_inspect(const std::vector<fs::path>& files, const fs::path& dir) {
    {
        std::ofstream list(dir / "list");
        for (const fs::path& f : files) list << f.string() << '\n';
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::setenv("STRATA_GGUF_LAUNCH", dir.c_str(), 1);
        const char* argv[] = {"strata_tests", nullptr};
        ::execv("/proc/self/exe", const_cast<char* const*>(argv));
        ::_exit(127);
    }
    int status = 0;
    std::vector<InspectRun> runs;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        ADD_FAILURE() << "the launcher failed (status " << status << ")";
        return runs;
    }
    std::ifstream report(dir / "report");
    for (size_t k = 0; k < files.size(); ++k) {
        InspectRun r;
        if (!(report >> r.status >> r.wall_s >> r.cpu_s >> r.max_rss_bytes)) break;
        r.out = test::read_file(dir / (std::to_string(k) + ".out"));
        r.err = test::read_file(dir / (std::to_string(k) + ".err"));
        runs.push_back(std::move(r));
    }
    EXPECT_EQ(runs.size(), files.size());
    return runs;
}

TEST(GgufMalformed, CliRefusesEveryCorpusFileWithOneLine) {
    ASSERT_FALSE(kLauncherRan);
    test::TempDir dir;
    struct Item {
        std::string name;
        fs::path path;
        std::vector<std::string> expect;
    };
    // The valid base file first: the baseline of time and memory, which sanitizers inflate.
    std::vector<Item> items = {{"base", dir / "base.gguf", {}}};
    write_bytes(items[0].path, test::BaseFile{}.bytes());
    // Every case except the truncations, which differ from each other only in where the
    // reader stops: one cut in eight of those, and every cut in the first 40 bytes. (Each
    // run costs a process start, 50-150 ms under ASan; the in-process test parses them all.)
    for (const BadFile& bad : test::malformed_corpus()) {
        const std::string kCut = "truncated-";
        if (bad.name.rfind(kCut, 0) == 0) {
            const size_t n = std::stoul(bad.name.substr(kCut.size()));
            if (n >= 40 && n % 8 != 0) continue;
        }
        const fs::path p = dir / (bad.name + ".gguf");
        write_bytes(p, bad.bytes);
        items.push_back({bad.name, p, bad.expect});
    }
    for (const SplitCase& s : split_corpus())
        items.push_back({s.name, materialize(s, dir / ("split-" + s.name)), s.expect});
    std::vector<fs::path> paths;
    for (const Item& item : items) paths.push_back(item.path);
    const fs::path runs_dir = dir / "runs";
    fs::create_directories(runs_dir);
    const std::vector<InspectRun> runs = run_inspect(paths, runs_dir);
    ASSERT_EQ(runs.size(), items.size());

    // Whatever inspect makes of the (parseable) base file, its run measures the binary's own
    // footprint; the in-process tests check that the base file parses.
    const InspectRun& base = runs[0];
#ifdef STRATA_UNDER_ASAN
    const long rss_limit = base.max_rss_bytes + kMaxRssBytes;
#else
    const long rss_limit = kMaxRssBytes;
#endif
    double worst_wall = 0, worst_cpu = 0;
    long worst_rss = 0;
    std::string worst_name;
    for (size_t k = 1; k < items.size(); ++k) {
        const Item& item = items[k];
        const InspectRun& r = runs[k];
        SCOPED_TRACE(item.name);
        EXPECT_EQ(r.status, 1);
        EXPECT_EQ(r.out, "");
        // Exactly one line, `strata: error: <message naming the problem>`.
        ASSERT_FALSE(r.err.empty());
        EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
        EXPECT_EQ(r.err.rfind("strata: error: ", 0), 0u) << r.err;
        for (const std::string& part : item.expect) EXPECT_PRED2(test::contains, r.err, part);
        // CPU time is the budget; wall time gets slack for a machine loaded by other builds.
        EXPECT_LT(r.cpu_s, kMaxSeconds);
        EXPECT_LT(r.wall_s, 5 * kMaxSeconds);
        EXPECT_LT(r.max_rss_bytes, rss_limit);
        if (r.wall_s > worst_wall) {
            worst_wall = r.wall_s;
            worst_name = item.name;
        }
        worst_cpu = std::max(worst_cpu, r.cpu_s);
        worst_rss = std::max(worst_rss, r.max_rss_bytes);
    }
    std::printf(
        "[ measured ] %zu malformed files: worst wall %.3f s (%s), worst cpu %.3f s, "
        "worst peak RSS %.1f MB (valid-file baseline %.1f MB, limit %.1f MB)\n",
        items.size() - 1, worst_wall, worst_name.c_str(), worst_cpu, worst_rss / 1e6,
        base.max_rss_bytes / 1e6, rss_limit / 1e6);
}

}  // namespace
}  // namespace strata
