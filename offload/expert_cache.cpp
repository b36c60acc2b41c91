// ExpertCache: slots, eviction policies, statistics; reads through the Reader.
#include "offload/expert_cache.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "runtime/error.h"

namespace strata::offload {
namespace {

constexpr uint64_t kHugePage = uint64_t{2} << 20;
// io_uring refuses a registered buffer over 1 GiB: slots are registered in groups below it.
constexpr uint64_t kMaxBuffer = uint64_t{1} << 30;

double gib(uint64_t bytes) {
    return static_cast<double>(bytes) / static_cast<double>(1ull << 30);
}

// Runs f; when it throws strata::Error (a failed read), `cleanup` first.
template <class F, class Cleanup>
auto guarded(F&& f, Cleanup&& cleanup) {
    try {
        return f();
    } catch (const Error&) {
        cleanup();
        throw;
    }
}

}  // namespace

std::string_view policy_name(Policy policy) {
    switch (policy) {
        case Policy::Lru:
            return "lru";
        case Policy::Lfu:
            return "lfu";
        case Policy::Pinned:
            return "pinned";
    }
    return "?";
}

Policy parse_policy(std::string_view name) {
    if (name == "lru") return Policy::Lru;
    if (name == "lfu") return Policy::Lfu;
    if (name == "pinned" || name == "lru+pinned") return Policy::Pinned;
    throw UsageError(fmt::format("--cache-policy '{}' is not lru, lfu or pinned", name));
}

uint64_t parse_budget(std::string_view text, uint64_t physical_bytes) {
    const auto bad = [&](std::string_view why) {
        return UsageError(fmt::format("--ram-budget '{}' {} (e.g. 24G, 512M, 25%)", text, why));
    };
    double v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end == text.data() || !std::isfinite(v) || v <= 0)
        throw bad("is not a positive size");
    const std::string_view suffix(end, static_cast<size_t>(text.data() + text.size() - end));
    double bytes = 0;
    if (suffix == "%") {
        if (v > 100) throw bad("is more than 100% of this machine's memory");
        if (physical_bytes == 0) throw bad("is a share of a memory size that is unknown here");
        bytes = v / 100.0 * static_cast<double>(physical_bytes);
    } else {
        double unit = 1;
        if (suffix == "K" || suffix == "k" || suffix == "KiB") {
            unit = 1024.0;
        } else if (suffix == "M" || suffix == "m" || suffix == "MiB") {
            unit = 1024.0 * 1024;
        } else if (suffix == "G" || suffix == "g" || suffix == "GiB") {
            unit = 1024.0 * 1024 * 1024;
        } else if (suffix == "T" || suffix == "t" || suffix == "TiB") {
            unit = 1024.0 * 1024 * 1024 * 1024;
        } else if (!suffix.empty() && suffix != "B") {
            throw bad("has an unknown unit (K, M, G, T or %)");
        }
        bytes = v * unit;
    }
    if (bytes >= 1.8e19) throw bad("is too large");
    return static_cast<uint64_t>(bytes);
}

double CacheStats::hit_rate() const {
    const uint64_t n = hits + misses;
    return n ? static_cast<double>(hits) / static_cast<double>(n) : 1.0;
}
double CacheStats::prefetch_accuracy() const {
    return predicted ? static_cast<double>(predicted_right) / static_cast<double>(predicted) : 0.0;
}
double CacheStats::read_gbps() const {
    return read_busy_ns ? static_cast<double>(bytes_read) / static_cast<double>(read_busy_ns) : 0.0;
}
CacheStats CacheStats::operator-(const CacheStats& b) const {
    CacheStats d;
    d.hits = hits - b.hits;
    d.misses = misses - b.misses;
    d.bytes_read = bytes_read - b.bytes_read;
    d.prefetched = prefetched - b.prefetched;
    d.predicted = predicted - b.predicted;
    d.predicted_right = predicted_right - b.predicted_right;
    d.stall_ns = stall_ns - b.stall_ns;
    d.rewrites = rewrites - b.rewrites;
    d.read_busy_ns = read_busy_ns - b.read_busy_ns;
    return d;
}

