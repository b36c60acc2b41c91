// gguf_fuzz_seeds OUT_DIR [GOLDEN_DIR]: writes the seed corpus of gguf_fuzz.
//   - valid files from gguf::Writer: every value type, arrays of every element type (empty
//     too), every tensor type at ranks 1–4, several alignments, split keys;
//   - the golden models and vocab files made small: the same keys and types with arrays cut
//     to a few elements, the same tensor names, types and ranks with one block per tensor;
//   - the first bytes of each golden model as they are (header and tensor table, cut short);
//   - the malformed corpus of gguf_corpus.h, so mutations start next to every refusal.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/error.h"
#include "runtime/gguf.h"
#include "tests/fuzz/gguf_corpus.h"

namespace {

namespace fs = std::filesystem;
using namespace strata;

constexpr uint64_t kArrayKeep = 16;           // array elements kept from the golden files
constexpr size_t kHeaderPrefixBytes = 16384;  // raw prefix kept of each golden model

void write_bytes(const fs::path& path, const test::Bytes& b) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    if (!out) fail("{}: cannot write", path.string());
}

test::Bytes pattern(size_t n, size_t salt) {
    test::Bytes b(n);
    for (size_t k = 0; k < n; ++k) b[k] = static_cast<uint8_t>(k * 131 + salt * 17 + 1);
    return b;
}

void writer_seeds(const fs::path& out) {
    using gguf::ValueType;
    {
        gguf::Writer w;
        w.set_u8("u8", 200);
        w.set_i8("i8", -3);
        w.set_u16("split.no", 0);
        w.set_i16("i16", -300);
        w.set_u32("general.alignment", 32);
        w.set_i32("split.tensors.count", 0);
        w.set_u64("u64", 1ull << 40);
        w.set_i64("i64", -1);
        w.set_f32("f32", 1.5f);
        w.set_f64("f64", -2.25);
        w.set_bool("bool", true);
        w.set_str("general.architecture", "llama");
        w.set_str("empty", "");
        w.set_str_array("tokenizer.ggml.tokens", {"a", "", "bc"});
        w.set_str_array("no.strings", {});
        for (uint32_t t = 0; t < gguf::kValueTypeCount; ++t) {
            const auto elem = static_cast<ValueType>(t);
            if (elem == ValueType::STRING || elem == ValueType::ARRAY) continue;
            gguf::OwnedValue v;
            v.type = ValueType::ARRAY;
            v.elem = elem;
            v.count = 2;
            v.raw.assign(2 * gguf::value_size(elem), elem == ValueType::BOOL ? 1 : 7);
            w.set(fmt::format("arr.{}", gguf::type_name(elem)), v);
            v.count = 0;
            v.raw.clear();
            w.set(fmt::format("arr.{}.empty", gguf::type_name(elem)), v);
        }
        w.write((out / "w-values.gguf").string());
    }
    for (uint32_t alignment : {1u, 32u, 64u}) {
        gguf::Writer w(alignment);
        w.set_str("general.architecture", "qwen2");
        std::vector<test::Bytes> keep;  // the writer reads tensor data at write()
        size_t n = 0;
        for (uint32_t id = 0; id < quant::kTypeIdLimit; ++id) {
            if (!quant::is_known(id)) continue;
            const auto type = static_cast<quant::Type>(id);
            std::vector<int64_t> ne = {quant::traits(type).block_size, 2, 1, 3};
            ne.resize(n % 4 + 1);
            uint64_t rows = 1;
            for (size_t d = 1; d < ne.size(); ++d) rows *= static_cast<uint64_t>(ne[d]);
            keep.push_back(pattern(quant::traits(type).block_bytes * rows, n));
            w.add_tensor(fmt::format("t.{}", quant::type_name(type)), type, ne, keep.back());
            ++n;
        }
        w.write((out / fmt::format("w-tensors-a{}.gguf", alignment)).string());
    }
    {
        // A sparse (data-less) tensor and split keys as llama-gguf-split writes them.
        gguf::Writer w;
        w.set_u16("split.no", 0);
        w.set_u16("split.count", 1);
        w.set_i32("split.tensors.count", 2);
        w.add_tensor("hole", quant::Type::Q4_K, {256, 2}, gguf::Writer::Fill{});
        w.add_tensor("f", quant::Type::F16, {3}, gguf::Writer::Fill{});
        w.write((out / "w-split.gguf").string());
    }
}

// A golden file made small: every key with its type (arrays cut short), every tensor with its
// name, type and rank but one block of data.
void shrunk_golden(const fs::path& path, const fs::path& out) {
    const auto f = gguf::File::open(path.string());
    gguf::Writer w(f.alignment());
    for (const gguf::KeyValue& kv : f.metadata()) {
        gguf::Value v = kv.value;
        if (v.type == gguf::ValueType::ARRAY && v.count > kArrayKeep) {
            v.count = kArrayKeep;
            if (v.elem == gguf::ValueType::STRING) v.strings.resize(kArrayKeep);
        }
        w.set_value(std::string(kv.key), v);
    }
    std::vector<test::Bytes> keep;
    for (const gguf::Tensor& t : f.tensors()) {
        std::vector<int64_t> ne(static_cast<size_t>(t.n_dims), 1);
        ne[0] = quant::traits(t.type).block_size;
        keep.push_back(pattern(quant::traits(t.type).block_bytes, keep.size()));
        w.add_tensor(std::string(t.name), t.type, ne, keep.back());
    }
    w.write((out / ("g-" + path.stem().string() + ".gguf")).string());
}

void golden_seeds(const fs::path& golden, const fs::path& out) {
    size_t n = 0;
    for (const char* sub : {"models", "vocab"}) {
        if (!fs::exists(golden / sub)) continue;
        for (const auto& entry : fs::directory_iterator(golden / sub)) {
            if (entry.path().extension() != ".gguf") continue;
            shrunk_golden(entry.path(), out);
            if (std::string(sub) == "models") {
                std::ifstream in(entry.path(), std::ios::binary);
                test::Bytes prefix(kHeaderPrefixBytes);
                in.read(reinterpret_cast<char*>(prefix.data()),
                        static_cast<std::streamsize>(prefix.size()));
                prefix.resize(static_cast<size_t>(in.gcount()));
                write_bytes(out / ("h-" + entry.path().stem().string() + ".gguf"), prefix);
            }
            ++n;
        }
    }
    std::fprintf(stderr, "gguf_fuzz_seeds: %zu golden files\n", n);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) {
        std::fprintf(stderr, "usage: gguf_fuzz_seeds OUT_DIR [GOLDEN_DIR]\n");
        return 2;
    }
    try {
        const fs::path out = argv[1];
        fs::create_directories(out);
        writer_seeds(out);
        if (argc == 3) golden_seeds(argv[2], out);
        size_t n = 0;
        for (const test::BadFile& bad : test::malformed_corpus()) {
            write_bytes(out / ("bad-" + bad.name + ".gguf"), bad.bytes);
            ++n;
        }
        std::fprintf(stderr, "gguf_fuzz_seeds: %zu malformed files\n", n);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "gguf_fuzz_seeds: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
