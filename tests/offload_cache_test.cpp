// The expert cache and its reader on plain files of known bytes: every slab arrives exactly as
// the file holds it (unaligned offsets, split files, io_uring and pread), policies evict what
// they say, faults end in a correct retry or one clear error, and nothing leaks.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "offload/expert_cache.h"
#include "runtime/error.h"
#include "tests/test_util.h"

namespace strata::offload {
namespace {

// A table of n_layer × n_expert experts over two files of random bytes; layer 0 has no routed
// experts (a leading dense block). Slabs follow each other at odd offsets, as in GGUF files
// whose tensors are 32-byte aligned but slabs are not 4 KiB aligned.
struct Fixture {
    test::TempDir dir;
    std::vector<std::vector<uint8_t>> bytes;  // (2, file size) file contents
    StoreTable table;

    explicit Fixture(int64_t n_layer = 3, int64_t n_expert = 4, uint64_t slab = 5000) {
        std::mt19937_64 rng(7);
        table.n_layer = n_layer;
        table.n_expert = n_expert;
        table.experts.resize(static_cast<size_t>(n_layer * n_expert));
        table.resident_bytes = 10000;
        uint64_t at[2] = {96, 160};  // a header before the data, as in a GGUF file
        for (int64_t il = 1; il < n_layer; ++il) {
            const uint32_t file = static_cast<uint32_t>(il % 2);
            for (int p = 0; p < kExpertParts; ++p) {
                for (int64_t e = 0; e < n_expert; ++e) {
                    SlabRange& r = table.experts[static_cast<size_t>(il * n_expert + e)]
                                       .part[static_cast<size_t>(p)];
                    r = {file, at[file], slab + static_cast<uint64_t>(p) * 32};
                    at[file] += r.bytes;
                }
                at[file] += 32;
            }
        }
        for (int f = 0; f < 2; ++f) {
            std::vector<uint8_t> b(at[f] + 77);  // ends off any 4 KiB boundary
            for (uint8_t& x : b) x = static_cast<uint8_t>(rng());
            const std::string path = (dir / ("model-" + std::to_string(f) + ".bin")).string();
            std::ofstream(path, std::ios::binary)
                .write(reinterpret_cast<const char*>(b.data()),
                       static_cast<std::streamsize>(b.size()));
            table.files.push_back(path);
            bytes.push_back(std::move(b));
        }
    }

    CacheOptions options(int64_t slots, Policy policy = Policy::Lru) const {
        const ExpertStore store(table);
        CacheOptions o;
        o.kv_bytes = 4096;
        o.budget_bytes =
            table.resident_bytes + o.kv_bytes + static_cast<uint64_t>(slots) * store.slot_bytes();
        o.policy = policy;
        o.reader.quiet = true;
        return o;
    }

