// GGUF reader. Every count, length, offset and size read from a file is checked against the
// bytes that remain before it is used, so a hostile file can neither make us read out of bounds
// nor allocate memory out of proportion to its own size.
#include "runtime/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include "runtime/error.h"

namespace strata::gguf {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr size_t kMaxKeyBytes = 65535;
constexpr size_t kMaxTensorNameBytes = 255;
constexpr uint64_t kMaxKv = 65536;
// Smallest encodings, used to bound counts by the bytes left: a key-value is a string length,
// at least one key byte, a type and at least one value byte; a tensor entry is a name length, a
// name byte, n_dims, one dimension, a type and an offset.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorBytes = 8 + 1 + 4 + 8 + 4 + 8;

constexpr std::array<std::string_view, kValueTypeCount> kTypeNames = {
    "UINT8", "INT8",   "UINT16", "INT16",  "UINT32", "INT32",  "FLOAT32",
    "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64",  "FLOAT64"};

constexpr std::array<size_t, kValueTypeCount> kTypeSizes = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

template <typename T>
T load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

bool is_signed(ValueType t) {
    return t == ValueType::INT8 || t == ValueType::INT16 || t == ValueType::INT32 ||
           t == ValueType::INT64;
}

std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 80)) {
        const auto u = static_cast<unsigned char>(c);
        out += (u >= 0x20 && u < 0x7f) ? c : '?';
    }
    if (s.size() > 80) out += "...";
    return out;
}

}  // namespace

std::string_view type_name(ValueType type) {
    const auto id = static_cast<uint32_t>(type);
    return id < kValueTypeCount ? kTypeNames[id] : std::string_view("unknown");
}

size_t value_size(ValueType type) {
    const auto id = static_cast<uint32_t>(type);
    return id < kValueTypeCount ? kTypeSizes[id] : 0;
}

bool Value::is_integer() const {
    switch (type) {
        case ValueType::UINT8:
        case ValueType::INT8:
        case ValueType::UINT16:
        case ValueType::INT16:
        case ValueType::UINT32:
        case ValueType::INT32:
        case ValueType::UINT64:
        case ValueType::INT64:
            return true;
        default:
            return false;
    }
}

std::string Value::type_string() const {
    if (type != ValueType::ARRAY) return std::string(type_name(type));
    return fmt::format("ARRAY[{}]", type_name(elem));
}

std::string Tensor::shape_string() const {
    std::string s = "[";
    for (int d = 0; d < n_dims; ++d) s += fmt::format("{}{}", d ? ", " : "", ne[d]);
    return s + "]";
}

// ---------------------------------------------------------------------------------------------
// A read-only mapping of a whole file.
class Mapping {
  public:
    explicit Mapping(const std::string& path) {
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
        struct stat st {};
        if (::fstat(fd_, &st) != 0) {
            const int e = errno;
            ::close(fd_);
            fail("{}: cannot stat: {}", path, std::strerror(e));
        }
        if (!S_ISREG(st.st_mode)) {
            ::close(fd_);
            fail("{}: not a regular file", path);
        }
        size_ = static_cast<size_t>(st.st_size);
        if (size_ == 0) return;
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
        if (p == MAP_FAILED) {
            const int e = errno;
            ::close(fd_);
            fail("{}: cannot map {} bytes: {}", path, size_, std::strerror(e));
        }
        data_ = static_cast<const uint8_t*>(p);
    }
    ~Mapping() {
        if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
        if (fd_ >= 0) ::close(fd_);
    }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }

  private:
    int fd_ = -1;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Parses one shard image into a File. Reads go through take(), which checks the remaining bytes.
class Parser {
  public:
    Parser(File& file, std::string name, const uint8_t* bytes, size_t size, uint32_t shard)
        : file_(file), name_(std::move(name)), base_(bytes), size_(size), shard_(shard) {}

