// gguf::Writer → gguf::File round trips: every value type, arrays of every element type, empty
// values, alignments, every tensor type at ranks 1–4, sparse tensors and split models. The byte
// layout is checked against tests/fuzz/gguf_builder.h, a second encoding of the format written
// without the writer, so the two must agree byte for byte.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <random>

#include "runtime/error.h"
#include "runtime/gguf.h"
#include "tests/fuzz/gguf_builder.h"
#include "tests/gguf_test_helpers.h"
#include "tests/test_util.h"

namespace strata {
namespace {

using gguf::ValueType;
using test::Bytes;
using test::RawGguf;
namespace vt = test::vt;

Bytes file_bytes(const std::filesystem::path& p) {
    const std::string s = test::read_file(p);
    return Bytes(s.begin(), s.end());
}

Bytes random_bytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    Bytes b(n);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    return b;
}

// ggml's block size and bytes per block of every type id (ggml/src/ggml.c type_traits), kept
// here as an independent check of the byte sizes the reader computes.
struct GgmlType {
    uint32_t id;
    int64_t block;
    uint64_t bytes;
};
constexpr GgmlType kGgmlTypes[] = {
    {0, 1, 4},      {1, 1, 2},      {2, 32, 18},   {3, 32, 20},    {6, 32, 22},    {7, 32, 24},
    {8, 32, 34},    {9, 32, 36},    {10, 256, 84}, {11, 256, 110}, {12, 256, 144}, {13, 256, 176},
    {14, 256, 210}, {15, 256, 292}, {16, 256, 66}, {17, 256, 74},  {18, 256, 98},  {19, 256, 50},
    {20, 32, 18},   {21, 256, 110}, {22, 256, 82}, {23, 256, 136}, {24, 1, 1},     {25, 1, 2},
    {26, 1, 4},     {27, 1, 8},     {28, 1, 8},    {29, 256, 56},  {30, 1, 2},     {34, 256, 54},
    {35, 256, 66},  {39, 32, 17},
};

uint64_t pad(uint64_t n, uint64_t a) {
    return (n + a - 1) / a * a;
}

TEST(GgufRoundTrip, EveryScalarTypeMatchesAnIndependentEncoding) {
    test::TempDir dir;
    gguf::Writer w;
    w.set_u8("t.u8", 255);
    w.set_i8("t.i8", -128);
    w.set_u16("t.u16", 65535);
    w.set_i16("t.i16", -32768);
    w.set_u32("t.u32", 4000000000u);
    w.set_i32("t.i32", std::numeric_limits<int32_t>::min());
    w.set_u64("t.u64", std::numeric_limits<uint64_t>::max());
    w.set_i64("t.i64", std::numeric_limits<int64_t>::min());
    w.set_f32("t.f32", -0.0f);
    w.set_f64("t.f64", 1e300);
    w.set_bool("t.true", true);
    w.set_bool("t.false", false);
    w.set_str("t.str", std::string("caf\xc3\xa9 \0 nul", 11));
    w.set_str("t.empty", "");
    w.set_f32("t.inf", std::numeric_limits<float>::infinity());
    w.set_f32("t.denorm", std::numeric_limits<float>::denorm_min());
    w.write((dir / "s.gguf").string());

    RawGguf raw;
    raw.kv("t.u8", vt::U8, test::enc<uint8_t>(255));
    raw.kv("t.i8", vt::I8, test::enc<int8_t>(-128));
    raw.kv("t.u16", vt::U16, test::enc<uint16_t>(65535));
    raw.kv("t.i16", vt::I16, test::enc<int16_t>(-32768));
    raw.kv("t.u32", vt::U32, test::enc<uint32_t>(4000000000u));
    raw.kv("t.i32", vt::I32, test::enc<int32_t>(std::numeric_limits<int32_t>::min()));
    raw.kv("t.u64", vt::U64, test::enc<uint64_t>(std::numeric_limits<uint64_t>::max()));
    raw.kv("t.i64", vt::I64, test::enc<int64_t>(std::numeric_limits<int64_t>::min()));
    raw.kv("t.f32", vt::F32, test::enc<float>(-0.0f));
    raw.kv("t.f64", vt::F64, test::enc<double>(1e300));
    raw.kv("t.true", vt::BOOL, test::enc<uint8_t>(1));
    raw.kv("t.false", vt::BOOL, test::enc<uint8_t>(0));
    raw.kv("t.str", vt::STR, test::enc_str(std::string_view("caf\xc3\xa9 \0 nul", 11)));
    raw.kv("t.empty", vt::STR, test::enc_str(""));
    raw.kv("t.inf", vt::F32, test::enc<float>(std::numeric_limits<float>::infinity()));
    raw.kv("t.denorm", vt::F32, test::enc<float>(std::numeric_limits<float>::denorm_min()));
    EXPECT_EQ(file_bytes(dir / "s.gguf"), raw.bytes());

    const auto f = gguf::File::open((dir / "s.gguf").string());
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.alignment(), 32u);
    ASSERT_EQ(f.metadata().size(), 16u);
    EXPECT_EQ(f.metadata()[0].key, "t.u8");  // file order is kept
    EXPECT_EQ(f.metadata()[15].key, "t.denorm");
    EXPECT_EQ(f.find("t.u8")->type, ValueType::UINT8);
    EXPECT_EQ(f.get_u32("t.u8"), 255u);
    EXPECT_EQ(f.find("t.i8")->type, ValueType::INT8);
    EXPECT_EQ(f.get_i64("t.i8"), -128);
    EXPECT_EQ(f.find("t.u16")->type, ValueType::UINT16);
    EXPECT_EQ(f.get_u32("t.u16"), 65535u);
    EXPECT_EQ(f.find("t.i16")->type, ValueType::INT16);
    EXPECT_EQ(f.get_i64("t.i16"), -32768);
    EXPECT_EQ(f.get_u32("t.u32"), 4000000000u);
    EXPECT_EQ(f.find("t.i32")->type, ValueType::INT32);
    EXPECT_EQ(f.get_i64("t.i32"), std::numeric_limits<int32_t>::min());
    EXPECT_EQ(f.find("t.u64")->type, ValueType::UINT64);
    EXPECT_EQ(f.get_u64("t.u64"), std::numeric_limits<uint64_t>::max());
    EXPECT_EQ(f.get_i64("t.i64"), std::numeric_limits<int64_t>::min());
    const float neg_zero = f.get_f32("t.f32");
    EXPECT_TRUE(neg_zero == 0.0f && std::signbit(neg_zero));
    EXPECT_EQ(f.find("t.f64")->type, ValueType::FLOAT64);
    EXPECT_EQ(f.find("t.f64")->f, 1e300);
    EXPECT_TRUE(f.get_bool("t.true"));
    EXPECT_FALSE(f.get_bool("t.false"));
    EXPECT_EQ(f.get_str("t.str"), std::string_view("caf\xc3\xa9 \0 nul", 11));
    EXPECT_EQ(f.get_str("t.empty"), "");
    EXPECT_TRUE(std::isinf(f.get_f32("t.inf")));
    EXPECT_EQ(f.get_f32("t.denorm"), std::numeric_limits<float>::denorm_min());
    EXPECT_TRUE(f.tensors().empty());
    EXPECT_EQ(f.file_bytes(), raw.bytes().size());
}

