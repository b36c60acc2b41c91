// The malformed-file corpus: single-file GGUF images built from one small valid file by
// mutation and truncation, each with the words its error message must contain. Shared by
// tests/gguf_malformed_test.cpp (which checks every one is refused, quickly, in little memory)
// and the fuzzer's seed generator.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tests/fuzz/gguf_builder.h"

namespace strata::test {

struct BadFile {
    std::string name;                 // a short identifier, usable as a file name
    Bytes bytes;                      // the file
    std::vector<std::string> expect;  // substrings the error message must contain
};

// The valid file every case starts from: scalars, a string array, an INT32 array and two
// tensors (F32 [8, 2] at 0, Q8_0 [32, 2] at 64). Each mutation edits one field of it.
struct BaseFile {
    std::string arch = "llama";
    uint32_t block_count = 2;
    bool with_alignment = false;
    uint32_t alignment = 32;
    std::vector<uint64_t> ne0 = {8, 2}, ne1 = {32, 2};
    uint32_t type0 = 0, type1 = 8;  // F32, Q8_0
    uint64_t off0 = 0, off1 = 64;
    std::string name0 = "token_embd.weight", name1 = "blk.0.attn_q.weight";
    // Extra key-values appended after the base ones: (key, type, payload).
    struct Extra {
        std::string key;
        uint32_t type;
        Bytes payload;
    };
    std::vector<Extra> extra;

    RawGguf build() const {
        RawGguf g;
        g.alignment = alignment;
        if (with_alignment) g.kv_u32("general.alignment", alignment);
        g.kv_str("general.architecture", arch);
        g.kv_u32("llama.block_count", block_count);
        Bytes tokens;
        for (const char* t : {"a", "bc", ""}) put_str(tokens, t);
        g.kv("tokenizer.ggml.tokens", vt::ARR, enc_array(vt::STR, 3, tokens));
        Bytes types;
        for (int32_t t : {1, 2, 3}) put<int32_t>(types, t);
        g.kv("tokenizer.ggml.token_type", vt::ARR, enc_array(vt::I32, 3, types));
        g.kv("tokenizer.ggml.add_bos_token", vt::BOOL, enc<uint8_t>(1));
        g.kv("llama.rope.freq_base", vt::F32, enc<float>(10000.0f));
        for (const Extra& e : extra) g.kv(e.key, e.type, e.payload);
        g.tensor(name0, ne0, type0, off0);
        g.tensor(name1, ne1, type1, off1);
        // 64 bytes of F32, 68 of Q8_0 padded to 96: a 160-byte data section of a byte pattern.
        g.data.resize(160);
        for (size_t k = 0; k < g.data.size(); ++k) g.data[k] = static_cast<uint8_t>(k * 7 + 3);
        return g;
    }
    Bytes bytes() const { return build().bytes(); }
};

// Where the fields of BaseFile{}.bytes() are, for patching bytes in place.
struct BaseLayout {
    size_t version = 4, n_tensors = 8, n_kv = 16;
    size_t first_key_len = 24;  // the length of "general.architecture"
    size_t tensor_infos = 0;    // first tensor info (its name length)
    size_t data_offset = 0;
    size_t size = 0;
    size_t data_end = 0;  // end of the last tensor's data (its padding follows)