    // Parses the header and tensor table. The first shard contributes its metadata to the File;
    // later shards only their split keys (returned) and tensors.
    struct SplitKeys {
        std::optional<uint64_t> no, count, tensors;
        uint64_t n_tensors = 0;  // tensors in this shard
    };
    SplitKeys run() {
        const uint32_t version = read_preamble();
        const uint64_t n_tensors = read<uint64_t>("tensor count");
        const uint64_t n_kv = read<uint64_t>("metadata count");
        // Counts bound every allocation below, so they are held to what the file could encode.
        if (n_kv > remaining() / kMinKvBytes) {
            fail(
                "{}: metadata count {} is impossible: only {} bytes follow the header "
                "(truncated or corrupt file)",
                name_, n_kv, remaining());
        }
        // No real file has more than a few hundred keys; the cap keeps a hostile header of
        // millions of tiny entries (about 150 bytes of memory each) from costing gigabytes.
        if (n_kv > kMaxKv) {
            fail("{}: metadata count {} is more than {} (corrupt file?)", name_, n_kv, kMaxKv);
        }
        if (n_tensors > remaining() / kMinTensorBytes) {
            fail(
                "{}: tensor count {} is impossible: only {} bytes follow the header "
                "(truncated or corrupt file)",
                name_, n_tensors, remaining());
        }

        // Metadata. Shards after the first keep theirs local: only split.* and alignment matter.
        // Containers grow with validated entries only (no reservation from the counts), so a
        // file that lies about its counts costs memory for what it really holds.
        std::vector<KeyValue> kv;
        std::unordered_map<std::string_view, size_t> index;
        for (uint64_t k = 0; k < n_kv; ++k) {
            enter(Section::metadata, k, {});
            const std::string_view key = read_string("key", kMaxKeyBytes);
            if (key.empty()) fail("{}: {}: empty key", name_, where());
            entry_name_ = key;
            if (index.count(key)) fail("{}: duplicate key '{}'", name_, printable(key));
            const auto type = read_value_type("value type");
            Value v = read_value(type);
            index.emplace(key, kv.size());
            kv.push_back({key, std::move(v)});
        }
        enter(Section::header, 0, {});

        const uint32_t alignment = read_alignment(kv, index);
        SplitKeys split = read_split_keys(kv, index);
        split.n_tensors = n_tensors;

        // Tensor table.
        const size_t first_tensor = file_.tensors_.size();
        for (uint64_t t = 0; t < n_tensors; ++t) {
            enter(Section::tensors, t, {});
            Tensor info = read_tensor_info(alignment);
            info.shard = shard_;
            file_.tensor_index_.emplace(info.name, file_.tensors_.size());
            file_.tensors_.push_back(info);
        }
        enter(Section::header, 0, {});

        const uint64_t data_offset = place_tensors(first_tensor, n_tensors, alignment);
        file_.shards_.push_back({name_, size_, data_offset, version});
        if (shard_ == 0) {
            file_.kv_ = std::move(kv);
            file_.kv_index_ = std::move(index);
            file_.alignment_ = alignment;
        }
        return split;
    }

  private:
    // What is being read, for error messages. Kept as numbers and views and only formatted when
    // an error is raised, so that headers with millions of entries parse at full speed.
    enum class Section { header, metadata, tensors };

    void enter(Section s, uint64_t entry, std::string_view entry_name) {
        section_ = s;
        entry_ = entry;
        entry_name_ = entry_name;
    }

    std::string where() const {
        switch (section_) {
            case Section::metadata:
                return entry_name_.empty() ? fmt::format("metadata entry {}", entry_)
                                           : fmt::format("key '{}'", printable(entry_name_));
            case Section::tensors:
                return entry_name_.empty() ? fmt::format("tensor entry {}", entry_)
                                           : fmt::format("tensor '{}'", printable(entry_name_));
            case Section::header:
                break;
        }
        return "header";
    }

    // Magic and version; returns the version.
    uint32_t read_preamble() {
        if (size_ == 0) fail("{}: empty file (not a GGUF file)", name_);
        if (size_ < 4)
            fail("{}: not a GGUF file ({} bytes, too short for the magic)", name_, size_);
        const uint32_t magic = read<uint32_t>("magic");
        if (magic != kMagic) {
            fail("{}: not a GGUF file (magic {:02x} {:02x} {:02x} {:02x}, expected 'GGUF')", name_,
                 base_[0], base_[1], base_[2], base_[3]);
        }
        const uint32_t version = read<uint32_t>("version");
        // A big-endian file's small version number reads with its low 16 bits clear here.
        if (version != 0 && (version & 0xffffu) == 0) {
            fail(
                "{}: GGUF version {:#010x} looks byte-swapped: big-endian GGUF files are not "
                "supported",
                name_, version);
        }
        if (version == 0)
            fail("{}: invalid GGUF version 0 (versions 2 and 3 are supported)", name_);
        if (version == 1) fail("{}: GGUF version 1 is not supported (versions 2 and 3 are)", name_);
        if (version > 3) {
            fail("{}: GGUF version {} is newer than this reader (versions 2 and 3 are supported)",
                 name_, version);
        }
        return version;
    }