    // Whether the cache's copy of (layer, expert) equals the file's bytes.
    void expect_exact(ExpertCache& cache, int64_t layer, const ExpertHandle& h) const {
        const ExpertData d = cache.wait(layer, h);
        const ExpertSlabs& s =
            table.experts[static_cast<size_t>(layer * table.n_expert + h.expert)];
        for (int p = 0; p < kExpertParts; ++p) {
            const SlabRange& r = s.part[static_cast<size_t>(p)];
            ASSERT_EQ(0, std::memcmp(d.part[p], bytes[r.file].data() + r.offset, r.bytes))
                << "layer " << layer << " expert " << h.expert << " part " << p;
        }
    }
};

// Reads every expert of every layer through a cache of `slots` slots, in waves.
void read_all(const Fixture& fx, ExpertCache& cache) {
    for (int64_t il = 1; il < fx.table.n_layer; ++il) {
        std::vector<int32_t> ids;
        for (int32_t e = static_cast<int32_t>(fx.table.n_expert) - 1; e >= 0; --e) ids.push_back(e);
        size_t done = 0;
        while (done < ids.size()) {
            std::vector<ExpertHandle> held;
            const size_t got = cache.acquire(il, std::span<const int32_t>(ids).subspan(done), held);
            ASSERT_GT(got, 0u);
            for (const ExpertHandle& h : held) fx.expect_exact(cache, il, h);
            cache.release(held);
            done += got;
        }
    }
}

size_t open_fds() {
    size_t n = 0;
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return 0;
    while (::readdir(d)) ++n;
    ::closedir(d);
    return n;
}

TEST(OffloadBudget, ParsesSizesAndShares) {
    EXPECT_EQ(parse_budget("24G", 0), 24ull << 30);
    EXPECT_EQ(parse_budget("512M", 0), 512ull << 20);
    EXPECT_EQ(parse_budget("1.5G", 0), 3ull << 29);
    EXPECT_EQ(parse_budget("4096", 0), 4096u);
    EXPECT_EQ(parse_budget("25%", 1000), 250u);
    EXPECT_THROW(parse_budget("12X", 0), UsageError);
    EXPECT_THROW(parse_budget("-1G", 0), UsageError);
    EXPECT_THROW(parse_budget("150%", 1000), UsageError);
    EXPECT_THROW(parse_budget("", 0), UsageError);
    EXPECT_EQ(parse_policy("lfu"), Policy::Lfu);
    EXPECT_THROW(parse_policy("fifo"), UsageError);
}

TEST(OffloadStore, SlotLayoutCoversEachSlabAligned) {
    const Fixture fx;
    const ExpertStore store(fx.table);
    EXPECT_EQ(store.n_routed(), 2 * 4);
    EXPECT_FALSE(store.has_experts(0));
    for (int64_t e = 0; e < 4; ++e) {
        const auto layout = store.slot_layout(1, e);
        uint64_t end = 0;
        for (int p = 0; p < kExpertParts; ++p) {
            const PartInSlot& part = layout[static_cast<size_t>(p)];
            const SlabRange& r = store.slabs(1, e).part[static_cast<size_t>(p)];
            EXPECT_EQ(part.read_offset % Reader::kAlign, 0u);
            EXPECT_EQ(part.read_bytes % Reader::kAlign, 0u);
            EXPECT_EQ(part.slot_offset % Reader::kAlign, 0u);
            EXPECT_LE(part.read_offset, r.offset);
            EXPECT_GE(part.read_offset + part.read_bytes, r.offset + r.bytes);
            EXPECT_EQ(part.data_offset - part.slot_offset, r.offset - part.read_offset);
            EXPECT_GE(part.slot_offset, end);
            end = part.slot_offset + part.read_bytes;
        }
        EXPECT_LE(end, store.slot_bytes());
    }
}

TEST(OffloadStore, RangeOutsideTheFileIsRefused) {
    Fixture fx;
    fx.table.experts[4].part[2].offset = fx.bytes[1].size() - 10;  // layer 1 lives in file 1
    try {
        ExpertStore store(fx.table);
        FAIL() << "accepted a slab past the end of the file";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("outside"), std::string::npos) << e.what();
    }
}

TEST(OffloadCache, EveryExpertExactWithIoUringAndPread) {
    const Fixture fx;
    for (const bool pread : {false, true}) {
        for (const int64_t slots : {1, 3, 8}) {
            CacheOptions o = fx.options(slots);
            o.reader.force_pread = pread;
            ExpertCache cache(ExpertStore(fx.table), o);
            EXPECT_EQ(cache.n_slots(), slots);
            EXPECT_EQ(cache.reader().uses_io_uring(), !pread);
            read_all(fx, cache);
            read_all(fx, cache);  // again: hits where slots allow
            const CacheStats st = cache.stats();
            EXPECT_EQ(st.hits + st.misses, 2u * 2 * 4);
            if (slots == 8) {
                EXPECT_EQ(st.misses, 8u);
            }
        }
    }
}

TEST(OffloadCache, BudgetBelowResidentIsRefusedWithWhatFits) {
    const Fixture fx;
    CacheOptions o = fx.options(1);
    o.budget_bytes = fx.table.resident_bytes;  // not even the KV cache fits
    try {
        ExpertCache cache(ExpertStore(fx.table), o);
        FAIL() << "accepted a budget below the resident part";
    } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("resident weights"), std::string::npos) << m;
        EXPECT_NE(m.find("KV cache"), std::string::npos) << m;
        EXPECT_NE(m.find("minimum budget"), std::string::npos) << m;
    }
}