// An array of 3 (or 0) distinct elements of every fixed-size type, and string arrays.
TEST(GgufRoundTrip, ArraysOfEveryElementTypeIncludingEmpty) {
    test::TempDir dir;
    gguf::Writer w;
    RawGguf raw;
    const ValueType fixed[] = {ValueType::UINT8,   ValueType::INT8,   ValueType::UINT16,
                               ValueType::INT16,   ValueType::UINT32, ValueType::INT32,
                               ValueType::FLOAT32, ValueType::BOOL,   ValueType::UINT64,
                               ValueType::INT64,   ValueType::FLOAT64};
    std::map<std::string, Bytes> payloads;
    for (ValueType t : fixed) {
        for (uint64_t n : {uint64_t{0}, uint64_t{3}}) {
            const size_t size = gguf::value_size(t);
            Bytes elems(n * size);
            for (size_t k = 0; k < elems.size(); ++k) {
                elems[k] = t == ValueType::BOOL ? static_cast<uint8_t>(k % 2)
                                                : static_cast<uint8_t>(k * 37 + 1);
            }
            gguf::OwnedValue v;
            v.type = ValueType::ARRAY;
            v.elem = t;
            v.count = n;
            v.raw = elems;
            const std::string key = fmt::format("arr.{}.{}", gguf::type_name(t), n);
            w.set(key, v);
            raw.kv(key, vt::ARR, test::enc_array(static_cast<uint32_t>(t), n, elems));
            payloads[key] = elems;
        }
    }
    const std::vector<std::string> strings = {"", "a", std::string(300, 'x'), "", "\xe2\x96\x81z"};
    w.set_str_array("arr.str", strings);
    w.set_str_array("arr.str.empty", {});
    Bytes enc_strings;
    for (const auto& s : strings) test::put_str(enc_strings, s);
    raw.kv("arr.str", vt::ARR, test::enc_array(vt::STR, strings.size(), enc_strings));
    raw.kv("arr.str.empty", vt::ARR, test::enc_array(vt::STR, 0, {}));
    w.write((dir / "a.gguf").string());
    EXPECT_EQ(file_bytes(dir / "a.gguf"), raw.bytes());

    const auto f = gguf::File::open((dir / "a.gguf").string());
    for (ValueType t : fixed) {
        for (uint64_t n : {uint64_t{0}, uint64_t{3}}) {
            const std::string key = fmt::format("arr.{}.{}", gguf::type_name(t), n);
            const gguf::Value* v = f.find(key);
            ASSERT_NE(v, nullptr);
            EXPECT_EQ(v->type, ValueType::ARRAY);
            EXPECT_EQ(v->elem, t);
            EXPECT_EQ(v->count, n);
            EXPECT_EQ(v->type_string(), fmt::format("ARRAY[{}]", gguf::type_name(t)));
            const Bytes& want = payloads.at(key);
            if (n > 0) {
                EXPECT_EQ(0, std::memcmp(v->raw, want.data(), want.size()));
            }
        }
    }
    EXPECT_EQ(f.get_str_array("arr.str"),
              std::vector<std::string_view>(strings.begin(), strings.end()));
    EXPECT_TRUE(f.get_str_array("arr.str.empty").empty());
    // Typed array accessors read what was stored.
    const std::vector<int32_t> i32 = f.get_i32_array("arr.INT32.3");
    ASSERT_EQ(i32.size(), 3u);
    for (size_t k = 0; k < 3; ++k) {
        int32_t want = 0;
        std::memcpy(&want, payloads.at("arr.INT32.3").data() + 4 * k, 4);
        EXPECT_EQ(i32[k], want);
    }
    EXPECT_EQ(f.get_f32_array("arr.FLOAT32.0").size(), 0u);
    EXPECT_EQ(f.get_f32_array("arr.FLOAT64.3").size(), 3u);
    EXPECT_THROW(f.get_f32_array("arr.str"), Error);
}

