// One thread team per forward pass, as ggml runs a graph: the pass opens one OpenMP parallel
// region (run_pass); its first thread runs the pass's code, and every data-parallel step inside
// it (a matrix product, an activation conversion, attention, the experts of a layer) is a job of
// tasks the whole team takes from an atomic counter, the first thread too. A job returns when all
// its tasks are done: that is the barrier between dependent steps. Between jobs the other threads
// spin briefly, then sleep on a futex (std::atomic::wait), so serial stretches do not starve a
// busy machine's other processes of the cores they need.
//
// Outside a pass, parallel_for runs an OpenMP loop of its own; inside a task it runs serially,
// so a step may be called from anywhere. Nothing here sets process-wide OpenMP state: run_pass
// takes the thread count.
#pragma once

#include <cstdint>
#include <type_traits>

namespace strata::simd {

// Task `task` of a job; ctx is the caller's.
using TaskFn = void (*)(void* ctx, int64_t task);

// Runs tasks 0 … n_tasks - 1, each once, and returns when all are done. `work` is a rough count
// of multiply-adds over all tasks: below kParallelWork the job stays on the calling thread, where
// handing it out would cost more than it saves.
void parallel_tasks(int64_t n_tasks, TaskFn fn, void* ctx, int64_t work);

template <class F>
void parallel_for(int64_t n_tasks, int64_t work, F&& f) {
    using Body = std::remove_reference_t<F>;
    parallel_tasks(
        n_tasks, [](void* c, int64_t i) { (*static_cast<Body*>(c))(i); },
        const_cast<void*>(static_cast<const void*>(&f)), work);
}

// Below this many multiply-adds a job runs on one thread. Measured with `strata run --tokens …
// --threads 1|2` on the golden 256-wide llama (2 cores, other builds running), when every product
// opened a region of its own: at 1 << 16 two threads decoded 5× slower than one.
inline constexpr int64_t kParallelWork = int64_t{1} << 18;

// Runs body() on this thread with a team of n_threads (0: OpenMP's default) serving its jobs,
// the team created once for the whole call. Inside a pass or a task: body() as it is.
void run_pass_impl(int n_threads, void (*body)(void*), void* ctx);

template <class F>
void run_pass(int n_threads, F&& body) {
    using Body = std::remove_reference_t<F>;
    run_pass_impl(
        n_threads, [](void* c) { (*static_cast<Body*>(c))(); },
        const_cast<void*>(static_cast<const void*>(&body)));
}

// Threads that take part in a job started here: the pass's team, 1 inside a task, else
// OpenMP's default.
int team_size();

}  // namespace strata::simd
