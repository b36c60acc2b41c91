// The server's view of its client connections, which httplib 0.11 does not give its handlers:
// the socket a request came on, whether its client went away, and a watch that drops clients
// whose request does not arrive whole in time.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

namespace httplib {
struct Request;
}

namespace strata::server {

// The socket a request came on, found among this process's descriptors by its two ends (unique
// among open connections; the descriptor stays open while the handler runs). -1 when not found.
int connection_fd(const httplib::Request& req);

// Whether the client closed its end (or reset it): a read that would block means it is still
// there; pipelined bytes of its next request too. A client that half-closes after its request
// reads as gone.
bool peer_closed(int fd);

// httplib's timeouts are per read, so a client that dribbles its request a byte at a time
// (slowloris) holds a worker thread until the header limit — hours. The watch looks at the
// server's connections twice a second and shuts down any whose request has not arrived whole
// within `deadline` of the connection opening or of the last answer on it; a connection whose
// request is being answered is left alone (its writes have their own timeout).
class ConnectionWatch {
  public:
    ConnectionWatch() = default;
    ~ConnectionWatch() { stop(); }
    ConnectionWatch(const ConnectionWatch&) = delete;
    ConnectionWatch& operator=(const ConnectionWatch&) = delete;

    // Watches connections to local port `port`.
    void start(int port, std::chrono::milliseconds deadline);
    void stop();

    // The request's connection is being answered (from the pre-routing handler), or its answer
    // is out (the logger): its clock starts again for the next request.
    void answering(const httplib::Request& req, bool on);

    // Connections shut down so far.
    int64_t dropped() const { return dropped_.load(); }

  private:
    using Clock = std::chrono::steady_clock;
    struct Conn {
        Clock::time_point since;
        bool answering = false;
    };
    void scan();

    int port_ = 0;
    std::chrono::milliseconds deadline_{0};
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::map<std::pair<int, ino_t>, Conn> conns_;  // by descriptor and socket inode
    std::atomic<int64_t> dropped_{0};
    std::thread thread_;
};

}  // namespace strata::server
