// A progress bar on stderr for work that runs longer than a second. It draws only when stderr is
// a terminal, appears only after the first second, and redraws at most ten times a second.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace strata {

class Progress {
  public:
    // `total` in the units later passed to update(); `bytes` formats them as sizes.
    Progress(std::string label, uint64_t total, bool bytes = false);
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    void update(uint64_t done);
    void finish();  // clears the line

    // Whether progress is drawn at all (stderr is a terminal and STRATA_NO_PROGRESS is unset).
    static bool enabled();

  private:
    using Clock = std::chrono::steady_clock;
    std::string label_;
    uint64_t total_;
    bool bytes_;
    bool drawn_ = false;
    bool finished_ = false;
    Clock::time_point start_;
    Clock::time_point last_draw_;
};

// "1.50 GiB", "512 B"
std::string format_bytes(uint64_t bytes);

}  // namespace strata