TEST(GgufRoundTrip, TypedArraySettersAndAccessors) {
    test::TempDir dir;
    gguf::Writer w;
    const std::vector<int32_t> ids = {-1, 0, 7, std::numeric_limits<int32_t>::max()};
    const std::vector<uint32_t> uids = {1, 2, 3};
    const std::vector<float> scores = {-1.5f, 0.25f, 3e38f};
    const bool flags[] = {true, false, true};
    w.set_i32_array("ids", ids);
    w.set_u32_array("uids", uids);
    w.set_f32_array("scores", scores);
    w.set_bool_array("flags", flags);
    w.write((dir / "t.gguf").string());
    const auto f = gguf::File::open((dir / "t.gguf").string());
    EXPECT_EQ(f.get_i32_array("ids"), ids);
    EXPECT_EQ(f.get_i32_array("uids"), (std::vector<int32_t>{1, 2, 3}));
    EXPECT_EQ(f.get_f32_array("scores"), scores);
    // An unsigned element too large for INT32 is refused, not wrapped to a negative id.
    const std::vector<uint32_t> too_big = {1, 0x80000000u};
    gguf::Writer w2;
    w2.set_u32_array("big", too_big);
    w2.write((dir / "big.gguf").string());
    const auto f2 = gguf::File::open((dir / "big.gguf").string());
    EXPECT_ERROR(f2.get_i32_array("big"), "key 'big' element 1 holds 2147483648, outside INT32");
    EXPECT_EQ(f.find("flags")->elem, ValueType::BOOL);
    EXPECT_EQ(f.find("flags")->raw[0], 1);
    EXPECT_EQ(f.find("flags")->raw[1], 0);
}