    // general.alignment: a UINT32 power of two, or the default when absent.
    uint32_t read_alignment(const std::vector<KeyValue>& kv,
                            const std::unordered_map<std::string_view, size_t>& index) const {
        auto it = index.find("general.alignment");
        if (it == index.end()) return kDefaultAlignment;
        const Value& v = kv[it->second].value;
        if (v.type != ValueType::UINT32)
            fail("{}: key 'general.alignment' is {}, expected UINT32", name_, v.type_string());
        if (v.u == 0 || (v.u & (v.u - 1)) != 0)
            fail("{}: general.alignment {} is not a power of two", name_, v.u);
        return static_cast<uint32_t>(v.u);
    }

    // split.no, split.count, split.tensors.count: any non-negative integer type (llama-gguf-split
    // writes u16, u16, i32), so a value of another type is refused here rather than ignored.
    SplitKeys read_split_keys(const std::vector<KeyValue>& kv,
                              const std::unordered_map<std::string_view, size_t>& index) const {
        auto split_key = [&](std::string_view key) -> std::optional<uint64_t> {
            auto it = index.find(key);
            if (it == index.end()) return std::nullopt;
            const Value& v = kv[it->second].value;
            if (!v.is_integer() || (is_signed(v.type) && v.i < 0)) {
                fail("{}: key '{}' is {}{}, expected a non-negative integer", name_, key,
                     v.type_string(), v.is_integer() ? fmt::format(" {}", v.i) : "");
            }
            return v.u;
        };
        SplitKeys split;
        split.no = split_key("split.no");
        split.count = split_key("split.count");
        split.tensors = split_key("split.tensors.count");
        return split;
    }