    BaseLayout() {
        const RawGguf g = BaseFile{}.build();
        data_offset = g.data_offset();
        size = g.bytes().size();
        data_end = data_offset + 64 + 68;
        // Tensor infos: name (8 + 17), n_dims, 2 dims, type, offset = 65 bytes, then the second.
        tensor_infos = g.header_bytes() - (8 + 17 + 4 + 16 + 4 + 8) - (8 + 19 + 4 + 16 + 4 + 8);
    }
};

template <typename T>
Bytes patched(Bytes b, size_t at, T v) {
    std::memcpy(b.data() + at, &v, sizeof(T));
    return b;
}

inline std::vector<BadFile> malformed_corpus() {
    constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
    const Bytes base = BaseFile{}.bytes();
    const BaseLayout at;
    std::vector<BadFile> c;
    auto add = [&](std::string name, Bytes b, std::vector<std::string> expect) {
        c.push_back({std::move(name), std::move(b), std::move(expect)});
    };
    auto with = [](auto edit) {
        BaseFile f;
        edit(f);
        return f.bytes();
    };
    auto extra = [&](std::string key, uint32_t type, Bytes payload) {
        return with([&](BaseFile& f) { f.extra.push_back({key, type, payload}); });
    };

    // --- Header: magic and version.
    add("empty", {}, {"empty file"});
    add("magic-ggux", patched<uint32_t>(base, 0, 0x58554747), {"not a GGUF file", "47 47 55 58"});
    add("magic-ggjt", patched<uint32_t>(base, 0, 0x67676a74), {"not a GGUF file"});
    add("version-0", patched<uint32_t>(base, at.version, 0), {"version 0"});
    add("version-1", patched<uint32_t>(base, at.version, 1), {"version 1 is not supported"});
    add("version-4", patched<uint32_t>(base, at.version, 4), {"version 4 is newer"});
    add("version-max", patched<uint32_t>(base, at.version, 0xffffffffu), {"4294967295 is newer"});
    add("version-3-big-endian", patched<uint32_t>(base, at.version, 0x03000000), {"big-endian"});
    add("version-2-big-endian", patched<uint32_t>(base, at.version, 0x02000000), {"big-endian"});

    // --- Counts no file of this size could hold.
    for (uint64_t n : {kMax, kMax / 2 + 1, uint64_t{1} << 32, uint64_t{1000}}) {
        add("n-kv-" + std::to_string(n), patched<uint64_t>(base, at.n_kv, n),
            {"metadata count " + std::to_string(n) + " is impossible"});
        add("n-tensors-" + std::to_string(n), patched<uint64_t>(base, at.n_tensors, n),
            {"tensor count " + std::to_string(n) + " is impossible"});
    }

    {
        // Enough bytes for the count to be possible, but more keys than any model has.
        RawGguf g;
        g.n_kv_field = 70000;
        g.kv_str("general.architecture", "llama");
        g.data.assign(70000 * 14, 0);
        add("n-kv-over-cap", g.bytes(), {"metadata count 70000 is more than 65536"});
    }

    // --- Strings: lengths near 2^64 or past the end, empty or over-long keys and names.
    for (uint64_t len : {kMax, kMax - 7, kMax / 2 + 1, uint64_t{base.size()}}) {
        add("key-len-" + std::to_string(len), patched<uint64_t>(base, at.first_key_len, len),
            {"metadata entry 0", "key length " + std::to_string(len), "past the end"});
        add("name-len-" + std::to_string(len), patched<uint64_t>(base, at.tensor_infos, len),
            {"tensor entry 0", "name length " + std::to_string(len), "past the end"});
        add("string-len-" + std::to_string(len), extra("x.str", vt::STR, enc<uint64_t>(len)),
            {"key 'x.str'", "string length", "past the end"});
        Bytes elems;
        put_str(elems, "ok");
        put<uint64_t>(elems, len);
        add("array-string-len-" + std::to_string(len),
            extra("x.strs", vt::ARR, enc_array(vt::STR, 2, elems)),
            {"key 'x.strs'", "array string length", "past the end"});
    }
    add("key-empty", extra("", vt::U32, enc<uint32_t>(1)), {"metadata entry 6", "empty key"});
    add("key-too-long", extra(std::string(70000, 'k'), vt::U32, enc<uint32_t>(1)),
        {"key of 70000 bytes is too long"});
    add("name-empty", with([](BaseFile& f) { f.name1 = ""; }),
        {"tensor entry 1", "empty tensor name"});
    add("name-too-long", with([](BaseFile& f) { f.name1 = std::string(300, 'n'); }),
        {"name of 300 bytes is too long"});

    // --- Arrays: lengths whose byte size overflows or passes the end, bad element types.
    for (uint32_t elem : {vt::U8, vt::U32, vt::U64, vt::F64, vt::BOOL}) {
        for (uint64_t n : {kMax, kMax / 4 + 1, uint64_t{1} << 61, uint64_t{1000}}) {
            add("array-" + std::to_string(elem) + "-len-" + std::to_string(n),
                extra("x.arr", vt::ARR, enc_array(elem, n, enc<uint64_t>(0))),
                {"key 'x.arr'", "array of " + std::to_string(n), "past the end"});
        }
    }
    for (uint64_t n : {kMax, uint64_t{1} << 61, uint64_t{1000}}) {
        add("array-strings-len-" + std::to_string(n),
            extra("x.strs", vt::ARR, enc_array(vt::STR, n, enc_str("one"))),
            {"key 'x.strs'", "array of " + std::to_string(n) + " strings cannot fit"});
    }
    add("array-nested",
        extra("x.nested", vt::ARR, enc_array(vt::ARR, 1, enc_array(vt::U8, 1, {7}))),
        {"key 'x.nested'", "nested arrays"});
    for (uint32_t t : {13u, 0xffffffffu, 0x80000000u}) {
        const std::string shown = std::to_string(static_cast<int32_t>(t));
        add("array-elem-type-" + std::to_string(t),
            extra("x.arr", vt::ARR, enc_array(t, 1, enc<uint64_t>(0))),
            {"key 'x.arr'", "unknown array element type " + shown});
        add("value-type-" + std::to_string(t), extra("x.val", t, enc<uint64_t>(0)),
            {"key 'x.val'", "unknown value type " + shown});
    }

    // --- BOOL holds 0 or 1 only.
    for (uint8_t b : {uint8_t{2}, uint8_t{255}}) {
        add("bool-" + std::to_string(b), extra("x.flag", vt::BOOL, enc<uint8_t>(b)),
            {"key 'x.flag'", "BOOL holds " + std::to_string(b)});
    }
    add("bool-array", extra("x.flags", vt::ARR, enc_array(vt::BOOL, 3, {1, 0, 2})),
        {"key 'x.flags'", "BOOL element 2 holds 2"});

    // --- Keys of the wrong type or value.
    add("alignment-string", extra("general.alignment", vt::STR, enc_str("64")),
        {"'general.alignment' is STRING, expected UINT32"});
    add("alignment-u64", extra("general.alignment", vt::U64, enc<uint64_t>(64)),
        {"'general.alignment' is UINT64, expected UINT32"});
    add("alignment-i32", extra("general.alignment", vt::I32, enc<int32_t>(32)),
        {"'general.alignment' is INT32, expected UINT32"});
    add("alignment-array",
        extra("general.alignment", vt::ARR, enc_array(vt::U32, 1, enc<uint32_t>(32))),
        {"'general.alignment' is ARRAY[UINT32], expected UINT32"});
    for (uint32_t a : {0u, 3u, 48u, 0x80000001u}) {
        add("alignment-" + std::to_string(a), extra("general.alignment", vt::U32, enc<uint32_t>(a)),
            {"general.alignment " + std::to_string(a) + " is not a power of two"});
    }
    add("split-count-string", extra("split.count", vt::STR, enc_str("3")),
        {"'split.count' is STRING, expected a non-negative integer"});
    add("split-no-float", extra("split.no", vt::F32, enc<float>(0.0f)),
        {"'split.no' is FLOAT32, expected a non-negative integer"});
    add("split-tensors-negative", extra("split.tensors.count", vt::I32, enc<int32_t>(-1)),
        {"'split.tensors.count' is INT32 -1, expected a non-negative integer"});
    add("split-count-array", extra("split.count", vt::ARR, enc_array(vt::U16, 1, enc<uint16_t>(2))),
        {"'split.count' is ARRAY[UINT16]"});
    add("duplicate-key", extra("llama.block_count", vt::U32, enc<uint32_t>(3)),
        {"duplicate key 'llama.block_count'"});

    // --- Tensor shapes and types.
    for (uint32_t n : {0u, 5u, 0xffffffffu}) {
        // The dimension count lies; the dimensions that follow are read as what comes next.
        Bytes b = patched<uint32_t>(base, at.tensor_infos + 8 + 17, n);
        add("n-dims-" + std::to_string(n), b,
            {"tensor 'token_embd.weight' has " + std::to_string(n) + " dimensions (1 to 4"});
    }
    add("dim-zero", with([](BaseFile& f) {
            f.ne0 = {8, 0};
        }),
        {"tensor 'token_embd.weight' dimension 1 is 0 (must be positive)"});
    add("dim-negative", with([](BaseFile& f) {
            f.ne0 = {kMax, 2};
        }),
        {"dimension 0 is -1 (must be positive)"});
    add("dim-int64-min", with([](BaseFile& f) {
            f.ne0 = {uint64_t{1} << 63, 2};
        }),
        {"dimension 0 is -9223372036854775808"});
    add("elements-overflow-2d", with([](BaseFile& f) {
            f.ne0 = {uint64_t{1} << 32, uint64_t{1} << 32};
        }),
        {"tensor 'token_embd.weight' element count overflows"});
    add("elements-overflow-4d", with([](BaseFile& f) {
            f.ne0 = {1 << 16, 1 << 16, 1 << 16, 1 << 16};
        }),
        {"element count overflows"});
    add("bytes-overflow-f32", with([](BaseFile& f) { f.ne0 = {uint64_t{1} << 62}; }),
        {"tensor 'token_embd.weight' byte size overflows"});
    add("bytes-overflow-f64", with([](BaseFile& f) {
            f.type0 = 28;
            f.ne0 = {uint64_t{1} << 60, 2};
        }),
        {"byte size overflows"});
    add("bytes-huge-in-range", with([](BaseFile& f) {
            f.ne0 = {uint64_t{1} << 40, 1 << 20};
        }),
        {"lies past the end of the file"});
    add("row-not-block-multiple-q4k", with([](BaseFile& f) {
            f.ne1 = {128, 2};
            f.type1 = 12;
        }),
        {"tensor 'blk.0.attn_q.weight' row length 128 is not a multiple of Q4_K's block size 256"});
    add("row-not-block-multiple-q8", with([](BaseFile& f) {
            f.ne1 = {33, 2};
        }),
        {"row length 33 is not a multiple of Q8_0's block size 32"});
    for (uint32_t t : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 40u, 1000u, 0xffffffffu}) {
        add("ggml-type-" + std::to_string(t), with([&](BaseFile& f) { f.type1 = t; }),
            {"tensor 'blk.0.attn_q.weight' has unknown ggml type id " +
             std::to_string(static_cast<int32_t>(t))});
    }
    add("duplicate-tensor", with([](BaseFile& f) { f.name1 = f.name0; }),
        {"duplicate tensor 'token_embd.weight'"});