// Tensors of odd byte sizes under several alignments: offsets, data section start, padding of
// every tensor (the last one too) and total size, against the independent encoding.
TEST(GgufRoundTrip, NonDefaultAlignmentLayout) {
    test::TempDir dir;
    for (uint32_t alignment : {1u, 8u, 32u, 64u, 4096u}) {
        SCOPED_TRACE(alignment);
        struct Spec {
            std::string name;
            quant::Type type;
            std::vector<int64_t> ne;
            uint64_t nbytes;
        };
        const std::vector<Spec> specs = {{"a", quant::Type::F32, {3}, 12},
                                         {"b.weight", quant::Type::Q8_0, {32, 3}, 102},
                                         {"c", quant::Type::F16, {5, 1, 1}, 10}};
        gguf::Writer w(alignment);
        w.set_str("general.architecture", "test");
        RawGguf raw;
        raw.alignment = alignment;
        if (alignment != 32) raw.kv_u32("general.alignment", alignment);
        raw.kv_str("general.architecture", "test");
        uint64_t offset = 0;
        std::vector<uint64_t> offsets;
        std::vector<Bytes> datas;  // the writer reads them at write()
        for (size_t k = 0; k < specs.size(); ++k) {
            const Bytes& data =
                datas.emplace_back(random_bytes(specs[k].nbytes, static_cast<uint32_t>(k)));
            w.add_tensor(specs[k].name, specs[k].type, specs[k].ne, data);
            std::vector<uint64_t> ne(specs[k].ne.begin(), specs[k].ne.end());
            raw.tensor(specs[k].name, ne, static_cast<uint32_t>(specs[k].type), offset);
            offsets.push_back(offset);
            raw.data.insert(raw.data.end(), data.begin(), data.end());
            offset = pad(offset + specs[k].nbytes, alignment);
            raw.data.resize(offset, 0);
        }
        const auto path = dir / fmt::format("a{}.gguf", alignment);
        w.write(path.string());
        const Bytes expected = raw.bytes();
        EXPECT_EQ(file_bytes(path), expected);
        EXPECT_EQ(w.file_bytes(), expected.size());
        EXPECT_EQ(w.header_bytes(), raw.data_offset());

        const auto f = gguf::File::open(path.string());
        EXPECT_EQ(f.alignment(), alignment);
        EXPECT_EQ(f.shards()[0].data_offset, raw.data_offset());
        EXPECT_EQ(f.shards()[0].data_offset % alignment, 0u);
        EXPECT_EQ(f.file_bytes(), expected.size());
        for (size_t k = 0; k < specs.size(); ++k) {
            const gguf::Tensor& t = f.tensor(specs[k].name);
            EXPECT_EQ(t.offset, offsets[k]);
            EXPECT_EQ(t.file_offset, raw.data_offset() + offsets[k]);
            EXPECT_EQ(t.nbytes, specs[k].nbytes);
            EXPECT_EQ(0, std::memcmp(t.data, expected.data() + t.file_offset, t.nbytes));
        }
    }
}