    Tensor read_tensor_info(uint32_t alignment) {
        Tensor info;
        info.name = read_string("name", kMaxTensorNameBytes);
        if (info.name.empty()) fail("{}: {}: empty tensor name", name_, where());
        entry_name_ = info.name;
        const std::string name = printable(info.name);
        if (file_.tensor_index_.count(info.name)) fail("{}: duplicate tensor '{}'", name_, name);
        const uint32_t n_dims = read<uint32_t>("dimension count");
        if (n_dims == 0 || n_dims > kMaxDims) {
            fail("{}: tensor '{}' has {} dimensions (1 to {} allowed)", name_, name, n_dims,
                 kMaxDims);
        }
        info.n_dims = static_cast<int>(n_dims);
        int64_t n_elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t ne = read<uint64_t>("dimension");
            if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
                fail("{}: tensor '{}' dimension {} is {} (must be positive)", name_, name, d,
                     static_cast<int64_t>(ne));
            }
            info.ne[d] = static_cast<int64_t>(ne);
            if (__builtin_mul_overflow(n_elements, info.ne[d], &n_elements)) {
                fail("{}: tensor '{}' element count overflows (shape {})", name_, name,
                     info.shape_string());
            }
        }
        const uint32_t type_id = read<uint32_t>("type");
        if (!quant::is_known(type_id)) {
            fail("{}: tensor '{}' has unknown ggml type id {}", name_, name,
                 static_cast<int32_t>(type_id));
        }
        info.type = static_cast<quant::Type>(type_id);
        const quant::TypeTraits& tt = quant::traits(info.type);
        if (info.ne[0] % tt.block_size != 0) {
            fail("{}: tensor '{}' row length {} is not a multiple of {}'s block size {}", name_,
                 name, info.ne[0], tt.name, tt.block_size);
        }
        // nbytes = blocks × block bytes; the block count divides exactly since ne[0] does.
        const uint64_t blocks = static_cast<uint64_t>(n_elements / tt.block_size);
        if (__builtin_mul_overflow(blocks, static_cast<uint64_t>(tt.block_bytes), &info.nbytes)) {
            fail("{}: tensor '{}' byte size overflows ({} blocks of {} bytes)", name_, name, blocks,
                 tt.block_bytes);
        }
        info.offset = read<uint64_t>("data offset");
        if (info.offset % alignment != 0) {
            fail("{}: tensor '{}' offset {} is not a multiple of the alignment {}", name_, name,
                 info.offset, alignment);
        }
        return info;
    }

    // The data section starts at the aligned end of the header; every tensor must lie inside it
    // and none may overlap another. Sets each tensor's file offset and data pointer.
    uint64_t place_tensors(size_t first_tensor, uint64_t n_tensors, uint32_t alignment) {
        uint64_t data_offset = pos_;
        if (data_offset % alignment) data_offset += alignment - data_offset % alignment;
        if (n_tensors > 0 && data_offset > size_) {
            fail("{}: truncated: the data section should start at byte {} but the file has {}",
                 name_, data_offset, size_);
        }
        const uint64_t data_bytes = n_tensors > 0 ? size_ - data_offset : 0;
        std::vector<size_t> order;
        order.reserve(static_cast<size_t>(n_tensors));
        for (size_t t = first_tensor; t < file_.tensors_.size(); ++t) {
            Tensor& info = file_.tensors_[t];
            uint64_t end = 0;
            if (__builtin_add_overflow(info.offset, info.nbytes, &end) || end > data_bytes) {
                fail(
                    "{}: tensor '{}' ({} bytes at data offset {}) lies past the end of the file "
                    "(data section is {} bytes)",
                    name_, printable(info.name), info.nbytes, info.offset, data_bytes);
            }
            info.file_offset = data_offset + info.offset;
            info.data = base_ + info.file_offset;
            order.push_back(t);
        }
        // Sorted by start, any overlap shows between neighbours.
        std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            return file_.tensors_[a].offset < file_.tensors_[b].offset;
        });
        for (size_t k = 1; k < order.size(); ++k) {
            const Tensor& prev = file_.tensors_[order[k - 1]];
            const Tensor& next = file_.tensors_[order[k]];
            if (next.offset < prev.offset + prev.nbytes) {
                fail(
                    "{}: tensors '{}' (bytes {}..{}) and '{}' (from byte {}) overlap in the data "
                    "section",
                    name_, printable(prev.name), prev.offset, prev.offset + prev.nbytes,
                    printable(next.name), next.offset);
            }
        }
        return data_offset;
    }

    uint64_t remaining() const { return size_ - pos_; }

    [[noreturn]] void truncated(std::string_view what, uint64_t need) const {
        fail("{}: truncated in {}: {} needs {} bytes at offset {}, {} left", name_, where(), what,
             need, pos_, remaining());
    }

    const uint8_t* take(uint64_t n, std::string_view what) {
        if (n > remaining()) truncated(what, n);
        const uint8_t* p = base_ + pos_;
        pos_ += n;
        return p;
    }

    template <typename T>
    T read(std::string_view what) {
        return load<T>(take(sizeof(T), what));
    }

    std::string_view read_string(std::string_view what, uint64_t max_bytes) {
        const uint64_t len = read<uint64_t>(what);
        if (len > remaining()) {
            fail("{}: {}: {} length {} runs past the end of the file ({} bytes left)", name_,
                 where(), what, len, remaining());
        }
        if (len > max_bytes) {
            fail("{}: {}: {} of {} bytes is too long ({} at most)", name_, where(), what, len,
                 max_bytes);
        }
        const uint8_t* p = take(len, what);
        return {reinterpret_cast<const char*>(p), static_cast<size_t>(len)};
    }

    ValueType read_value_type(std::string_view what) {
        const uint32_t id = read<uint32_t>(what);
        if (id >= kValueTypeCount) {
            fail("{}: {}: unknown {} {} (0 to {} are defined)", name_, where(), what,
                 static_cast<int32_t>(id), kValueTypeCount - 1);
        }
        return static_cast<ValueType>(id);
    }

    void read_scalar(ValueType type, Value& v) {
        const uint8_t* p = take(value_size(type), type_name(type));
        switch (type) {
            case ValueType::UINT8:
                v.u = load<uint8_t>(p);
                v.i = static_cast<int64_t>(v.u);
                break;
            case ValueType::UINT16:
                v.u = load<uint16_t>(p);
                v.i = static_cast<int64_t>(v.u);
                break;
            case ValueType::UINT32:
                v.u = load<uint32_t>(p);
                v.i = static_cast<int64_t>(v.u);
                break;
            case ValueType::UINT64:
                v.u = load<uint64_t>(p);
                break;  // may not fit i: read u
            case ValueType::INT8:
                v.i = load<int8_t>(p);
                break;
            case ValueType::INT16:
                v.i = load<int16_t>(p);
                break;
            case ValueType::INT32:
                v.i = load<int32_t>(p);
                break;
            case ValueType::INT64:
                v.i = load<int64_t>(p);
                break;
            case ValueType::FLOAT32:
                v.f = load<float>(p);
                break;
            case ValueType::FLOAT64:
                v.f = load<double>(p);
                break;
            case ValueType::BOOL: {
                const uint8_t b = *p;
                if (b > 1) fail("{}: {}: BOOL holds {} (0 or 1 expected)", name_, where(), b);
                v.u = b;
                break;
            }
            default:
                break;
        }
        // Signed values also in u when non-negative, so integer accessors read one field.
        if (is_signed(type)) v.u = v.i >= 0 ? static_cast<uint64_t>(v.i) : 0;
    }

    Value read_value(ValueType type) {
        Value v;
        v.type = type;
        if (type == ValueType::STRING) {
            v.s = read_string("string", std::numeric_limits<uint64_t>::max());
            return v;
        }
        if (type != ValueType::ARRAY) {
            read_scalar(type, v);
            return v;
        }
        v.elem = read_value_type("array element type");
        if (v.elem == ValueType::ARRAY)
            fail("{}: {}: nested arrays are not supported", name_, where());
        v.count = read<uint64_t>("array length");
        if (v.elem == ValueType::STRING) {
            // Each string costs at least its 8-byte length, which bounds the reservation.
            if (v.count > remaining() / 8) {
                fail("{}: {}: array of {} strings cannot fit in the {} bytes left", name_, where(),
                     v.count, remaining());
            }
            v.strings.reserve(static_cast<size_t>(v.count));
            for (uint64_t k = 0; k < v.count; ++k) {
                v.strings.push_back(
                    read_string("array string", std::numeric_limits<uint64_t>::max()));
            }
            return v;
        }
        const size_t size = value_size(v.elem);
        if (v.count > remaining() / size) {
            fail("{}: {}: array of {} {} elements runs past the end of the file ({} bytes left)",
                 name_, where(), v.count, type_name(v.elem), remaining());
        }
        v.raw = take(v.count * size, "array data");
        if (v.elem == ValueType::BOOL) {
            for (uint64_t k = 0; k < v.count; ++k) {
                if (v.raw[k] > 1) {
                    fail("{}: {}: BOOL element {} holds {} (0 or 1 expected)", name_, where(), k,
                         v.raw[k]);
                }
            }
        }
        return v;
    }

    File& file_;
    std::string name_;
    const uint8_t* base_;
    uint64_t size_;
    uint64_t pos_ = 0;
    uint32_t shard_;
    Section section_ = Section::header;
    uint64_t entry_ = 0;
    std::string_view entry_name_;
};

