// libFuzzer target for the GGUF reader: parse the input as one file image; if it is accepted,
// call every accessor on every key and tensor and touch the first and last byte of every value
// and tensor, so that ASan sees any view that points outside the input. strata::Error is the
// only way a bad input may be refused: anything else (another exception, a crash, a sanitizer
// report, a broken invariant) is a finding.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/error.h"
#include "runtime/gguf.h"

namespace {

using strata::gguf::File;
using strata::gguf::Tensor;
using strata::gguf::Value;
using strata::gguf::ValueType;

// Reading through a volatile sink keeps the loads the compiler would otherwise drop.
volatile uint8_t g_sink;

void touch(const void* p, size_t n) {
    if (n == 0) return;
    const auto* b = static_cast<const uint8_t*>(p);
    g_sink = b[0];
    g_sink = b[n - 1];
}

// A broken invariant is a finding even when no sanitizer fires.
void check(bool ok) {
    if (!ok) std::abort();
}

bool inside(const uint8_t* p, uint64_t n, const uint8_t* data, size_t size) {
    return p >= data && p <= data + size && n <= static_cast<uint64_t>(data + size - p);
}

template <typename Fn>
void ignore_error(Fn&& fn) {
    try {
        fn();
    } catch (const strata::Error&) {
    }
}

void exercise_value(const File& f, std::string_view key, const Value& v, const uint8_t* data,
                    size_t size) {
    check(f.find(key) == &v);
    check(f.has(key));
    (void)v.type_string();
    (void)v.is_integer();
    if (v.type == ValueType::STRING) {
        check(inside(reinterpret_cast<const uint8_t*>(v.s.data()), v.s.size(), data, size));
        touch(v.s.data(), v.s.size());
    }
    if (v.type == ValueType::ARRAY) {
        if (v.elem == ValueType::STRING) {
            check(v.strings.size() == v.count);
            for (std::string_view s : v.strings) touch(s.data(), s.size());
        } else {
            const uint64_t bytes = v.count * strata::gguf::value_size(v.elem);
            check(v.raw != nullptr && inside(v.raw, bytes, data, size));
            touch(v.raw, bytes);
        }
    }
    // Every typed accessor, whatever the type: a mismatch must be an Error, never a bad read.
    ignore_error([&] { (void)f.get_u32(key); });
    ignore_error([&] { (void)f.get_u64(key); });
    ignore_error([&] { (void)f.get_i64(key); });
    ignore_error([&] { (void)f.get_f32(key); });
    ignore_error([&] { (void)f.get_bool(key); });
    ignore_error([&] { touch(f.get_str(key).data(), f.get_str(key).size()); });
    ignore_error([&] { (void)f.get_str_array(key).size(); });
    ignore_error([&] { (void)f.get_i32_array(key); });
    ignore_error([&] { (void)f.get_f32_array(key); });
    ignore_error([&] { (void)f.get_u32_or(key, 0); });
    ignore_error([&] { (void)f.get_f32_or(key, 0.0f); });
    ignore_error([&] { (void)f.get_bool_or(key, false); });
    ignore_error([&] { (void)f.get_str_or(key, ""); });
}

void exercise_tensor(const File& f, const Tensor& t, const uint8_t* data, size_t size) {
    check(f.find_tensor(t.name) == &t);
    check(&f.tensor(t.name) == &t);
    check(t.n_dims >= 1 && t.n_dims <= strata::gguf::kMaxDims);
    for (int64_t ne : t.ne) check(ne >= 1);
    check(t.nbytes > 0 && t.nbytes == t.row_bytes() * static_cast<uint64_t>(t.n_rows()));
    check(t.file_offset % f.alignment() == 0);
    check(t.data == data + t.file_offset && inside(t.data, t.nbytes, data, size));
    (void)t.shape_string();
    (void)t.n_elements();
    touch(t.data, t.nbytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const File f = File::parse("fuzz", data, size);
        check(f.version() == 2 || f.version() == 3);
        const uint32_t a = f.alignment();
        check(a != 0 && (a & (a - 1)) == 0);
        check(f.file_bytes() == size && f.shards().size() == 1);
        (void)f.arch();
        for (const auto& kv : f.metadata()) exercise_value(f, kv.key, kv.value, data, size);
        for (const Tensor& t : f.tensors()) exercise_tensor(f, t, data, size);
        // No two tensors share a byte.
        std::vector<const Tensor*> order;
        for (const Tensor& t : f.tensors()) order.push_back(&t);
        std::sort(order.begin(), order.end(),
                  [](const Tensor* x, const Tensor* y) { return x->offset < y->offset; });
        for (size_t k = 1; k < order.size(); ++k)
            check(order[k - 1]->offset + order[k - 1]->nbytes <= order[k]->offset);
        ignore_error([&] { (void)f.tensor("\x01 no such tensor"); });
        ignore_error([&] { (void)f.get_u32("\x01 no such key"); });
    } catch (const strata::Error& e) {
        // Refused: the expected outcome for most inputs. The message is one line naming the file.
        const std::string_view msg = e.what();
        check(msg.rfind("fuzz: ", 0) == 0 && msg.find_first_of("\r\n") == std::string_view::npos);
    }
    return 0;
}