ExpertCache::ExpertCache(ExpertStore store, const CacheOptions& options)
    : store_(std::move(store)), options_(options) {
    slot_bytes_ = store_.slot_bytes();
    const uint64_t fixed = store_.resident_bytes() + options_.kv_bytes + options_.workspace_bytes;
    const uint64_t minimum = fixed + slot_bytes_;
    if (options_.budget_bytes < minimum) {
        fail(
            "--ram-budget {:.2f} GiB is too small: resident weights {:.2f} GiB + KV cache {:.2f} "
            "GiB + workspace {:.2f} GiB + one expert slot {:.3f} GiB; minimum budget {:.2f} GiB",
            gib(options_.budget_bytes), gib(store_.resident_bytes()), gib(options_.kv_bytes),
            gib(options_.workspace_bytes), gib(slot_bytes_), std::ceil(gib(minimum) * 100) / 100);
    }
    const uint64_t n_slots = std::min<uint64_t>((options_.budget_bytes - fixed) / slot_bytes_,
                                                static_cast<uint64_t>(store_.n_routed()));
    const uint64_t want = n_slots * slot_bytes_;

    // One mapping for every slot: huge pages if the kernel has some reserved, otherwise
    // transparent huge pages where it allows them, otherwise 4 KiB pages.
    arena_bytes_ = (want + kHugePage - 1) / kHugePage * kHugePage;
    void* p = ::mmap(nullptr, arena_bytes_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    huge_pages_ = p != MAP_FAILED;
    if (!huge_pages_) {
        p = ::mmap(nullptr, arena_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                   0);
        if (p == MAP_FAILED)
            fail("--ram-budget: cannot allocate {:.2f} GiB of expert slots: {}", gib(arena_bytes_),
                 std::strerror(errno));
        ::madvise(p, arena_bytes_, MADV_HUGEPAGE);  // a hint; refusal changes nothing
    }
    arena_ = static_cast<uint8_t*>(p);
    slots_.resize(n_slots);
    for (uint64_t s = 0; s < n_slots; ++s) slots_[s].data = arena_ + s * slot_bytes_;
    where_.assign(static_cast<size_t>(store_.n_layer() * store_.n_expert()), -1);
    uses_.assign(where_.size(), 0);
    layer_stats_.resize(static_cast<size_t>(store_.n_layer()));
    predicted_.resize(static_cast<size_t>(store_.n_layer()));

    for (const std::string& path : store_.files()) {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) fail("{}: cannot stat: {}", path, std::strerror(errno));
        file_ids_.push_back({static_cast<uint64_t>(st.st_size),
                             static_cast<uint64_t>(st.st_mtim.tv_sec) * 1'000'000'000ull +
                                 static_cast<uint64_t>(st.st_mtim.tv_nsec)});
    }
    std::vector<iovec> buffers;
    const uint64_t per_buffer = std::max<uint64_t>(1, kMaxBuffer / slot_bytes_);
    for (uint64_t s = 0; s < n_slots; s += per_buffer) {
        const uint64_t count = std::min(per_buffer, n_slots - s);
        buffers.push_back({slots_[s].data, count * slot_bytes_});
    }
    if (!options_.trace_path.empty()) {
        trace_ = std::make_unique<std::ofstream>(options_.trace_path);
        if (!*trace_) {
            ::munmap(arena_, arena_bytes_);
            fail("{}: cannot write the routing trace", options_.trace_path);
        }
    }
    try {
        reader_ = std::make_unique<Reader>(store_.files(), buffers, options_.reader);
        if (options_.policy == Policy::Pinned) load_hot_set(options_.hot_profile);
    } catch (...) {
        reader_.reset();
        ::munmap(arena_, arena_bytes_);
        throw;
    }
}

ExpertCache::~ExpertCache() {
    reader_.reset();  // waits for reads still writing into the slots
    if (arena_) ::munmap(arena_, arena_bytes_);
}

