#include "server/connection_watch.h"

#include <dirent.h>
#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <charconv>
#include <string>
#include <string_view>
#include <vector>

namespace strata::server {
namespace {

// The descriptors of this process, in no order.
std::vector<int> open_fds() {
    std::vector<int> fds;
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) return fds;
    while (const dirent* e = ::readdir(dir)) {
        int fd = -1;
        const std::string_view name(e->d_name);
        if (std::from_chars(name.data(), name.data() + name.size(), fd).ec == std::errc())
            fds.push_back(fd);
    }
    ::closedir(dir);
    return fds;
}

int port_of(const sockaddr_storage& a) {
    if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
    if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
    return -1;
}

// The socket inode of fd when it is a connection accepted on local port `port`, else 0.
ino_t accepted_on(int fd, int port) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return 0;
    sockaddr_storage local{}, peer{};
    socklen_t local_len = sizeof local, peer_len = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
        port_of(local) != port)
        return 0;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) return 0;
    return st.st_ino;
}

}  // namespace

int connection_fd(const httplib::Request& req) {
    if (req.remote_port <= 0 || req.local_port <= 0) return -1;
    for (const int fd : open_fds()) {
        sockaddr_storage peer{}, local{};
        socklen_t peer_len = sizeof peer, local_len = sizeof local;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) continue;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) continue;
        if (port_of(peer) != req.remote_port || port_of(local) != req.local_port) continue;
        char host[NI_MAXHOST];
        if (::getnameinfo(reinterpret_cast<sockaddr*>(&peer), peer_len, host, sizeof host, nullptr,
                          0, NI_NUMERICHOST) != 0)
            continue;
        if (req.remote_addr == host) return fd;
    }
    return -1;
}

bool peer_closed(int fd) {
    char c = 0;
    const ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n >= 0) return n == 0;
    return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

void ConnectionWatch::start(int port, std::chrono::milliseconds deadline) {
    stop();
    port_ = port;
    deadline_ = deadline;
    stopping_ = false;
    thread_ = std::thread([this] {
        std::unique_lock lock(mutex_);
        while (!stopping_) {
            lock.unlock();
            scan();
            lock.lock();
            cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_; });
        }
    });
}

void ConnectionWatch::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void ConnectionWatch::answering(const httplib::Request& req, bool on) {
    if (!thread_.joinable()) return;
    const int fd = connection_fd(req);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) != 0) return;
    std::lock_guard lock(mutex_);
    Conn& c = conns_[{fd, st.st_ino}];
    c.answering = on;
    c.since = Clock::now();
}

void ConnectionWatch::scan() {
    const Clock::time_point now = Clock::now();
    std::map<std::pair<int, ino_t>, Conn> seen;
    std::vector<std::pair<int, ino_t>> late;
    const std::vector<int> fds = open_fds();
    std::lock_guard lock(mutex_);
    for (const int fd : fds) {
        const ino_t ino = accepted_on(fd, port_);
        if (ino == 0) continue;
        const auto key = std::pair{fd, ino};
        const auto it = conns_.find(key);
        const Conn c = it != conns_.end() ? it->second : Conn{now, false};
        seen[key] = c;
        if (!c.answering && now - c.since > deadline_) late.push_back(key);
    }
    conns_ = std::move(seen);
    for (const auto& [fd, ino] : late) {
        // Still the same socket (the descriptor may have been closed and reused meanwhile).
        struct stat st {};
        if (::fstat(fd, &st) != 0 || st.st_ino != ino) continue;
        ::shutdown(fd, SHUT_RDWR);
        conns_.erase({fd, ino});
        ++dropped_;
    }
}

}  // namespace strata::server