// ---------------------------------------------------------------------------------------------

File::File() = default;
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

File File::parse(std::string name, const uint8_t* bytes, size_t size) {
    File file;
    Parser(file, std::move(name), bytes, size, 0).run();
    return file;
}

std::string split_path(std::string_view prefix, uint32_t index, uint32_t count) {
    return fmt::format("{}-{:05d}-of-{:05d}.gguf", prefix, index + 1, count);
}

std::optional<SplitName> parse_split_path(std::string_view path) {
    // PREFIX-NNNNN-of-MMMMM.gguf
    constexpr std::string_view kSuffix = ".gguf";
    constexpr size_t kTail = 1 + 5 + 4 + 5 + kSuffix.size();  // "-NNNNN-of-MMMMM.gguf"
    if (path.size() <= kTail) return std::nullopt;
    const std::string_view tail = path.substr(path.size() - kTail);
    auto digits = [](std::string_view s, uint32_t& out) {
        out = 0;
        for (char c : s) {
            if (c < '0' || c > '9') return false;
            out = out * 10 + static_cast<uint32_t>(c - '0');
        }
        return true;
    };
    SplitName n;
    uint32_t one_based = 0;
    if (tail[0] != '-' || tail.substr(6, 4) != "-of-" || tail.substr(15) != kSuffix ||
        !digits(tail.substr(1, 5), one_based) || !digits(tail.substr(10, 5), n.count) ||
        one_based == 0 || n.count == 0 || one_based > n.count) {
        return std::nullopt;
    }
    n.index = one_based - 1;
    n.prefix = std::string(path.substr(0, path.size() - kTail));
    return n;
}