TEST(GgufRoundTrip, AlignmentKeySetLaterRelaysTheTensors) {
    test::TempDir dir;
    gguf::Writer w;
    const Bytes a = random_bytes(12, 1), b = random_bytes(20, 2);
    w.add_tensor("a", quant::Type::F32, {3}, a);
    w.add_tensor("b", quant::Type::F32, {5}, b);
    w.set_u32("general.alignment", 128);
    w.write((dir / "x.gguf").string());
    auto f = gguf::File::open((dir / "x.gguf").string());
    EXPECT_EQ(f.alignment(), 128u);
    EXPECT_EQ(f.tensor("b").offset, 128u);
    w.remove("general.alignment");
    w.write((dir / "y.gguf").string());
    f = gguf::File::open((dir / "y.gguf").string());
    EXPECT_EQ(f.alignment(), 32u);
    EXPECT_EQ(f.tensor("b").offset, 32u);
    EXPECT_FALSE(f.has("general.alignment"));
}

// Every tensor type ggml defines, at ranks 1 to 4, with random data.
TEST(GgufRoundTrip, EveryTensorTypeAtEveryRank) {
    test::TempDir dir;
    gguf::Writer w;
    RawGguf raw;
    struct Expect {
        std::string name;
        uint32_t type;
        std::vector<int64_t> ne;
        uint64_t offset;
        Bytes data;
    };
    std::vector<Expect> expect;
    uint64_t offset = 0;
    int seed = 0;
    for (const GgmlType& g : kGgmlTypes) {
        ASSERT_TRUE(quant::is_known(g.id)) << g.id;
        for (int rank = 1; rank <= 4; ++rank) {
            std::vector<int64_t> ne = {g.block * 2, 3, 2, 5};
            ne.resize(static_cast<size_t>(rank));
            uint64_t rows = 1;
            for (int d = 1; d < rank; ++d) rows *= static_cast<uint64_t>(ne[d]);
            const uint64_t nbytes = 2 * g.bytes * rows;
            Expect e{fmt::format("t{}.r{}", g.id, rank), g.id, ne, offset,
                     random_bytes(nbytes, static_cast<uint32_t>(++seed))};
            w.add_tensor(e.name, static_cast<quant::Type>(g.id), ne, e.data);
            raw.tensor(e.name, std::vector<uint64_t>(ne.begin(), ne.end()), g.id, offset);
            raw.data.insert(raw.data.end(), e.data.begin(), e.data.end());
            offset = pad(offset + nbytes, 32);
            raw.data.resize(offset, 0);
            expect.push_back(std::move(e));
        }
    }
    w.write((dir / "q.gguf").string());
    EXPECT_EQ(file_bytes(dir / "q.gguf"), raw.bytes());

    const auto f = gguf::File::open((dir / "q.gguf").string());
    ASSERT_EQ(f.tensors().size(), expect.size());
    for (size_t k = 0; k < expect.size(); ++k) {
        const gguf::Tensor& t = f.tensors()[k];
        const Expect& e = expect[k];
        SCOPED_TRACE(e.name);
        EXPECT_EQ(t.name, e.name);
        EXPECT_EQ(static_cast<uint32_t>(t.type), e.type);
        ASSERT_EQ(t.n_dims, static_cast<int>(e.ne.size()));
        for (int d = 0; d < 4; ++d)
            EXPECT_EQ(t.ne[d], d < t.n_dims ? e.ne[static_cast<size_t>(d)] : 1);
        EXPECT_EQ(t.offset, e.offset);
        EXPECT_EQ(t.nbytes, e.data.size());
        EXPECT_EQ(t.row_bytes() * static_cast<uint64_t>(t.n_rows()), e.data.size());
        EXPECT_EQ(0, std::memcmp(t.data, e.data.data(), e.data.size()));
        EXPECT_EQ(f.find_tensor(e.name), &t);
    }
    EXPECT_EQ(f.find_tensor("nope"), nullptr);
    EXPECT_THROW(f.tensor("nope"), Error);
}

