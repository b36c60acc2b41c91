// The pass team: one OpenMP region per run_pass, jobs handed out through an atomic counter.
#include "simd/parallel.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <exception>

namespace strata::simd {
namespace {

// Spin iterations (each one pause) a waiting thread polls for the next job before it sleeps on
// the futex. A decode step's serial stretches (norms, routing) last microseconds, well inside
// this; longer waits (sampling between tokens, other processes holding the cores) end asleep.
constexpr int kSpin = 1 << 14;

// The job the team is working on. The first thread rewrites it only while no other thread is
// inside it: it raises `publishing`, waits for busy == 0, writes, bumps `generation`, lowers
// `publishing`. A thread enters by raising busy and then finding `publishing` low (both
// sequentially consistent, so one of the two always sees the other).
struct alignas(64) Team {
    TaskFn fn = nullptr;
    void* ctx = nullptr;
    int64_t n_tasks = 0;
    bool stop = false;  // the pass is over: leave the region
    int n_threads = 1;
    alignas(64) std::atomic<int64_t> next{0};         // next task to take
    alignas(64) std::atomic<int64_t> remaining{0};    // tasks not yet finished
    alignas(64) std::atomic<int> busy{0};             // threads other than the first inside a job
    alignas(64) std::atomic<bool> publishing{false};  // the first thread is rewriting the job
    alignas(64) std::atomic<int> generation{0};       // bumped once per published job
};

// The team whose first thread this is (null elsewhere), and whether this thread runs a task.
thread_local Team* t_team = nullptr;
thread_local bool t_in_task = false;

void take_tasks(Team& team) {
    t_in_task = true;
    int64_t done = 0;
    for (;;) {
        const int64_t i = team.next.fetch_add(1, std::memory_order_relaxed);
        if (i >= team.n_tasks) break;
        team.fn(team.ctx, i);
        ++done;
    }
    t_in_task = false;
    if (done > 0) team.remaining.fetch_sub(done, std::memory_order_acq_rel);
}

// The other threads' loop: wait for a job, take its tasks, until the pass is over.
void serve(Team& team) {
    int seen = 0;
    for (;;) {
        int g = team.generation.load(std::memory_order_acquire);
        for (int spin = 0; g == seen && spin < kSpin; ++spin) {
            _mm_pause();
            g = team.generation.load(std::memory_order_acquire);
        }
        if (g == seen) {
            team.generation.wait(seen, std::memory_order_acquire);
            continue;
        }
        team.busy.fetch_add(1, std::memory_order_seq_cst);
        if (team.publishing.load(std::memory_order_seq_cst)) {
            team.busy.fetch_sub(1, std::memory_order_relaxed);
            _mm_pause();
            continue;
        }
        // Inside: the job (and its generation) stays as it is until busy falls back.
        seen = team.generation.load(std::memory_order_acquire);
        const bool stop = team.stop;
        if (!stop) take_tasks(team);
        team.busy.fetch_sub(1, std::memory_order_release);
        if (stop) return;
    }
}

void publish(Team& team, TaskFn fn, void* ctx, int64_t n_tasks, bool stop) {
    // Threads still leaving the previous job may read its fields: wait them out.
    team.publishing.store(true, std::memory_order_seq_cst);
    while (team.busy.load(std::memory_order_seq_cst) != 0) _mm_pause();
    team.fn = fn;
    team.ctx = ctx;
    team.n_tasks = n_tasks;
    team.stop = stop;
    team.next.store(0, std::memory_order_relaxed);
    team.remaining.store(n_tasks, std::memory_order_relaxed);
    team.generation.fetch_add(1, std::memory_order_seq_cst);
    team.publishing.store(false, std::memory_order_seq_cst);
    team.generation.notify_all();
}

}  // namespace

void parallel_tasks(int64_t n_tasks, TaskFn fn, void* ctx, int64_t work) {
    if (n_tasks <= 0) return;
    const bool serial = n_tasks == 1 || work < kParallelWork || t_in_task;
    Team* team = t_team;
    if (serial || (team && team->n_threads == 1)) {
        const bool was = t_in_task;
        t_in_task = true;  // steps called from here run serially too
        for (int64_t i = 0; i < n_tasks; ++i) fn(ctx, i);
        t_in_task = was;
        return;
    }
    if (team) {
        publish(*team, fn, ctx, n_tasks, false);
        take_tasks(*team);
        while (team->remaining.load(std::memory_order_acquire) != 0) _mm_pause();
        return;
    }
    // No pass: a loop of its own.
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n_tasks; ++i) {
        t_in_task = true;
        fn(ctx, i);
        t_in_task = false;
    }
}

void run_pass_impl(int n_threads, void (*body)(void*), void* ctx) {
    if (t_team || t_in_task) {
        body(ctx);
        return;
    }
    const int threads = n_threads > 0 ? n_threads : omp_get_max_threads();
    if (threads == 1) {
        Team solo;
        t_team = &solo;
        try {
            body(ctx);
        } catch (...) {
            t_team = nullptr;
            throw;
        }
        t_team = nullptr;
        return;
    }
    Team team;
    std::exception_ptr error;
#pragma omp parallel num_threads(threads)
    {
        // The region may get fewer threads than asked for; whoever is thread 0 runs the body.
#pragma omp master
        {
            team.n_threads = omp_get_num_threads();
            t_team = &team;
            try {
                body(ctx);
            } catch (...) {
                error = std::current_exception();  // exceptions must not leave the region
            }
            t_team = nullptr;
            publish(team, nullptr, nullptr, 0, true);
        }
        if (omp_get_thread_num() != 0) serve(team);
    }
    if (error) std::rethrow_exception(error);
}

int team_size() {
    if (t_in_task) return 1;
    if (t_team) return t_team->n_threads;
    return omp_get_max_threads();
}

}  // namespace strata::simd
