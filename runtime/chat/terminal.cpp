#include "runtime/chat/terminal.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "runtime/error.h"

namespace strata::chat {
namespace {

// Signal handler state: lock-free atomics and a pipe, safe to touch in a handler.
std::atomic<int> g_pending{0};
std::atomic<bool> g_installed{false};
std::atomic<bool> g_reset_style{false};
std::atomic<int> g_wake_write{-1};  // write end of the pipe that wakes a LineReader
struct sigaction g_previous {};

static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);

// Only async-signal-safe calls here.
extern "C" void on_sigint(int) {
    if (g_pending.fetch_add(1) > 0) {
        // The first Ctrl-C was not taken: the program is not listening, so leave now.
        if (g_reset_style.load()) {
            const ssize_t ignored = ::write(STDOUT_FILENO, kSgrReset.data(), kSgrReset.size());
            (void)ignored;
        }
        const ssize_t ignored = ::write(STDERR_FILENO, "\n", 1);
        (void)ignored;
        ::_exit(130);
    }
    const int fd = g_wake_write.load();
    if (fd >= 0) {
        const ssize_t ignored = ::write(fd, "!", 1);  // non-blocking: a full pipe is awake anyway
        (void)ignored;
    }
}

// Empties the wake-up pipe.
void drain(int fd) {
    char buf[64];
    while (::read(fd, buf, sizeof buf) > 0) {
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
    if (::pipe2(wake_, O_NONBLOCK | O_CLOEXEC) != 0) {
        g_installed.store(false);
        fail("cannot create the Ctrl-C wake-up pipe: {}", std::strerror(errno));
    }
    g_pending.store(0);
    g_reset_style.store(reset_style);
    g_wake_write.store(wake_[1]);
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    // Interrupted system calls restart, so that no write to the terminal is cut short; a reader
    // waiting for input is woken by the pipe instead.
    sa.sa_flags = SA_RESTART;
    if (::sigaction(SIGINT, &sa, &g_previous) != 0) {
        const int e = errno;
        g_wake_write.store(-1);
        ::close(wake_[0]);
        ::close(wake_[1]);
        g_installed.store(false);
        fail("cannot install the Ctrl-C handler: {}", std::strerror(e));
    }
}

InterruptHandler::~InterruptHandler() {
    ::sigaction(SIGINT, &g_previous, nullptr);
    g_wake_write.store(-1);
    ::close(wake_[0]);
    ::close(wake_[1]);
    g_installed.store(false);
}

bool InterruptHandler::pending() const {
    return g_pending.load() > 0;
}

bool InterruptHandler::take() {
    drain(wake_[0]);
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
        if (interrupts_) {
            // Wait for input or a Ctrl-C, whichever comes first (a Ctrl-C that came before the
            // wait has left its byte in the pipe).
            pollfd fds[2] = {{fd_, POLLIN, 0}, {interrupts_->wake_fd(), POLLIN, 0}};
            const int n = ::poll(fds, 2, -1);
            if (n < 0 && errno != EINTR)
                fail("waiting for standard input: {}", std::strerror(errno));
            if (interrupts_->take()) {
                buffer_.clear();  // the terminal has discarded the line too
                return Status::kInterrupted;
            }
            if (n <= 0 || (fds[0].revents == 0)) continue;
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