// Tensors without data are holes: they read as zeros and take no disk space.
TEST(GgufRoundTrip, SparseTensorsReadAsZerosAndStaySparse) {
    test::TempDir dir;
    gguf::Writer w;
    const int64_t big = int64_t{64} << 20;  // 64 Mi elements of I8 = 64 MiB of hole
    w.add_tensor("hole", quant::Type::I8, {big}, gguf::Writer::Fill{});
    const Bytes tail = random_bytes(4 * 8, 9);
    w.add_tensor("tail", quant::Type::F32, {8}, tail);
    w.add_tensor("hole2", quant::Type::Q4_K, {256, 4}, gguf::Writer::Fill{});
    const auto path = dir / "sparse.gguf";
    w.write(path.string());

    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), w.file_bytes());
    EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, uint64_t{8} << 20)
        << "the data-less tensor should be a hole, not written zeros";

    const auto f = gguf::File::open(path.string());
    const gguf::Tensor& hole = f.tensor("hole");
    EXPECT_EQ(hole.nbytes, static_cast<uint64_t>(big));
    for (uint64_t k = 0; k < hole.nbytes; k += 4096 * 7) ASSERT_EQ(hole.data[k], 0);
    EXPECT_EQ(hole.data[hole.nbytes - 1], 0);
    EXPECT_EQ(0, std::memcmp(f.tensor("tail").data, tail.data(), tail.size()));
    EXPECT_EQ(f.tensor("hole2").nbytes, 4u * 144u);
}

// Shards as llama-gguf-split writes them: all metadata in the first, then split.no (u16),
// split.count (u16) and split.tensors.count (i32) in every shard, each with its own data section.
struct ShardedModel {
    std::vector<std::string> paths;
    std::vector<std::vector<std::string>> names;  // tensor names per shard
    std::map<std::string, Bytes> data;
};

ShardedModel write_split(const std::filesystem::path& dir, const std::string& prefix,
                         const std::vector<size_t>& per_shard, uint32_t alignment = 32) {
    ShardedModel m;
    size_t total = 0;
    for (size_t n : per_shard) total += n;
    const auto count = static_cast<uint16_t>(per_shard.size());
    size_t next = 0;
    for (uint16_t s = 0; s < count; ++s) {
        gguf::Writer w(alignment);
        if (s == 0) {
            w.set_str("general.architecture", "llama");
            w.set_u32("llama.block_count", 7);
            w.set_str_array("tokenizer.ggml.tokens", {"a", "b"});
        }
        w.set_u16("split.no", s);
        w.set_u16("split.count", count);
        w.set_i32("split.tensors.count", static_cast<int32_t>(total));
        m.names.emplace_back();
        for (size_t k = 0; k < per_shard[s]; ++k, ++next) {
            const std::string name = fmt::format("blk.{}.w", next);
            const int64_t cols = 32 * static_cast<int64_t>(next % 3 + 1);
            Bytes data = random_bytes(static_cast<size_t>(cols) * 2 * 34 / 32,
                                      static_cast<uint32_t>(next + 100));
            w.add_tensor(name, quant::Type::Q8_0, {cols, 2}, data);
            m.names.back().push_back(name);
            m.data[name] = std::move(data);
        }
        m.paths.push_back((dir / gguf::split_path(prefix, s, count)).string());
        w.write(m.paths.back());
    }
    return m;
}

TEST(GgufRoundTrip, SplitModelOpensFromTheFirstShard) {
    test::TempDir dir;
    for (bool empty_first : {false, true}) {
        SCOPED_TRACE(empty_first);
        // llama-gguf-split --no-tensor-first-split leaves the first shard metadata-only.
        const std::vector<size_t> per_shard =
            empty_first ? std::vector<size_t>{0, 3, 2} : std::vector<size_t>{2, 3, 1, 4};
        const std::string prefix = empty_first ? "empty" : "model";
        const ShardedModel m = write_split(dir.path(), prefix, per_shard, empty_first ? 64 : 32);
        EXPECT_EQ(std::filesystem::path(m.paths[1]).filename(),
                  fmt::format("{}-00002-of-{:05d}.gguf", prefix, per_shard.size()));

        const auto f = gguf::File::open(m.paths[0]);
        ASSERT_EQ(f.shards().size(), per_shard.size());
        EXPECT_EQ(f.arch(), "llama");
        EXPECT_EQ(f.get_u32("llama.block_count"), 7u);
        EXPECT_EQ(f.find("split.no")->type, ValueType::UINT16);
        EXPECT_EQ(f.find("split.count")->type, ValueType::UINT16);
        EXPECT_EQ(f.find("split.tensors.count")->type, ValueType::INT32);
        uint64_t total_bytes = 0;
        for (size_t s = 0; s < m.paths.size(); ++s) {
            EXPECT_EQ(f.shards()[s].path, m.paths[s]);
            total_bytes += std::filesystem::file_size(m.paths[s]);
            for (const std::string& name : m.names[s]) {
                const gguf::Tensor& t = f.tensor(name);
                EXPECT_EQ(t.shard, s);
                EXPECT_EQ(t.file_offset % f.alignment(), 0u);
                EXPECT_EQ(t.file_offset, f.shards()[s].data_offset + t.offset);
                const Bytes& want = m.data.at(name);
                ASSERT_EQ(t.nbytes, want.size());
                EXPECT_EQ(0, std::memcmp(t.data, want.data(), want.size()));
            }
        }
        EXPECT_EQ(f.tensors().size(), m.data.size());
        EXPECT_EQ(f.file_bytes(), total_bytes);
    }
}

