// A byte-level GGUF builder for tests and fuzz seeds, written independently of gguf::Writer so
// that it can (a) check the writer's layout against a second encoding of the format and (b) build
// files the writer refuses to: wrong counts, unknown type ids, lying lengths, bad offsets.
//
// Encoding (little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv, the key-values
// (string key, u32 type, payload), the tensor infos (string name, u32 n_dims, u64 ne[n_dims],
// u32 ggml type, u64 offset), zero padding to the alignment, then the data section.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::test {

using Bytes = std::vector<uint8_t>;

// Little-endian encoders for payloads.
template <typename T>
void put(Bytes& out, T v) {
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &v, sizeof(T));
}
inline void put_str(Bytes& out, std::string_view s) {
    put<uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
}
template <typename T>
Bytes enc(T v) {
    Bytes b;
    put<T>(b, v);
    return b;
}
inline Bytes enc_str(std::string_view s) {
    Bytes b;
    put_str(b, s);
    return b;
}
// An array payload: element type, count, then `elements` as given (already encoded).
inline Bytes enc_array(uint32_t elem, uint64_t count, const Bytes& elements) {
    Bytes b;
    put<uint32_t>(b, elem);
    put<uint64_t>(b, count);
    b.insert(b.end(), elements.begin(), elements.end());
    return b;
}

// GGUF value type ids, spelled out here rather than taken from gguf.h on purpose.
namespace vt {
inline constexpr uint32_t U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
                          STR = 8, ARR = 9, U64 = 10, I64 = 11, F64 = 12;
}

class RawGguf {
  public:
    uint32_t magic = 0x46554747;  // "GGUF"
    uint32_t version = 3;
    std::optional<uint64_t> n_tensors_field;  // overrides the real count in the header
    std::optional<uint64_t> n_kv_field;
    uint64_t alignment = 32;  // padding before the data section (does not write the key)
    Bytes data;               // the data section, appended after the padding

    void kv(std::string_view key, uint32_t type, const Bytes& payload) {
        put_str(kvs_, key);
        put<uint32_t>(kvs_, type);
        kvs_.insert(kvs_.end(), payload.begin(), payload.end());
        ++n_kv_;
    }
    void kv_u16(std::string_view key, uint16_t v) { kv(key, vt::U16, enc(v)); }
    void kv_u32(std::string_view key, uint32_t v) { kv(key, vt::U32, enc(v)); }
    void kv_i32(std::string_view key, int32_t v) { kv(key, vt::I32, enc(v)); }
    void kv_str(std::string_view key, std::string_view v) { kv(key, vt::STR, enc_str(v)); }

    // A tensor info with whatever numbers the caller gives; `ne` holds n_dims entries unless
    // `n_dims` says otherwise.
    void tensor(std::string_view name, const std::vector<uint64_t>& ne, uint32_t type,
                uint64_t offset, std::optional<uint32_t> n_dims = std::nullopt) {
        put_str(tis_, name);
        put<uint32_t>(tis_, n_dims.value_or(static_cast<uint32_t>(ne.size())));
        for (uint64_t d : ne) put<uint64_t>(tis_, d);
        put<uint32_t>(tis_, type);
        put<uint64_t>(tis_, offset);
        ++n_tensors_;
    }

    // Bytes before the padding: header, key-values and tensor infos.
    size_t header_bytes() const { return 24 + kvs_.size() + tis_.size(); }
    size_t data_offset() const { return (header_bytes() + alignment - 1) / alignment * alignment; }

    Bytes bytes() const {
        Bytes out;
        put<uint32_t>(out, magic);
        put<uint32_t>(out, version);
        put<uint64_t>(out, n_tensors_field.value_or(n_tensors_));
        put<uint64_t>(out, n_kv_field.value_or(n_kv_));
        out.insert(out.end(), kvs_.begin(), kvs_.end());
        out.insert(out.end(), tis_.begin(), tis_.end());
        // llama.cpp and gguf-py pad even a file without tensors (vocab-only files end so).
        out.resize(data_offset(), 0);
        out.insert(out.end(), data.begin(), data.end());
        return out;
    }

  private:
    Bytes kvs_;  // encoded key-values
    Bytes tis_;  // encoded tensor infos
    uint64_t n_kv_ = 0;
    uint64_t n_tensors_ = 0;
};

}  // namespace strata::test