File File::open(const std::string& path) {
    File file;
    file.maps_.push_back(std::make_unique<Mapping>(path));
    const Mapping& first = *file.maps_.back();
    const Parser::SplitKeys split = Parser(file, path, first.data(), first.size(), 0).run();

    // split.count 0 or 1 (or absent) is a whole model in one file, as llama.cpp reads it.
    const uint64_t count = split.count.value_or(1);
    const uint64_t no = split.no.value_or(0);
    if (count > 1 || no != 0) {
        // Shard names carry five digits and llama-gguf-split stores the count as u16.
        if (count > UINT16_MAX) fail("{}: split.count {} is more than 65535 shards", path, count);
        if (no >= count) fail("{}: split.no {} is not below split.count {}", path, no, count);
        if (no != 0) {
            fail(
                "{}: this is shard {} of {} (split.no {}); open the first shard, "
                "NAME-00001-of-{:05d}.gguf",
                path, no + 1, count, no, count);
        }
        const auto name = parse_split_path(path);
        if (!name) {
            fail(
                "{}: split.count is {} but the file name is not NAME-00001-of-{:05d}.gguf, so "
                "the other shards cannot be found",
                path, count, count);
        }
        if (name->index != 0 || name->count != count) {
            fail(
                "{}: the file name says shard {} of {} but its keys say shard 1 of {} "
                "(split.no 0, split.count {})",
                path, name->index + 1, name->count, count, count);
        }
        for (uint32_t k = 1; k < count; ++k) {
            const std::string shard_path =
                split_path(name->prefix, k, static_cast<uint32_t>(count));
            std::error_code ec;  // the throwing overload would escape as a non-strata error
            if (!std::filesystem::exists(shard_path, ec))
                fail("{}: missing shard {} of {}: {}", path, k + 1, count, shard_path);
            file.maps_.push_back(std::make_unique<Mapping>(shard_path));
            const Mapping& m = *file.maps_.back();
            const Parser::SplitKeys s = Parser(file, shard_path, m.data(), m.size(), k).run();
            if (!s.no || !s.count || *s.no != k || *s.count != count) {
                fail("{}: shard {} of {} has split.no {} and split.count {}, expected {} and {}",
                     shard_path, k + 1, count, s.no ? std::to_string(*s.no) : "(absent)",
                     s.count ? std::to_string(*s.count) : "(absent)", k, count);
            }
        }
    }
    if (split.tensors && *split.tensors != file.tensors_.size()) {
        fail("{}: split.tensors.count is {} but the {} shard(s) hold {} tensors", path,
             *split.tensors, file.shards_.size(), file.tensors_.size());
    }
    return file;
}

uint64_t File::file_bytes() const {
    uint64_t total = 0;
    for (const Shard& s : shards_) total += s.file_bytes;
    return total;
}

const Value* File::find(std::string_view key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kv_[it->second].value;
}

std::string_view File::arch() const {
    const Value* v = find("general.architecture");
    return v && v->type == ValueType::STRING ? v->s : std::string_view();
}

void File::type_error(std::string_view key, const Value& v, std::string_view expected) const {
    fail("{}: key '{}' is {}, expected {}", path(), key, v.type_string(), expected);
}

const Value& File::require(std::string_view key, std::string_view expected) const {
    const Value* v = find(key);
    if (!v) fail("{}: missing key '{}' ({})", path(), key, expected);
    return *v;
}

uint64_t File::get_u64(std::string_view key) const {
    const Value& v = require(key, "UINT64");
    if (!v.is_integer() || (is_signed(v.type) && v.i < 0))
        type_error(key, v, "a non-negative integer");
    return v.u;
}

uint32_t File::get_u32(std::string_view key) const {
    const Value& v = require(key, "UINT32");
    if (!v.is_integer() || (is_signed(v.type) && v.i < 0) || v.u > UINT32_MAX) {
        if (v.is_integer())
            fail("{}: key '{}' holds {}, outside UINT32", path(), key,
                 is_signed(v.type) ? std::to_string(v.i) : std::to_string(v.u));
        type_error(key, v, "UINT32");
    }
    return static_cast<uint32_t>(v.u);
}