TEST(GgufSplitPath, NamesAndParses) {
    EXPECT_EQ(gguf::split_path("/m/DeepSeek-R1-Q4_K_M", 0, 9),
              "/m/DeepSeek-R1-Q4_K_M-00001-of-00009.gguf");
    const auto n = gguf::parse_split_path("/m/x-y-00003-of-00009.gguf");
    ASSERT_TRUE(n);
    EXPECT_EQ(n->prefix, "/m/x-y");
    EXPECT_EQ(n->index, 2u);
    EXPECT_EQ(n->count, 9u);
    for (const char* bad :
         {"x-00000-of-00002.gguf", "x-00003-of-00002.gguf", "x-0001-of-0002.gguf",
          "x-00001-of-00002.bin", "-00001-of-00002.gguf", "x-000a1-of-00002.gguf", "x.gguf", ""}) {
        EXPECT_FALSE(gguf::parse_split_path(bad)) << bad;
    }
}

TEST(GgufWriter, KeysKeepFirstOrderAndReplace) {
    test::TempDir dir;
    gguf::Writer w;
    w.set_u32("a", 1);
    w.set_str("b", "x");
    w.set_u32("a", 2);  // replaced in place
    EXPECT_TRUE(w.has("b"));
    w.remove("b");
    EXPECT_FALSE(w.has("b"));
    w.set_str("c", "y");
    w.write((dir / "k.gguf").string());
    const auto f = gguf::File::open((dir / "k.gguf").string());
    ASSERT_EQ(f.metadata().size(), 2u);
    EXPECT_EQ(f.metadata()[0].key, "a");
    EXPECT_EQ(f.get_u32("a"), 2u);
    EXPECT_EQ(f.metadata()[1].key, "c");
}

TEST(GgufWriter, ProgressReachesTheTotal) {
    test::TempDir dir;
    gguf::Writer w;
    const Bytes a = random_bytes(400, 1);
    w.add_tensor("a", quant::Type::F32, {100}, a);
    w.add_tensor("b", quant::Type::F32, {10}, gguf::Writer::Fill{});
    std::vector<uint64_t> seen;
    w.write((dir / "p.gguf").string(), [&](uint64_t done, uint64_t total) {
        EXPECT_EQ(total, w.file_bytes());
        seen.push_back(done);
    });
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_LT(seen[0], seen[1]);
    EXPECT_LE(seen[1], w.file_bytes());
}

