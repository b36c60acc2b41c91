#include "runtime/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace strata {

namespace {
constexpr auto kDelay = std::chrono::seconds(1);
constexpr auto kRedraw = std::chrono::milliseconds(100);
constexpr int kWidth = 30;
}  // namespace

std::string format_bytes(uint64_t bytes) {
    static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        ++u;
    }
    return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", v, kUnits[u]);
}

bool Progress::enabled() {
    static const bool on = ::isatty(STDERR_FILENO) && std::getenv("STRATA_NO_PROGRESS") == nullptr;
    return on;
}

Progress::Progress(std::string label, uint64_t total, bool bytes)
    : label_(std::move(label)), total_(total), bytes_(bytes), start_(Clock::now()) {}

Progress::~Progress() {
    finish();
}

void Progress::update(uint64_t done) {
    if (finished_ || !enabled()) return;
    const auto now = Clock::now();
    if (now - start_ < kDelay || (drawn_ && now - last_draw_ < kRedraw)) return;
    last_draw_ = now;
    drawn_ = true;
    const double frac = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
    const int fill = static_cast<int>(frac * kWidth + 0.5);
    const std::string bar = std::string(static_cast<size_t>(std::min(fill, kWidth)), '#') +
                            std::string(static_cast<size_t>(kWidth - std::min(fill, kWidth)), '.');
    const std::string amount =
        bytes_ ? fmt::format("{} / {}", format_bytes(done), format_bytes(total_))
               : fmt::format("{} / {}", done, total_);
    std::fprintf(stderr, "\r%s [%s] %3.0f%%  %s\x1b[K", label_.c_str(), bar.c_str(), 100.0 * frac,
                 amount.c_str());
    std::fflush(stderr);
}

void Progress::finish() {
    if (finished_) return;
    finished_ = true;
    if (drawn_) {
        std::fprintf(stderr, "\r\x1b[K");
        std::fflush(stderr);
    }
}

}  // namespace strata
