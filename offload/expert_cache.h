// A RAM cache of routed experts under a memory budget, fed by the Reader.
//
// The budget (--ram-budget) covers the resident weights, the KV cache, the forward pass's
// workspace and the slots: what is left after the first three becomes a fixed number of slots of
// ExpertStore::slot_bytes(), taken once at start-up in one mapping (2 MiB pages where the kernel
// gives them) and registered with io_uring. A slot holds one expert of one layer: its gate, up and
// down slabs.
//
// A forward pass asks for a layer's experts with acquire(): those present are pinned at once,
// missing ones get a free or evicted slot and their reads are issued before acquire() returns,
// so the caller computes the resident experts (ready()) while the rest arrive, and wait()s only
// for the ones it has run out of. Pointers stay valid until release(). When there are fewer
// unpinned slots than experts asked for, acquire() takes as many as it can, in order, and the
// caller asks again for the rest after releasing these (a budget of one expert per layer works,
// just slowly).
//
// Policies choose the slot to evict among those not pinned and not being read:
//  - lru: the least recently used;
//  - lfu: the least frequently used (accesses counted over the whole run), ties by recency;
//  - pinned: lru, with a hot set from a profile loaded at start-up and never evicted.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "offload/expert_store.h"
#include "offload/reader.h"

namespace strata::offload {

enum class Policy { Lru, Lfu, Pinned };
// "lru", "lfu", "pinned"; parse_policy throws strata::UsageError naming --cache-policy.
std::string_view policy_name(Policy policy);
Policy parse_policy(std::string_view name);

// --ram-budget: "24G", "512M", "1.5G", "64K", plain bytes, or "25%" of `physical_bytes`
// (binary units). Throws strata::UsageError naming --ram-budget.
uint64_t parse_budget(std::string_view text, uint64_t physical_bytes);

inline constexpr uint32_t kPrefetchReads = 2;  // CacheOptions::prefetch_reads

struct CacheOptions {
    uint64_t budget_bytes = 0;     // resident + KV + workspace + slots must fit
    uint64_t kv_bytes = 0;         // the KV cache the session allocated
    uint64_t workspace_bytes = 0;  // the forward pass's own buffers (an estimate)
    Policy policy = Policy::Lru;
    std::string hot_profile;  // Policy::Pinned: lines "layer expert [count]"
    std::string trace_path;   // when set, every acquire() appends "layer id id ..." here
    // Experts read ahead per prefetch(): the first of the guess, the most likely. Reading the
    // whole guess (8 of R1's experts) was slower: a guess of the next layer is right for about
    // 3 in 4 of its experts, and the wrong ones cost disk time and evict slots that would have
    // hit (big40, 12G budget, decode after 512 positions, Zen 5 VM: 3.4-3.9 tokens/s reading
    // all 8, 4.3-4.7 reading the first 2 or none, 986 -> 694 MB read per token).
    uint32_t prefetch_reads = kPrefetchReads;
    ReaderOptions reader;
};

struct LayerStats {
    uint64_t hits = 0;    // experts asked for and present (or already on their way)
    uint64_t misses = 0;  // experts asked for and read
    uint64_t bytes_read = 0;
    uint64_t prefetched = 0;       // experts read ahead of their layer's routing
    uint64_t predicted = 0;        // routed experts of decode steps that had a prediction
    uint64_t predicted_right = 0;  // ... of which the prediction named
    uint64_t stall_ns = 0;         // waiting in wait() for this layer's reads
    uint64_t rewrites = 0;         // experts the caller rewrote in their slots (mark_rewritten)
};

struct CacheStats {
    uint64_t hits = 0, misses = 0, bytes_read = 0, prefetched = 0;
    uint64_t predicted = 0, predicted_right = 0;
    uint64_t stall_ns = 0;
    uint64_t rewrites = 0;
    uint64_t read_busy_ns = 0;  // time with reads in flight
    double hit_rate() const;
    double prefetch_accuracy() const;  // 0 without predictions
    double read_gbps() const;          // bytes_read / read_busy (10^9 bytes per second)
    CacheStats operator-(const CacheStats& before) const;
};

// A pinned expert: its slot stays put until release().
struct ExpertHandle {
    int32_t expert = 0;
    int32_t slot = 0;
};

// Pointers to an expert's slabs, each the exact first byte of its gate / up / down data.
struct ExpertData {
    const uint8_t* part[kExpertParts] = {nullptr, nullptr, nullptr};
};

class ExpertCache {
  public:
    // Throws strata::Error when resident + KV + one slot exceed the budget, saying what fits.
    ExpertCache(ExpertStore store, const CacheOptions& options);
    ~ExpertCache();
    ExpertCache(const ExpertCache&) = delete;
    ExpertCache& operator=(const ExpertCache&) = delete;