void ExpertCache::load_hot_set(const std::string& path) {
    if (path.empty())
        fail(
            "--cache-policy pinned needs --hot-profile FILE (strata bench --save-profile writes "
            "one)");
    std::ifstream in(path);
    if (!in) fail("{}: cannot open the hot-set profile", path);
    const size_t max_hot = slots_.size() / 2;  // the other half serves the misses
    std::string line;
    int64_t line_no = 0;
    std::vector<std::pair<int64_t, int32_t>> hot;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.empty() || line[0] == '#') continue;
        std::istringstream fields(line);
        int64_t layer = -1, expert = -1;
        if (!(fields >> layer >> expert) || layer < 0 || layer >= store_.n_layer() || expert < 0 ||
            expert >= store_.n_expert() || !store_.has_experts(layer)) {
            fail("{}:{}: expected 'layer expert [count]' naming a routed expert, found '{}'", path,
                 line_no, line);
        }
        if (hot.size() < max_hot) hot.push_back({layer, static_cast<int32_t>(expert)});
    }
    std::sort(hot.begin(), hot.end());
    hot.erase(std::unique(hot.begin(), hot.end()), hot.end());
    guarded(
        [&] {
            for (const auto& [layer, expert] : hot) {
                const int32_t s = find_victim();
                if (s < 0) break;
                load(s, layer, expert);
                slots_[static_cast<size_t>(s)].hot = true;
            }
            reader_->flush();
            while (reader_->outstanding() > 0) reap(true);
        },
        [&] { forget_pending(); });
    // The hot set's reads are start-up cost, not traffic of the run.
    for (LayerStats& s : layer_stats_) s = {};
}

void ExpertCache::check_files_unchanged() {
    for (size_t f = 0; f < file_ids_.size(); ++f) {
        struct stat st {};
        if (::fstat(reader_->fd(static_cast<uint32_t>(f)), &st) != 0)
            fail("{}: cannot stat: {}", store_.files()[f], std::strerror(errno));
        const uint64_t mtime = static_cast<uint64_t>(st.st_mtim.tv_sec) * 1'000'000'000ull +
                               static_cast<uint64_t>(st.st_mtim.tv_nsec);
        if (static_cast<uint64_t>(st.st_size) != file_ids_[f].first ||
            mtime != file_ids_[f].second) {
            fail(
                "{}: the model file changed on disk while running (size {} → {} bytes{}); "
                "reload it",
                store_.files()[f], file_ids_[f].first, st.st_size,
                mtime != file_ids_[f].second ? ", modification time changed" : "");
        }
    }
}

int32_t ExpertCache::find_victim() const {
    int32_t best = -1;
    for (size_t i = 0; i < slots_.size(); ++i) {
        const Slot& s = slots_[i];
        if (s.pins > 0 || s.reads_left > 0 || s.hot) continue;
        if (s.layer < 0) return static_cast<int32_t>(i);  // empty
        if (best < 0) {
            best = static_cast<int32_t>(i);
            continue;
        }
        const Slot& b = slots_[static_cast<size_t>(best)];
        bool better = s.last_use < b.last_use;
        if (options_.policy == Policy::Lfu) {
            const uint64_t su = uses_[static_cast<size_t>(key(s.layer, s.expert))];
            const uint64_t bu = uses_[static_cast<size_t>(key(b.layer, b.expert))];
            better = su < bu || (su == bu && s.last_use < b.last_use);
        }
        if (better) best = static_cast<int32_t>(i);
    }
    return best;
}

void ExpertCache::load(int32_t slot, int64_t layer, int32_t expert) {
    Slot& s = slots_[static_cast<size_t>(slot)];
    if (s.layer >= 0) where_[static_cast<size_t>(key(s.layer, s.expert))] = -1;
    s.layer = layer;
    s.expert = expert;
    s.rewritten = false;
    s.last_use = ++tick_;
    where_[static_cast<size_t>(key(layer, expert))] = slot;
    const uint64_t per_buffer = std::max<uint64_t>(1, kMaxBuffer / slot_bytes_);
    const auto layout = store_.slot_layout(layer, expert);
    const ExpertSlabs& slabs = store_.slabs(layer, expert);
    s.reads_left = kExpertParts;
    for (int p = 0; p < kExpertParts; ++p) {
        const PartInSlot& part = layout[static_cast<size_t>(p)];
        ReadRequest r;
        r.file = slabs.part[static_cast<size_t>(p)].file;
        r.offset = part.read_offset;
        r.bytes = part.read_bytes;
        r.needed = part.needed;
        r.dst = s.data + part.slot_offset;
        r.tag = static_cast<uint64_t>(slot);
        r.buffer = static_cast<int>(static_cast<uint64_t>(slot) / per_buffer);
        layer_stats_[static_cast<size_t>(layer)].bytes_read +=
            slabs.part[static_cast<size_t>(p)].bytes;
        reader_->submit(r);
    }
}