    // --- Offsets: misaligned, past the end, overlapping.
    add("offset-misaligned", with([](BaseFile& f) { f.off1 = 65; }),
        {"tensor 'blk.0.attn_q.weight' offset 65 is not a multiple of the alignment 32"});
    add("offset-misaligned-64", with([](BaseFile& f) {
            f.with_alignment = true;
            f.alignment = 64;
            f.off1 = 96;
        }),
        {"offset 96 is not a multiple of the alignment 64"});
    for (uint64_t off : {kMax - 31, kMax / 2 + 1, uint64_t{160}, uint64_t{128}}) {
        add("offset-past-end-" + std::to_string(off), with([&](BaseFile& f) { f.off1 = off; }),
            {"tensor 'blk.0.attn_q.weight'", "at data offset " + std::to_string(off),
             "lies past the end of the file"});
    }
    add("overlap", with([](BaseFile& f) { f.off1 = 32; }),
        {"tensors 'token_embd.weight'", "'blk.0.attn_q.weight'", "overlap"});
    add("overlap-same-offset", with([](BaseFile& f) { f.off1 = 0; }), {"overlap"});
    add("overlap-reversed", with([](BaseFile& f) { f.off0 = 64, f.off1 = 0; }), {"overlap"});

    // --- Truncation at every byte of the header and tensor table, and through the data up to
    // the end of the last tensor (its trailing padding may be missing, as llama.cpp allows).
    for (size_t n = 1; n < at.data_end; ++n) {
        std::vector<std::string> expect;
        if (n < 4)
            expect = {"too short for the magic"};
        else if (n < at.data_offset)
            expect = {"truncated"};
        else
            expect = {"lies past the end of the file"};
        add("truncated-" + std::to_string(n),
            Bytes(base.begin(), base.begin() + static_cast<long>(n)), expect);
    }
    return c;
}

}  // namespace strata::test