// The writer refuses what the reader (or llama.cpp) would, and leaves no file behind on failure.
TEST(GgufWriter, RefusesInvalidInput) {
    EXPECT_ERROR(gguf::Writer w(0), "not a power of two");
    EXPECT_ERROR(gguf::Writer w(48), "not a power of two");
    gguf::Writer w;
    EXPECT_ERROR(w.set_str("general.alignment", "64"), "UINT32");
    EXPECT_ERROR(w.set_u32("", 1), "empty");
    gguf::OwnedValue bad;
    bad.type = ValueType::ARRAY;
    bad.elem = ValueType::UINT32;
    bad.count = 3;
    bad.raw.resize(8);
    EXPECT_ERROR(w.set("k", bad), "count 3");
    bad.elem = ValueType::ARRAY;
    EXPECT_ERROR(w.set("k", bad), "arrays of ARRAY");
    const Bytes four(4);
    w.add_tensor("t", quant::Type::F32, {1}, four);
    EXPECT_ERROR(w.add_tensor("t", quant::Type::F32, {1}, four), "twice");
    EXPECT_ERROR(w.add_tensor("u", quant::Type::F32, {}, four), "dimensions");
    EXPECT_ERROR(w.add_tensor("u", quant::Type::F32, {1, 1, 1, 1, 1}, four), "dimensions");
    EXPECT_ERROR(w.add_tensor("u", quant::Type::F32, {-4}, four), "positive");
    EXPECT_ERROR(w.add_tensor("u", quant::Type::Q4_K, {128}, four),
                 "not a multiple of Q4_K's block size 256");
    EXPECT_ERROR(w.add_tensor("u", quant::Type::F32, {2}, four), "8 needed");
    EXPECT_ERROR(w.add_tensor(std::string(64, 'n'), quant::Type::F32, {1}, four), "1 to 63 bytes");
    EXPECT_ERROR(w.add_tensor("u", static_cast<quant::Type>(4), {1}, four), "unknown type");
    EXPECT_EQ(w.n_tensors(), 1u);

    test::TempDir dir;
    const auto path = dir / "missing-dir" / "x.gguf";
    EXPECT_ERROR(w.write(path.string()), "cannot create");
    EXPECT_FALSE(std::filesystem::exists(path));
    // A fill that throws leaves neither the file nor its temporary behind.
    gguf::Writer failing;
    failing.add_tensor("t", quant::Type::F32, {1}, [](uint8_t*, size_t) { fail("fill failed"); });
    EXPECT_ERROR(failing.write((dir / "f.gguf").string()), "fill failed");
    EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

// Typed accessors name the key, the type expected and the type found.
TEST(GgufAccessors, ErrorsNameKeyAndTypes) {
    test::TempDir dir;
    gguf::Writer w;
    w.set_str("s", "text");
    w.set_i32("neg", -5);
    w.set_u64("big", uint64_t{1} << 40);
    w.set_u64("huge", std::numeric_limits<uint64_t>::max());
    w.set_f64("d", 0.5);
    w.set_str_array("strs", {"a"});
    w.write((dir / "e.gguf").string());
    const auto f = gguf::File::open((dir / "e.gguf").string());
    EXPECT_ERROR(f.get_u32("s"), "key 's' is STRING, expected UINT32");
    EXPECT_ERROR(f.get_u32("missing"), "missing key 'missing'");
    EXPECT_ERROR(f.get_u32("neg"), "-5, outside UINT32");
    EXPECT_ERROR(f.get_u64("neg"), "'neg'");
    EXPECT_ERROR(f.get_u32("big"), "outside UINT32");
    EXPECT_ERROR(f.get_i64("huge"), "outside INT64");
    EXPECT_ERROR(f.get_bool("s"), "expected BOOL");
    EXPECT_ERROR(f.get_str("neg"), "INT32, expected STRING");
    EXPECT_ERROR(f.get_str_array("s"), "expected ARRAY[STRING]");
    EXPECT_ERROR(f.get_i32_array("strs"), "ARRAY[STRING], expected ARRAY[INT32]");
    EXPECT_ERROR(f.get_f32("s"), "expected FLOAT32");
    EXPECT_EQ(f.get_i64("neg"), -5);
    EXPECT_EQ(f.get_u64("big"), uint64_t{1} << 40);
    EXPECT_EQ(f.get_f32("d"), 0.5f);
    EXPECT_EQ(f.get_u32_or("absent", 9), 9u);
    EXPECT_EQ(f.get_f32_or("absent", 1.5f), 1.5f);
    EXPECT_TRUE(f.get_bool_or("absent", true));
    EXPECT_EQ(f.get_str_or("absent", "z"), "z");
    EXPECT_THROW(f.get_u32_or("s", 9), Error);  // present with the wrong type still throws
    EXPECT_EQ(f.arch(), "");
}

}  // namespace
}  // namespace strata