TEST(OffloadCache, LruEvictsTheLeastRecentLfuTheLeastFrequent) {
    const Fixture fx;
    for (const Policy policy : {Policy::Lru, Policy::Lfu}) {
        ExpertCache cache(ExpertStore(fx.table), fx.options(2, policy));
        const auto touch = [&](int32_t e) {
            std::vector<ExpertHandle> held;
            const int32_t ids[] = {e};
            EXPECT_EQ(cache.acquire(1, ids, held), 1u);
            fx.expect_exact(cache, 1, held[0]);
            cache.release(held);
        };
        touch(0);
        touch(0);
        touch(0);
        touch(1);
        touch(2);  // evicts 0 under lru (least recent), 1 under lfu (used once)
        const uint64_t misses = cache.stats().misses;
        touch(0);
        const bool zero_was_kept = cache.stats().misses == misses;
        EXPECT_EQ(zero_was_kept, policy == Policy::Lfu) << policy_name(policy);
    }
}

TEST(OffloadCache, PinnedHotSetIsNeverEvicted) {
    const Fixture fx;
    const std::string profile = (fx.dir / "hot.txt").string();
    std::ofstream(profile) << "# layer expert uses\n2 3 100\n";
    CacheOptions o = fx.options(2, Policy::Pinned);
    o.hot_profile = profile;
    ExpertCache cache(ExpertStore(fx.table), o);
    EXPECT_EQ(cache.stats().misses, 0u);  // the hot set's reads are not counted
    for (int round = 0; round < 3; ++round) read_all(fx, cache);
    const LayerStats& l2 = cache.layer_stats(2);
    EXPECT_EQ(l2.hits, 3u);  // expert 3 of layer 2 every round, everything else missed
    EXPECT_EQ(l2.misses, 9u);

    std::ofstream(profile) << "2 9\n";
    o.hot_profile = profile;
    EXPECT_THROW(ExpertCache(ExpertStore(fx.table), o), Error);
}

TEST(OffloadCache, PrefetchIsScoredAndServesHits) {
    const Fixture fx;
    ExpertCache cache(ExpertStore(fx.table), fx.options(8));
    const int32_t guess[] = {1, 2};
    cache.prefetch(2, guess);
    std::vector<ExpertHandle> held;
    const int32_t routed[] = {2, 3};
    ASSERT_EQ(cache.acquire(2, routed, held), 2u);
    for (const ExpertHandle& h : held) fx.expect_exact(cache, 2, h);
    cache.release(held);
    const CacheStats st = cache.stats();
    EXPECT_EQ(st.prefetched, 2u);
    EXPECT_EQ(st.predicted, 2u);
    EXPECT_EQ(st.predicted_right, 1u);
    EXPECT_EQ(st.hits, 1u);
    EXPECT_EQ(st.misses, 1u);
}

// Only the first prefetch_reads experts of a guess are read ahead (the most likely, in the
// caller's order); the whole guess is scored. 0 reads nothing.
TEST(OffloadCache, PrefetchReadsTheFirstOfTheGuessAndScoresItAll) {
    const Fixture fx;
    for (const uint32_t reads : {0u, 1u, 3u}) {
        CacheOptions o = fx.options(8);
        o.prefetch_reads = reads;
        ExpertCache cache(ExpertStore(fx.table), o);
        const int32_t guess[] = {1, 3, 0};
        cache.prefetch(2, guess);
        EXPECT_EQ(cache.stats().prefetched, reads);
        std::vector<ExpertHandle> held;
        const int32_t routed[] = {0, 1};
        ASSERT_EQ(cache.acquire(2, routed, held), 2u);
        for (const ExpertHandle& h : held) fx.expect_exact(cache, 2, h);
        cache.release(held);
        const CacheStats st = cache.stats();
        EXPECT_EQ(st.predicted, 2u);
        EXPECT_EQ(st.predicted_right, 2u) << "scored against the whole guess";
        // Read ahead: expert 1 from one read on, expert 0 from three.
        EXPECT_EQ(st.hits, (reads >= 1 ? 1u : 0u) + (reads >= 3 ? 1u : 0u)) << reads;
        EXPECT_EQ(st.hits + st.misses, 2u);
    }
}

