// GGUF: reader (memory-mapped, split files, every number checked) and writer.
//
// Format (versions 2 and 3, little-endian):
//   "GGUF" u32 version, u64 n_tensors, u64 n_kv,
//   n_kv × (string key, u32 value type, value),
//   n_tensors × (string name, u32 n_dims, n_dims × u64 ne, u32 ggml type, u64 offset),
//   padding to general.alignment (default 32), then the tensor data; offsets are relative to it.
// A string is a u64 length and that many bytes; an array is a u32 element type, a u64 count
// and the elements. Split models (llama-gguf-split) are NAME-0000k-of-0000n.gguf with the keys
// split.no, split.count and split.tensors.count; each shard has its own data section.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "simd/quant.h"

namespace strata::gguf {

enum class ValueType : uint32_t {
    UINT8 = 0,
    INT8 = 1,
    UINT16 = 2,
    INT16 = 3,
    UINT32 = 4,
    INT32 = 5,
    FLOAT32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    UINT64 = 10,
    INT64 = 11,
    FLOAT64 = 12,
};
inline constexpr uint32_t kValueTypeCount = 13;
std::string_view type_name(ValueType type);
// Bytes of one element of a fixed-size type; 0 for STRING and ARRAY.
size_t value_size(ValueType type);

inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr int kMaxDims = 4;

// A metadata value as read from a file. Strings point into the mapping (valid while the File
// lives).
struct Value {
    ValueType type = ValueType::UINT8;
    uint64_t u = 0;      // UINT*, and BOOL as 0 / 1
    int64_t i = 0;       // INT*
    double f = 0.0;      // FLOAT32 / FLOAT64
    std::string_view s;  // STRING
    // ARRAY
    ValueType elem = ValueType::UINT8;
    uint64_t count = 0;
    const uint8_t* raw = nullptr;           // fixed-size elements, little-endian, as stored
    std::vector<std::string_view> strings;  // STRING elements

    bool is_integer() const;
    // "UINT32", or "ARRAY[STRING]" for arrays.
    std::string type_string() const;
};

struct KeyValue {
    std::string_view key;
    Value value;
};

struct Tensor {
    std::string_view name;
    quant::Type type = quant::Type::F32;
    int n_dims = 0;
    std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};  // ne[0] is the contiguous row length
    uint64_t offset = 0;                           // from the start of its shard's data section
    uint64_t file_offset = 0;                      // from the start of its shard file
    uint64_t nbytes = 0;
    uint32_t shard = 0;
    const uint8_t* data = nullptr;  // into the mapping of its shard
    // Rows regrouped sixteen at a time in the mapping for the interleaved kernels
    // (simd/repack.h). Set by runtime/interleave.h when it rewrites the bytes, once per model,
    // before a forward pass reads them.
    mutable bool interleaved = false;
    // Of a stack regrouped slab by slab (a GPU tier's expert slabs keep the file's rows, so that
    // their pages can be handed back): slab i2 of ne[2] is regrouped. Empty: `interleaved` holds
    // for every slab.
    mutable std::vector<bool> interleaved_slabs;

    // Whether slab i2 (of ne[2]) is regrouped.
    bool slab_interleaved(int64_t i2) const {
        return interleaved_slabs.empty() ? interleaved : interleaved_slabs[static_cast<size_t>(i2)];
    }

    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
    size_t row_bytes() const { return quant::row_bytes(type, ne[0]); }
    // "[256, 512, 8]"
    std::string shape_string() const;
};

struct Shard {
    std::string path;
    uint64_t file_bytes = 0;
    uint64_t data_offset = 0;  // where the data section starts
    uint32_t version = 0;
};

class Mapping;

// An opened GGUF model: metadata from the first shard, tensors of all shards.
class File {
  public:
    // Opens `path` and, when it is the first shard of a split model, every other shard.
    static File open(const std::string& path);
    // Parses a single in-memory image (no split files); `name` is used in errors. The bytes must
    // outlive the File.
    static File parse(std::string name, const uint8_t* bytes, size_t size);

    File(File&&) noexcept;
    File& operator=(File&&) noexcept;
    ~File();

    const std::string& path() const { return shards_.front().path; }
    uint32_t version() const { return shards_.front().version; }
    uint32_t alignment() const { return alignment_; }
    const std::vector<Shard>& shards() const { return shards_; }
    uint64_t file_bytes() const;  // all shards together

    // Metadata, in file order.
    const std::vector<KeyValue>& metadata() const { return kv_; }
    const Value* find(std::string_view key) const;
    bool has(std::string_view key) const { return find(key) != nullptr; }
    // general.architecture, or "" when absent.
    std::string_view arch() const;

    // Typed accessors: a missing key or one of another type throws strata::Error naming the key,
    // the expected type and the type found. Integer accessors take any integer type whose value
    // fits; float accessors take FLOAT32 or FLOAT64.
    uint32_t get_u32(std::string_view key) const;
    uint64_t get_u64(std::string_view key) const;
    int64_t get_i64(std::string_view key) const;
    float get_f32(std::string_view key) const;
    bool get_bool(std::string_view key) const;
    std::string_view get_str(std::string_view key) const;
    const std::vector<std::string_view>& get_str_array(std::string_view key) const;
    std::vector<int32_t> get_i32_array(std::string_view key) const;
    std::vector<float> get_f32_array(std::string_view key) const;
    // The same, with a default for an absent key (a present key of the wrong type still throws).
    uint32_t get_u32_or(std::string_view key, uint32_t fallback) const;
    float get_f32_or(std::string_view key, float fallback) const;
    bool get_bool_or(std::string_view key, bool fallback) const;
    std::string_view get_str_or(std::string_view key, std::string_view fallback) const;