void ExpertCache::on_done(const std::vector<uint64_t>& tags) {
    for (uint64_t tag : tags) {
        Slot& s = slots_[static_cast<size_t>(tag)];
        if (s.reads_left > 0) --s.reads_left;
    }
}

void ExpertCache::reap(bool block) {
    done_.clear();
    if (block) {
        reader_->wait_any(done_);
    } else {
        reader_->poll(done_);
    }
    on_done(done_);
}

void ExpertCache::forget_pending() {
    for (Slot& s : slots_) {
        s.pins = 0;  // the pass that held them was abandoned with the error
        if (s.reads_left == 0) continue;
        where_[static_cast<size_t>(key(s.layer, s.expert))] = -1;
        s.layer = -1;
        s.expert = -1;
        s.reads_left = 0;
        s.hot = false;
    }
}

size_t ExpertCache::acquire(int64_t layer, std::span<const int32_t> ids,
                            std::vector<ExpertHandle>& out) {
    if (layer < 0 || layer >= store_.n_layer() || !store_.has_experts(layer))
        fail("expert cache: layer {} has no routed experts", layer);
    return guarded(
        [&]() -> size_t {
            if (trace_) {
                *trace_ << layer;
                for (const int32_t id : ids) *trace_ << ' ' << id;
                *trace_ << '\n';
            }
            LayerStats& st = layer_stats_[static_cast<size_t>(layer)];
            const std::vector<int32_t>& guess = predicted_[static_cast<size_t>(layer)];
            bool checked = false;
            size_t k = 0;
            for (; k < ids.size(); ++k) {
                const int32_t id = ids[k];
                if (id < 0 || id >= store_.n_expert())
                    fail("expert cache: expert {} of layer {} does not exist", id, layer);
                const auto kk = static_cast<size_t>(key(layer, id));
                int32_t s = where_[kk];
                if (s < 0) {
                    s = find_victim();
                    if (s < 0) {
                        // Reads finished but not yet collected (pread, simulation) free slots.
                        reap(false);
                        s = find_victim();
                    }
                    // Every free slot is still being read (prefetches): wait for one.
                    while (s < 0 && reader_->outstanding() > 0) {
                        reap(true);
                        s = find_victim();
                    }
                    if (s < 0) break;  // the caller pins every slot
                    if (!checked) check_files_unchanged();
                    checked = true;
                    const auto t0 = std::chrono::steady_clock::now();
                    load(s, layer, id);
                    // pread reads block here, not in wait(): the caller stalls all the same.
                    if (!reader_->uses_io_uring())
                        st.stall_ns += static_cast<uint64_t>(
                            std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::steady_clock::now() - t0)
                                .count());
                    ++st.misses;
                } else {
                    ++st.hits;
                }
                Slot& slot = slots_[static_cast<size_t>(s)];
                ++slot.pins;
                slot.last_use = ++tick_;
                ++uses_[kk];
                if (!guess.empty()) {
                    ++st.predicted;
                    if (std::find(guess.begin(), guess.end(), id) != guess.end())
                        ++st.predicted_right;
                }
                out.push_back({id, s});
            }
            if (k == ids.size()) predicted_[static_cast<size_t>(layer)].clear();
            reader_->flush();
            return k;
        },
        [&] { forget_pending(); });
}