    const ExpertStore& store() const { return store_; }
    int64_t n_slots() const { return static_cast<int64_t>(slots_.size()); }
    uint64_t slot_bytes() const { return slot_bytes_; }
    uint64_t arena_bytes() const { return arena_bytes_; }
    bool huge_pages() const { return huge_pages_; }
    Policy policy() const { return options_.policy; }
    const Reader& reader() const { return *reader_; }

    // Pins experts ids[0 .. k) of `layer` (distinct ids) and issues reads for the missing ones;
    // appends k handles to `out` and returns k, which is less than ids.size() only when the
    // slots not pinned by the caller have run out (then k ≥ 1 unless the caller pins them all).
    size_t acquire(int64_t layer, std::span<const int32_t> ids, std::vector<ExpertHandle>& out);
    // Whether the handle's expert has arrived (reaps completions; never blocks).
    bool ready(const ExpertHandle& handle);
    // The expert's slabs, waiting for its reads if they are still in flight; throws
    // strata::Error on an I/O error, a truncated file or a model file changed on disk.
    ExpertData wait(int64_t layer, const ExpertHandle& handle);
    void release(std::span<const ExpertHandle> handles);

    // Whether the caller has rewritten the held expert's bytes in place since they were read
    // (runtime/ regroups the slabs of experts that batches multiply for the interleaved
    // kernels), and saying it has. Every read into a slot clears the mark.
    bool rewritten(const ExpertHandle& handle) const {
        return slots_[static_cast<size_t>(handle.slot)].rewritten;
    }
    void mark_rewritten(const ExpertHandle& handle);

    // Reads the first CacheOptions::prefetch_reads of the experts of `layer` expected soon (the
    // next layer's router on the current hidden state, most likely first) into slots nobody
    // pins, using at most half the unpinned slots; all the ids are kept to score the prediction
    // when `layer` is acquired.
    void prefetch(int64_t layer, std::span<const int32_t> ids);

    // Whether expert `expert` of `layer` has a slot (present, or its reads in flight).
    bool holds(int64_t layer, int32_t expert) const {
        return layer >= 0 && layer < store_.n_layer() && expert >= 0 &&
               expert < store_.n_expert() && where_[static_cast<size_t>(key(layer, expert))] >= 0;
    }

    const LayerStats& layer_stats(int64_t layer) const {
        return layer_stats_[static_cast<size_t>(layer)];
    }
    CacheStats stats() const;
    // Experts accessed so far, "layer expert count" per line, most used first: a hot-set
    // profile for Policy::Pinned.
    void write_profile(const std::string& path) const;

  private:
    struct Slot {
        int64_t layer = -1;  // -1: empty
        int32_t expert = -1;
        uint32_t pins = 0;
        uint32_t reads_left = 0;  // parts still in flight
        bool hot = false;         // profile hot set: never evicted
        bool rewritten = false;   // mark_rewritten() since the last read
        uint64_t last_use = 0;
        uint8_t* data = nullptr;  // slot_bytes_ bytes in the arena
    };

    int64_t key(int64_t layer, int32_t expert) const { return layer * store_.n_expert() + expert; }
    int32_t find_victim() const;
    // Points `slot` at (layer, expert) and issues its reads.
    void load(int32_t slot, int64_t layer, int32_t expert);
    void on_done(const std::vector<uint64_t>& tags);
    void reap(bool block);
    void check_files_unchanged();
    void load_hot_set(const std::string& path);
    // After a read failed: every slot with reads in flight is emptied (the reader drained them).
    void forget_pending();

    ExpertStore store_;
    CacheOptions options_;
    uint64_t slot_bytes_ = 0;
    uint64_t arena_bytes_ = 0;
    uint8_t* arena_ = nullptr;  // (n_slots, slot_bytes_) the slots, one mapping
    bool huge_pages_ = false;
    std::vector<Slot> slots_;              // (n_slots)
    std::vector<int32_t> where_;           // (n_layer · n_expert) slot of each expert, or -1
    std::vector<uint64_t> uses_;           // (n_layer · n_expert) accesses, for lfu and profiles
    std::vector<LayerStats> layer_stats_;  // (n_layer)
    std::vector<std::vector<int32_t>> predicted_;          // (n_layer) last prefetch's ids
    std::vector<std::pair<uint64_t, uint64_t>> file_ids_;  // (n_files) size, mtime in ns
    std::unique_ptr<Reader> reader_;
    std::unique_ptr<std::ofstream> trace_;  // routing trace (CacheOptions::trace_path)
    std::vector<uint64_t> done_;            // completion scratch
    uint64_t tick_ = 0;
};

}  // namespace strata::offload