    // Tensors, in file order (shard by shard).
    const std::vector<Tensor>& tensors() const { return tensors_; }
    const Tensor* find_tensor(std::string_view name) const;
    const Tensor& tensor(std::string_view name) const;  // throws when absent
    // Whether the tensors' bytes are private file mappings of this File (open), rather than an
    // image the caller owns (parse).
    bool mapped() const { return !maps_.empty(); }

  private:
    File();
    [[noreturn]] void type_error(std::string_view key, const Value& v,
                                 std::string_view expected) const;
    const Value& require(std::string_view key, std::string_view expected) const;

    std::vector<Shard> shards_;
    std::vector<std::unique_ptr<Mapping>> maps_;
    std::vector<KeyValue> kv_;
    std::unordered_map<std::string_view, size_t> kv_index_;
    std::vector<Tensor> tensors_;
    std::unordered_map<std::string_view, size_t> tensor_index_;
    uint32_t alignment_ = kDefaultAlignment;
    friend class Parser;
};

// Shard file names as llama-gguf-split writes them: PREFIX-00001-of-00009.gguf (1-based).
std::string split_path(std::string_view prefix, uint32_t index, uint32_t count);
// The prefix and (0-based index, count) of a shard name, or nullopt when it is not one.
struct SplitName {
    std::string prefix;
    uint32_t index = 0;
    uint32_t count = 0;
};
std::optional<SplitName> parse_split_path(std::string_view path);

// A metadata value owned by the writer.
struct OwnedValue {
    ValueType type = ValueType::UINT8;
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0.0;
    std::string s;
    ValueType elem = ValueType::UINT8;
    uint64_t count = 0;
    std::vector<uint8_t> raw;          // fixed-size array elements, little-endian
    std::vector<std::string> strings;  // STRING array elements
};

// Writes a GGUF v3 file. Keys keep their first insertion order (setting a key again replaces its
// value); tensors are laid out in the order added, each padded to the alignment. Setting or
// removing general.alignment changes the alignment (it must be a UINT32 power of two). Values,
// keys and tensor names the reader (or llama.cpp) would refuse are refused with strata::Error.
class Writer {
  public:
    // Fills `dst` (nbytes) with a tensor's data; called once per tensor while writing.
    using Fill = std::function<void(uint8_t* dst, size_t nbytes)>;

    explicit Writer(uint32_t alignment = kDefaultAlignment);

    void set(std::string key, OwnedValue value);
    void set_u8(std::string key, uint8_t v);
    void set_i8(std::string key, int8_t v);
    void set_u16(std::string key, uint16_t v);
    void set_i16(std::string key, int16_t v);
    void set_u32(std::string key, uint32_t v);
    void set_i32(std::string key, int32_t v);
    void set_u64(std::string key, uint64_t v);
    void set_i64(std::string key, int64_t v);
    void set_f32(std::string key, float v);
    void set_f64(std::string key, double v);
    void set_bool(std::string key, bool v);
    void set_str(std::string key, std::string v);
    void set_str_array(std::string key, std::vector<std::string> v);
    void set_i32_array(std::string key, std::span<const int32_t> v);
    void set_u32_array(std::string key, std::span<const uint32_t> v);
    void set_f32_array(std::string key, std::span<const float> v);
    void set_bool_array(std::string key, std::span<const bool> v);
    // Copies one value read from a file.
    void set_value(std::string key, const Value& v);
    void remove(std::string_view key);
    bool has(std::string_view key) const;

    // `fill` null leaves the data a hole: the file is sparse and reads as zeros.
    void add_tensor(std::string name, quant::Type type, std::vector<int64_t> ne, Fill fill);
    // `data` is not copied: it must stay valid until the last write() returns.
    void add_tensor(std::string name, quant::Type type, std::vector<int64_t> ne,
                    std::span<const uint8_t> data);

    size_t n_tensors() const { return tensors_.size(); }
    uint64_t header_bytes() const;  // up to and including the padding before the data section
    uint64_t file_bytes() const;

    // Writes to PATH.tmp and renames it into place, so a failure (full disk, I/O error) leaves no
    // partial file behind. `progress`, when given, is called with (bytes written, total).
    void write(const std::string& path,
               const std::function<void(uint64_t, uint64_t)>& progress = nullptr) const;

  private:
    struct PendingTensor {
        std::string name;
        quant::Type type;
        std::vector<int64_t> ne;
        uint64_t nbytes = 0;
        uint64_t offset = 0;
        Fill fill;
    };
    std::vector<uint8_t> serialize_header() const;
    // Sets the padding and recomputes every tensor's offset.
    void set_alignment(uint32_t alignment);

    uint32_t alignment_;
    std::vector<std::pair<std::string, OwnedValue>> kv_;
    std::vector<PendingTensor> tensors_;
    uint64_t data_bytes_ = 0;
};

}  // namespace strata::gguf