bool ExpertCache::ready(const ExpertHandle& handle) {
    if (slots_[static_cast<size_t>(handle.slot)].reads_left == 0) return true;
    guarded([&] { reap(false); }, [&] { forget_pending(); });
    return slots_[static_cast<size_t>(handle.slot)].reads_left == 0;
}

ExpertData ExpertCache::wait(int64_t layer, const ExpertHandle& handle) {
    const Slot& s = slots_[static_cast<size_t>(handle.slot)];
    if (s.layer != layer || s.expert != handle.expert || s.pins == 0)
        fail("expert cache: expert {} of layer {} is not held", handle.expert, layer);
    if (s.reads_left > 0) {
        const auto t0 = std::chrono::steady_clock::now();
        guarded(
            [&] {
                while (s.reads_left > 0) reap(true);
            },
            [&] { forget_pending(); });
        layer_stats_[static_cast<size_t>(layer)].stall_ns +=
            static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::steady_clock::now() - t0)
                                      .count());
    }
    ExpertData d;
    const auto layout = store_.slot_layout(layer, handle.expert);
    for (int p = 0; p < kExpertParts; ++p)
        d.part[p] = s.data + layout[static_cast<size_t>(p)].data_offset;
    return d;
}

void ExpertCache::release(std::span<const ExpertHandle> handles) {
    for (const ExpertHandle& h : handles) {
        Slot& s = slots_[static_cast<size_t>(h.slot)];
        if (s.pins > 0) --s.pins;
    }
}

void ExpertCache::mark_rewritten(const ExpertHandle& handle) {
    Slot& s = slots_[static_cast<size_t>(handle.slot)];
    if (s.rewritten) return;
    s.rewritten = true;
    ++layer_stats_[static_cast<size_t>(s.layer)].rewrites;
}

void ExpertCache::prefetch(int64_t layer, std::span<const int32_t> ids) {
    if (layer < 0 || layer >= store_.n_layer() || !store_.has_experts(layer)) return;
    predicted_[static_cast<size_t>(layer)].assign(ids.begin(), ids.end());
    size_t free = 0;
    for (const Slot& s : slots_) free += s.pins == 0 && s.reads_left == 0 && !s.hot;
    size_t allowed = free / 2;
    // The most likely first: the rest of the guess is scored but not read.
    ids = ids.first(std::min<size_t>(ids.size(), options_.prefetch_reads));
    guarded(
        [&] {
            bool checked = false;
            for (const int32_t id : ids) {
                if (allowed == 0) break;
                if (id < 0 || id >= store_.n_expert()) continue;
                if (where_[static_cast<size_t>(key(layer, id))] >= 0) continue;
                const int32_t s = find_victim();
                if (s < 0) break;
                if (!checked) check_files_unchanged();
                checked = true;
                load(s, layer, id);
                ++layer_stats_[static_cast<size_t>(layer)].prefetched;
                --allowed;
            }
            reader_->flush();
        },
        [&] { forget_pending(); });
}

CacheStats ExpertCache::stats() const {
    CacheStats t;
    for (const LayerStats& s : layer_stats_) {
        t.hits += s.hits;
        t.misses += s.misses;
        t.bytes_read += s.bytes_read;
        t.prefetched += s.prefetched;
        t.predicted += s.predicted;
        t.predicted_right += s.predicted_right;
        t.stall_ns += s.stall_ns;
        t.rewrites += s.rewrites;
    }
    t.read_busy_ns = reader_->busy_ns();
    return t;
}

void ExpertCache::write_profile(const std::string& path) const {
    std::vector<std::pair<uint64_t, int64_t>> used;  // (uses, key)
    for (size_t k = 0; k < uses_.size(); ++k)
        if (uses_[k] > 0) used.push_back({uses_[k], static_cast<int64_t>(k)});
    std::sort(used.begin(), used.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    std::ofstream out(path);
    out << "# strata expert profile: layer expert uses, most used first\n";
    for (const auto& [n, k] : used)
        out << k / store_.n_expert() << ' ' << k % store_.n_expert() << ' ' << n << '\n';
    if (!out) fail("{}: cannot write the expert profile", path);
}

}  // namespace strata::offload
