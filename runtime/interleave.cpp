#include "runtime/interleave.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "runtime/error.h"
#include "runtime/progress.h"
#include "scheduler/hardware.h"
#include "simd/repack.h"

namespace strata {
namespace {

// Matrices the forward passes multiply (through simd::matmul) and never read by rows.
bool is_product_weight(std::string_view name) {
    if (name == "output.weight") return true;
    static constexpr std::array<std::string_view, 18> kSuffixes = {
        ".attn_q.weight",         ".attn_k.weight",       ".attn_v.weight",
        ".attn_output.weight",    ".attn_q_a.weight",     ".attn_q_b.weight",
        ".attn_kv_a_mqa.weight",  ".attn_k_b.weight",     ".attn_v_b.weight",
        ".ffn_gate.weight",       ".ffn_up.weight",       ".ffn_down.weight",
        ".ffn_gate_exps.weight",  ".ffn_up_exps.weight",  ".ffn_down_exps.weight",
        ".ffn_gate_shexp.weight", ".ffn_up_shexp.weight", ".ffn_down_shexp.weight"};
    for (std::string_view s : kSuffixes)
        if (name.size() > s.size() && name.substr(name.size() - s.size()) == s) return true;
    return false;
}

uintptr_t page_size() {
    return static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
}

void protect(uintptr_t begin, uintptr_t end, int prot) {
    const uintptr_t page = page_size();
    begin &= ~(page - 1);
    end = (end + page - 1) & ~(page - 1);
    if (::mprotect(reinterpret_cast<void*>(begin), end - begin, prot) != 0)
        fail("cannot regroup weights in memory: mprotect: {}", std::strerror(errno));
}

constexpr uintptr_t kHugePage = uintptr_t{2} << 20;

// Fresh anonymous memory of `bytes` (whole pages) whose address is congruent to `like` modulo
// 2 MiB, with transparent huge pages asked for: moved to `like` by mremap, its 2 MiB pages stay
// whole (the kernel moves a huge page only between 2 MiB-aligned addresses), so the regrouped
// weights are read through a fraction of the TLB entries 4 KiB pages need (a 1 GiB read on the
// AMD EPYC VM: 23.7-26.6 GB/s in 4 KiB pages, 28.4-32.4 in 2 MiB ones). Null when the memory
// cannot be had. The caller unmaps [base, base + bytes) piecewise, as it moves parts away.
uint8_t* map_congruent(uintptr_t like, size_t bytes) {
    const size_t over = bytes + kHugePage;
    void* m = ::mmap(nullptr, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    const auto raw = reinterpret_cast<uintptr_t>(m);
    const uintptr_t base = raw + ((like - raw) & (kHugePage - 1));
    if (base > raw) ::munmap(m, base - raw);
    if (raw + over > base + bytes)
        ::munmap(reinterpret_cast<void*>(base + bytes), raw + over - (base + bytes));
    ::madvise(reinterpret_cast<void*>(base), bytes, MADV_HUGEPAGE);  // a hint
    return reinterpret_cast<uint8_t*>(base);
}

// Regroups n_rows rows of tensor t from `data` (the whole tensor, or a run of its slabs). Their new
// bytes are built in fresh anonymous memory at the same offset within a page (and a huge page);
// that memory's whole pages then replace the tensor's whole pages of the mapping (mremap), and only
// the partial pages at its ends, shared with the neighbouring tensors, are written in place.
// Writing the mapping page by page instead costs a copy-on-write fault and a TLB shootdown per 4
// KiB (about 0.1 GB/s on a VM). False, with nothing changed, when the memory cannot be had.
bool regroup(const gguf::Tensor& t, const uint8_t* data, int64_t n_rows) {
    const uintptr_t page = page_size();
    const auto start = reinterpret_cast<uintptr_t>(data);
    const uintptr_t end = start + static_cast<size_t>(n_rows) * t.row_bytes();
    const uintptr_t lo = start & ~(page - 1), hi = (end + page - 1) & ~(page - 1);
    uint8_t* const m = map_congruent(lo, hi - lo);
    if (m == nullptr) return false;
    // The new byte of address a of the mapping.
    const auto at = [base = m, lo](uintptr_t a) { return base + (a - lo); };
    simd::interleave_rows(t.type, data, at(start), t.ne[0], n_rows);
    // The whole pages inside [start, end), then the rest written in place.
    const uintptr_t in_lo = (start + page - 1) & ~(page - 1), in_hi = end & ~(page - 1);
    struct Span {
        uintptr_t begin, end;
    };
    std::array<Span, 2> partial{{{start, end}, {end, end}}};
    std::array<Span, 2> left{{{lo, hi}, {hi, hi}}};  // of m, by mapping address, to unmap
    if (in_hi > in_lo) {
        void* from = at(in_lo);
        if (::mprotect(from, in_hi - in_lo, PROT_READ) != 0 ||
            ::mremap(from, in_hi - in_lo, in_hi - in_lo, MREMAP_MAYMOVE | MREMAP_FIXED,
                     reinterpret_cast<void*>(in_lo)) == MAP_FAILED) {
            ::munmap(m, hi - lo);
            return false;
        }
        partial = {{{start, in_lo}, {in_hi, end}}};
        left = {{{lo, in_lo}, {in_hi, hi}}};
    }
    for (const Span& p : partial) {
        if (p.begin == p.end) continue;
        protect(p.begin, p.end, PROT_READ | PROT_WRITE);
        std::memcpy(reinterpret_cast<void*>(p.begin), at(p.begin), p.end - p.begin);
        protect(p.begin, p.end, PROT_READ);
    }
    for (const Span& l : left)  // what was not moved
        if (l.begin != l.end) ::munmap(at(l.begin), l.end - l.begin);
    return true;
}

// Regroups the slabs of t marked in `slabs`, each run of consecutive ones in one piece, records
// which were (gguf::Tensor::interleaved, interleaved_slabs) and adds their bytes to *done. False
// when the memory for a run could not be had: that run and the ones after it stay as they are.
bool regroup_slabs(const gguf::Tensor& t, const std::vector<bool>& slabs, uint64_t* done) {
    const size_t slab = t.nbytes / static_cast<size_t>(t.ne[2]);
    std::vector<bool> regrouped(slabs.size(), false);
    bool complete = true;
    for (size_t e = 0; e < slabs.size() && complete;) {
        size_t end = e;
        while (end < slabs.size() && slabs[end] == slabs[e]) ++end;  // a run of equal marks
        if (slabs[e]) {
            complete = regroup(t, t.data + e * slab, static_cast<int64_t>(end - e) * t.ne[1]);
            if (complete) {
                std::fill(regrouped.begin() + static_cast<std::ptrdiff_t>(e),
                          regrouped.begin() + static_cast<std::ptrdiff_t>(end), true);
                *done += (end - e) * slab;
            }
        }
        e = end;
    }
    if (std::find(regrouped.begin(), regrouped.end(), true) != regrouped.end()) {
        t.interleaved = true;
        if (std::find(regrouped.begin(), regrouped.end(), false) != regrouped.end())
            t.interleaved_slabs = std::move(regrouped);
    }
    return complete;
}

}  // namespace

bool interleavable(const gguf::Tensor& t, bool routed_from_cache) {
    if (t.interleaved || t.data == nullptr || !is_product_weight(t.name)) return false;
    if (routed_from_cache && role_of(t.name) == Role::RoutedExperts) return false;
    // Every 2-D slice (an expert, a head) whole groups of 16 rows.
    return simd::can_interleave(t.type, t.ne[0], t.ne[1]) && t.ne[3] == 1;
}

uint64_t interleave_weights(const Model& model, bool routed_from_cache, const KeepRows& keep) {
    // An image the caller owns is not ours to rewrite.
    if (!model.file().mapped()) return 0;
    // The slabs of t to regroup (ne[2] of them; all for a tensor that is not a stack), or none
    // when t is not to be regrouped.
    const auto wanted = [&](const gguf::Tensor& t) {
        std::vector<bool> slabs;
        if (!interleavable(t, routed_from_cache) ||
            std::find(keep.tensors.begin(), keep.tensors.end(), t.name) != keep.tensors.end())
            return slabs;
        slabs.assign(static_cast<size_t>(t.ne[2]), true);
        if (const auto it = keep.slabs.find(t.name); it != keep.slabs.end())
            for (size_t e = 0; e < slabs.size() && e < it->second.size(); ++e)
                slabs[e] = !it->second[e];
        if (std::find(slabs.begin(), slabs.end(), true) == slabs.end()) slabs.clear();
        return slabs;
    };
    const std::vector<gguf::Tensor>& tensors = model.file().tensors();
    std::vector<std::vector<bool>> plan(tensors.size());
    uint64_t total = 0, resident = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
        const gguf::Tensor& t = tensors[i];
        plan[i] = wanted(t);
        total += static_cast<uint64_t>(std::count(plan[i].begin(), plan[i].end(), true)) *
                 (t.nbytes / static_cast<uint64_t>(t.ne[2]));
        if (!routed_from_cache || role_of(t.name) != Role::RoutedExperts) resident += t.nbytes;
    }
    if (total == 0) return 0;
    // Rewritten pages are private copies that cannot be dropped and read back as file pages
    // can: a model that does not fit in memory is left to page in from the file as it is.
    if (const uint64_t available = scheduler::meminfo("MemAvailable");
        available > 0 && resident > available)
        return 0;
    Progress progress("regrouping", total, /*bytes=*/true);
    uint64_t done = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
        if (plan[i].empty()) continue;
        const bool complete = regroup_slabs(tensors[i], plan[i], &done);
        progress.update(done);
        if (!complete) break;  // out of memory: the rest stay as they are
    }
    progress.finish();
    return done;
}

}  // namespace strata
