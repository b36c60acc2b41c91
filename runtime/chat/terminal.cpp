#include "runtime/chat/terminal.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "runtime/error.h"

namespace strata::chat {
namespace {

// Signal handler state: plain atomics, which are lock-free and safe to touch in a handler.
std::atomic<int> g_pending{0};
std::atomic<bool> g_installed{false};
std::atomic<bool> g_reset_style{false};
struct sigaction g_previous {};

static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);

extern "C" void on_sigint(int) {
    if (g_pending.fetch_add(1) > 0) {
        // The first Ctrl-C was not taken: the program is not listening, so leave now. Only
        // async-signal-safe calls here.
        if (g_reset_style.load()) {
            const ssize_t ignored = ::write(STDOUT_FILENO, kSgrReset.data(), kSgrReset.size());
            (void)ignored;
        }
        const ssize_t ignored = ::write(STDERR_FILENO, "\n", 1);
        (void)ignored;
        ::_exit(130);
    }
}

}  // namespace

bool is_terminal(int fd) {
    return ::isatty(fd) == 1;
}

bool use_color(int fd) {
    if (!is_terminal(fd)) return false;
    if (const char* no_color = std::getenv("NO_COLOR"); no_color && *no_color) return false;
    if (const char* term = std::getenv("TERM"); term && std::strcmp(term, "dumb") == 0)
        return false;
    return true;
}

InterruptHandler::InterruptHandler(bool reset_style) {
    if (g_installed.exchange(true)) fail("internal: a second InterruptHandler was created");
    g_pending.store(0);
    g_reset_style.store(reset_style);
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a read() waiting for input returns EINTR
    if (::sigaction(SIGINT, &sa, &g_previous) != 0) {
        g_installed.store(false);
        fail("cannot install the Ctrl-C handler: {}", std::strerror(errno));
    }
}

InterruptHandler::~InterruptHandler() {
    ::sigaction(SIGINT, &g_previous, nullptr);
    g_installed.store(false);
}

bool InterruptHandler::pending() const {
    return g_pending.load() > 0;
}

bool InterruptHandler::take() {
    return g_pending.exchange(0) > 0;
}

LineReader::LineReader(int fd, InterruptHandler* interrupts) : fd_(fd), interrupts_(interrupts) {}

LineReader::Status LineReader::read(std::string& line) {
    for (;;) {
        if (const size_t nl = buffer_.find('\n'); nl != std::string::npos) {
            line.assign(buffer_, 0, nl);
            buffer_.erase(0, nl + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            return Status::kLine;
        }
        if (end_) {
            if (buffer_.empty()) return Status::kEnd;
            line = std::move(buffer_);
            buffer_.clear();
            return Status::kLine;
        }
        // A Ctrl-C that interrupted the last read (EINTR), or came just before this one (which
        // would otherwise wait for the next key).
        if (interrupts_ && interrupts_->take()) {
            buffer_.clear();
            return Status::kInterrupted;
        }
        char chunk[4096];
        const ssize_t n = ::read(fd_, chunk, sizeof chunk);
        if (n > 0) {
            buffer_.append(chunk, static_cast<size_t>(n));
        } else if (n == 0) {
            end_ = true;
        } else if (errno != EINTR) {
            fail("reading standard input: {}", std::strerror(errno));
        }
    }
}

}  // namespace strata::chat