int64_t File::get_i64(std::string_view key) const {
    const Value& v = require(key, "INT64");
    if (!v.is_integer()) type_error(key, v, "an integer");
    if (v.type == ValueType::UINT64) {
        if (v.u > static_cast<uint64_t>(INT64_MAX))
            fail("{}: key '{}' holds {}, outside INT64", path(), key, v.u);
        return static_cast<int64_t>(v.u);
    }
    return v.i;
}

float File::get_f32(std::string_view key) const {
    const Value& v = require(key, "FLOAT32");
    if (v.type != ValueType::FLOAT32 && v.type != ValueType::FLOAT64) type_error(key, v, "FLOAT32");
    return static_cast<float>(v.f);
}

bool File::get_bool(std::string_view key) const {
    const Value& v = require(key, "BOOL");
    if (v.type != ValueType::BOOL) type_error(key, v, "BOOL");
    return v.u != 0;
}

std::string_view File::get_str(std::string_view key) const {
    const Value& v = require(key, "STRING");
    if (v.type != ValueType::STRING) type_error(key, v, "STRING");
    return v.s;
}

const std::vector<std::string_view>& File::get_str_array(std::string_view key) const {
    const Value& v = require(key, "ARRAY[STRING]");
    if (v.type != ValueType::ARRAY || v.elem != ValueType::STRING)
        type_error(key, v, "ARRAY[STRING]");
    return v.strings;
}

std::vector<int32_t> File::get_i32_array(std::string_view key) const {
    const Value& v = require(key, "ARRAY[INT32]");
    if (v.type != ValueType::ARRAY) type_error(key, v, "ARRAY[INT32]");
    std::vector<int32_t> out(static_cast<size_t>(v.count));
    switch (v.elem) {
        case ValueType::INT32:
            for (size_t k = 0; k < out.size(); ++k) out[k] = load<int32_t>(v.raw + 4 * k);
            break;
        case ValueType::UINT32:  // token types are sometimes written unsigned
            for (size_t k = 0; k < out.size(); ++k) {
                const uint32_t u = load<uint32_t>(v.raw + 4 * k);
                if (u > static_cast<uint32_t>(INT32_MAX))
                    fail("{}: key '{}' element {} holds {}, outside INT32", path(), key, k, u);
                out[k] = static_cast<int32_t>(u);
            }
            break;
        case ValueType::INT8:
            for (size_t k = 0; k < out.size(); ++k) out[k] = load<int8_t>(v.raw + k);
            break;
        case ValueType::UINT8:
            for (size_t k = 0; k < out.size(); ++k) out[k] = load<uint8_t>(v.raw + k);
            break;
        default:
            type_error(key, v, "ARRAY[INT32]");
    }
    return out;
}

std::vector<float> File::get_f32_array(std::string_view key) const {
    const Value& v = require(key, "ARRAY[FLOAT32]");
    if (v.type != ValueType::ARRAY ||
        (v.elem != ValueType::FLOAT32 && v.elem != ValueType::FLOAT64))
        type_error(key, v, "ARRAY[FLOAT32]");
    std::vector<float> out(static_cast<size_t>(v.count));
    for (size_t k = 0; k < out.size(); ++k) {
        out[k] = v.elem == ValueType::FLOAT32 ? load<float>(v.raw + 4 * k)
                                              : static_cast<float>(load<double>(v.raw + 8 * k));
    }
    return out;
}

uint32_t File::get_u32_or(std::string_view key, uint32_t fallback) const {
    return has(key) ? get_u32(key) : fallback;
}
float File::get_f32_or(std::string_view key, float fallback) const {
    return has(key) ? get_f32(key) : fallback;
}
bool File::get_bool_or(std::string_view key, bool fallback) const {
    return has(key) ? get_bool(key) : fallback;
}
std::string_view File::get_str_or(std::string_view key, std::string_view fallback) const {
    return has(key) ? get_str(key) : fallback;
}

const Tensor* File::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const Tensor& File::tensor(std::string_view name) const {
    const Tensor* t = find_tensor(name);
    if (!t) fail("{}: missing tensor '{}'", path(), name);
    return *t;
}

}  // namespace strata::gguf
