// KV cache allocation with its size checked before anything is allocated.
#include "runtime/kv_cache.h"

#include <unistd.h>

#include <limits>

#include "runtime/error.h"
#include "runtime/progress.h"

namespace strata {
namespace {

// Physical memory of this machine, or 0 when it cannot be read.
uint64_t physical_memory() {
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0) return 0;
    return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

}  // namespace

size_t KvLayout::bytes(int64_t n_ctx) const {
    constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
    const uint64_t width = static_cast<uint64_t>(k_width) + static_cast<uint64_t>(v_width);
    const uint64_t per_pos = width * sizeof(float);
    const uint64_t layers = static_cast<uint64_t>(n_layer);
    const uint64_t ctx = static_cast<uint64_t>(n_ctx);
    if (per_pos != 0 && (layers > kMax / per_pos || ctx > kMax / (layers * per_pos))) {
        fail("--ctx {}: the KV cache size overflows", n_ctx);
    }
    return static_cast<size_t>(per_pos * layers * ctx);
}

KvCache::KvCache(const KvLayout& layout, int64_t n_ctx) : layout_(layout), n_ctx_(n_ctx) {
    if (n_ctx <= 0) fail("--ctx is {}, expected a positive number of tokens", n_ctx);
    const size_t need = layout.bytes(n_ctx);
    const uint64_t ram = physical_memory();
    if (ram != 0 && need > ram) {
        fail("--ctx {}: the KV cache needs {} but this machine has {}", n_ctx, format_bytes(need),
             format_bytes(ram));
    }
    const size_t slots = static_cast<size_t>(layout.n_layer) * static_cast<size_t>(n_ctx);
    k_.assign(slots * static_cast<size_t>(layout.k_width), 0.0f);
    v_.assign(slots * static_cast<size_t>(layout.v_width), 0.0f);
}

}  // namespace strata