// Faults through the test hook: short reads and -EAGAIN / -EINTR storms are retried to the exact
// bytes; -EIO and an early end of file end in one error naming the file, after which the cache
// works again.
TEST(OffloadFaults, ShortReadsAndRetriesGiveExactBytes) {
    const Fixture fx;
    for (const bool pread : {false, true}) {
        int calls = 0;
        CacheOptions o = fx.options(3);
        o.reader.force_pread = pread;
        o.reader.chunk_bytes = 8192;  // several reads per slab
        o.reader.fault_hook = [&calls](const ReadRequest& r, int64_t result) -> int64_t {
            ++calls;
            if (calls % 3 == 0 && result > 1)
                return std::min<int64_t>(result, 100 + r.offset % 3000);
            if (calls % 5 == 0) return -EAGAIN;
            if (calls % 7 == 0) return -EINTR;
            return result;
        };
        ExpertCache cache(ExpertStore(fx.table), o);
        read_all(fx, cache);
        EXPECT_GT(calls, 30);
    }
}

TEST(OffloadFaults, EagainStormIsRetried) {
    const Fixture fx;
    int storm = 5000;
    CacheOptions o = fx.options(8);
    o.reader.fault_hook = [&storm](const ReadRequest&, int64_t result) -> int64_t {
        return storm-- > 0 ? -EAGAIN : result;
    };
    ExpertCache cache(ExpertStore(fx.table), o);
    read_all(fx, cache);
    EXPECT_LT(storm, 0);
}

TEST(OffloadFaults, IoErrorAndEarlyEndAreCleanErrors) {
    const Fixture fx;
    for (const bool pread : {false, true}) {
        for (const int64_t fault : {int64_t{-EIO}, int64_t{0}}) {
            bool armed = true;
            CacheOptions o = fx.options(4);
            o.reader.force_pread = pread;
            o.reader.fault_hook = [&](const ReadRequest&, int64_t result) -> int64_t {
                return armed ? fault : result;
            };
            ExpertCache cache(ExpertStore(fx.table), o);
            std::vector<ExpertHandle> held;
            const int32_t ids[] = {0, 1};
            try {
                cache.acquire(1, ids, held);
                for (const ExpertHandle& h : held) cache.wait(1, h);
                FAIL() << "a failed read returned data";
            } catch (const Error& e) {
                const std::string m = e.what();
                EXPECT_NE(m.find(fx.table.files[1]), std::string::npos) << m;
                EXPECT_NE(m.find(fault == 0 ? "truncated" : "Input/output error"),
                          std::string::npos)
                    << m;
            }
            armed = false;
            read_all(fx, cache);  // the failed slots were forgotten, not served
        }
    }
}

TEST(OffloadFaults, FileChangedOrTruncatedOnDiskIsAnError) {
    for (const bool truncate : {false, true}) {
        const Fixture fx;
        ExpertCache cache(ExpertStore(fx.table), fx.options(2));
        read_all(fx, cache);
        if (truncate) {
            ASSERT_EQ(::truncate(fx.table.files[1].c_str(), 4096), 0);
        } else {
            const timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
            ASSERT_EQ(::utimensat(AT_FDCWD, fx.table.files[1].c_str(), times, 0), 0);
        }
        try {
            read_all(fx, cache);
            FAIL() << "read from a file that changed";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("changed on disk"), std::string::npos) << e.what();
        }
    }
}

TEST(OffloadLeaks, ManyCachesLeaveNoDescriptorBehind) {
    const Fixture fx;
    const size_t before = open_fds();
    for (int i = 0; i < 50; ++i) {
        CacheOptions o = fx.options(2 + i % 3);
        o.reader.force_pread = i % 5 == 0;
        ExpertCache cache(ExpertStore(fx.table), o);
        std::vector<ExpertHandle> held;
        const int32_t ids[] = {1, 3};
        cache.acquire(1, ids, held);  // reads still in flight at destruction
    }
    EXPECT_EQ(open_fds(), before);
}

}  // namespace
}  // namespace strata::offload
