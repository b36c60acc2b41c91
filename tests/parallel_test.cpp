// The pass team (simd/parallel.h): every task runs exactly once, jobs are barriers, nested calls
// and exceptions behave.
#include "simd/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

namespace strata::simd {
namespace {

constexpr int64_t kBig = kParallelWork;  // work large enough to be handed out

// Each task adds its index + 1 to its own counter; afterwards every counter holds exactly that.
void expect_each_once(int64_t n_tasks, int64_t work) {
    std::vector<std::atomic<int64_t>> hits(static_cast<size_t>(n_tasks));
    parallel_for(n_tasks, work, [&](int64_t i) { hits[static_cast<size_t>(i)] += i + 1; });
    for (int64_t i = 0; i < n_tasks; ++i)
        ASSERT_EQ(hits[static_cast<size_t>(i)].load(), i + 1) << "task " << i;
}

TEST(ParallelTest, OutsideAPassEveryTaskRunsOnce) {
    expect_each_once(1, kBig);
    expect_each_once(37, kBig);
    expect_each_once(37, 1);  // small: serial
}

TEST(ParallelTest, InsideAPassEveryTaskRunsOnceAndJobsAreBarriers) {
    for (int threads : {1, 2, 3}) {
        run_pass(threads, [&] {
            EXPECT_EQ(team_size(), threads);
            // Many short jobs in a row, each reading what the one before wrote: a job that
            // returned early, or a task run twice or by a thread still in the previous job, shows.
            std::vector<int64_t> a(97, 0), b(97, 0);
            for (int round = 0; round < 500; ++round) {
                parallel_for(97, kBig, [&](int64_t i) { a[static_cast<size_t>(i)] += 1; });
                parallel_for(97, kBig, [&](int64_t i) {
                    b[static_cast<size_t>(i)] = a[static_cast<size_t>(96 - i)];
                });
                for (int64_t i = 0; i < 97; ++i) {
                    ASSERT_EQ(a[static_cast<size_t>(i)], round + 1);
                    ASSERT_EQ(b[static_cast<size_t>(i)], round + 1);
                }
            }
            expect_each_once(1000, kBig);
        });
    }
}

TEST(ParallelTest, JobsStartedInsideATaskRunOnItsThread) {
    run_pass(2, [&] {
        std::vector<std::atomic<int64_t>> hits(16 * 16);
        parallel_for(16, kBig, [&](int64_t i) {
            EXPECT_EQ(team_size(), 1);
            parallel_for(16, kBig, [&](int64_t j) { hits[static_cast<size_t>(i * 16 + j)] += 1; });
        });
        for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    });
}

TEST(ParallelTest, ExceptionsLeaveThePassAndTheTeamCanRunAgain) {
    EXPECT_THROW(run_pass(2, [] { throw std::runtime_error("bad input"); }), std::runtime_error);
    expect_each_once(50, kBig);
    int64_t sum = 0;
    run_pass(2, [&] {
        std::vector<int64_t> v(64, 0);
        parallel_for(64, kBig, [&](int64_t i) { v[static_cast<size_t>(i)] = i; });
        for (int64_t x : v) sum += x;
    });
    EXPECT_EQ(sum, 64 * 63 / 2);
}

}  // namespace
}  // namespace strata::simd
