// Reader: io_uring (O_DIRECT, registered files and buffers) with a blocking pread fallback.
#include "offload/reader.h"

#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "runtime/error.h"

namespace strata::offload {
namespace {

// -EAGAIN / -EINTR in a row on one read before the reader gives up: far past any storm a
// healthy kernel produces, short of spinning forever on a broken one.
constexpr uint32_t kMaxRetries = 1'000'000;
// io_uring refuses a registered buffer larger than 1 GiB.
constexpr uint64_t kMaxRegisteredBuffer = uint64_t{1} << 30;

uint64_t now_ns() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

// The fallback notice is printed once per process, however many models are loaded.
std::atomic<bool> g_noticed{false};

}  // namespace

struct Reader::Ring {
    io_uring ring{};
};

Reader::Reader(const std::vector<std::string>& paths, std::span<const iovec> buffers,
               const ReaderOptions& options)
    : paths_(paths), options_(options) {
    if (options_.queue_depth == 0) options_.queue_depth = 1;
    if (options_.chunk_bytes < kAlign || options_.chunk_bytes % kAlign != 0)
        fail("reader chunk of {} bytes is not a positive multiple of {}", options_.chunk_bytes,
             kAlign);
    std::string notice;
    direct_ = true;
    for (const std::string& path : paths_) {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
        if (fd < 0 && errno == EINVAL) {
            // tmpfs and some network file systems refuse O_DIRECT: read through the page cache.
            if (notice.empty())
                notice = fmt::format(
                    "O_DIRECT is unavailable on {}; reading experts through the "
                    "page cache",
                    path);
            direct_ = false;
            fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        }
        if (fd < 0) {
            const int err = errno;
            for (int open_fd : fds_) ::close(open_fd);
            fds_.clear();
            fail("{}: cannot open for expert reads: {}", path, std::strerror(err));
        }
        fds_.push_back(fd);
    }
    if (!options_.force_pread && !options_.simulate) {
        auto ring = std::make_unique<Ring>();
        const int ret = io_uring_queue_init(options_.queue_depth, &ring->ring, 0);
        if (ret < 0) {
            notice = fmt::format("io_uring is unavailable ({}); reading experts with pread{}",
                                 std::strerror(-ret), direct_ ? "" : " through the page cache");
        } else {
            ring_ = std::move(ring);
            fixed_files_ = io_uring_register_files(&ring_->ring, fds_.data(),
                                                   static_cast<unsigned>(fds_.size())) == 0;
            bool small = !buffers.empty() && buffers.size() <= 16384;
            for (const iovec& v : buffers) small = small && v.iov_len <= kMaxRegisteredBuffer;
            // Registration pins the pages (RLIMIT_MEMLOCK on older kernels): without it reads
            // still work, only slightly slower, so a refusal is not worth a notice.
            fixed_buffers_ =
                small && io_uring_register_buffers(&ring_->ring, buffers.data(),
                                                   static_cast<unsigned>(buffers.size())) == 0;
        }
    }
    if (!notice.empty() && !options_.quiet && !g_noticed.exchange(true))
        std::fprintf(stderr, "strata: note: %s\n", notice.c_str());
    flight_storage_.resize(options_.queue_depth);
    in_flight_.assign(options_.queue_depth, nullptr);
    for (uint32_t i = options_.queue_depth; i-- > 0;) free_slots_.push_back(i);
}

Reader::~Reader() {
    // Reads in flight still write into the caller's memory: wait for every one before the ring
    // and the buffers go away.
    if (ring_) {
        size_t in_flight = options_.queue_depth - free_slots_.size();
        while (in_flight > 0) {
            io_uring_cqe* cqe = nullptr;
            const int ret = io_uring_wait_cqe(&ring_->ring, &cqe);
            if (ret == -EINTR) continue;
            if (ret < 0) break;
            io_uring_cqe_seen(&ring_->ring, cqe);
            --in_flight;
        }
        io_uring_queue_exit(&ring_->ring);
    }
    for (int fd : fds_) ::close(fd);
}

void Reader::submit(const ReadRequest& request) {
    if (request.offset % kAlign || request.bytes % kAlign ||
        reinterpret_cast<uintptr_t>(request.dst) % kAlign || request.needed > request.bytes ||
        request.file >= fds_.size()) {
        fail("expert read of {} bytes at offset {} of file {} is not aligned to {} bytes",
             request.bytes, request.offset, request.file, kAlign);
    }
    if (options_.simulate) {
        bytes_read_ += request.needed;
        completed_.push_back(request.tag);
        return;
    }
    uint64_t parent = 0;
    if (!free_requests_.empty()) {
        parent = free_requests_.back();
        free_requests_.pop_back();
    } else {
        parent = requests_.size();
        requests_.emplace_back();
    }
    Pending& pending = requests_[parent];
    pending = {request.tag, 0, true};
    ++outstanding_;
    for (uint64_t at = 0; at < request.bytes; at += options_.chunk_bytes) {
        Piece piece;
        piece.parent = parent;
        piece.part = request;
        piece.part.offset = request.offset + at;
        piece.part.dst = request.dst + at;
        piece.part.bytes = std::min(options_.chunk_bytes, request.bytes - at);
        piece.part.needed =
            request.needed > at ? std::min(piece.part.bytes, request.needed - at) : 0;
        if (piece.part.needed == 0) continue;  // wholly in the alignment padding past the end
        ++pending.pieces_left;
        queued_.push_back(piece);
    }
    if (pending.pieces_left == 0) {
        pending.live = false;
        free_requests_.push_back(parent);
        --outstanding_;
        completed_.push_back(request.tag);
        return;
    }
    if (ring_) return;
    // pread: the pieces now, one after another.
    const uint64_t t0 = now_ns();
    while (!queued_.empty()) {
        Piece piece = queued_.front();
        queued_.pop_front();
        pread_piece(piece);
    }
    busy_ns_ += now_ns() - t0;
    if (!error_.empty()) fail_drained();
}

void Reader::pread_piece(Piece& piece) {
    for (;;) {
        const ssize_t got = ::pread(fds_[piece.part.file], piece.part.dst, piece.part.bytes,
                                    static_cast<off_t>(piece.part.offset));
        const int64_t result = got < 0 ? -static_cast<int64_t>(errno) : got;
        if (complete(piece, result)) break;
        // Requeued at the front by complete(): take it back and go on here.
        piece = queued_.front();
        queued_.pop_front();
    }
    finish_piece(piece.parent, completed_);
}

bool Reader::complete(Piece& piece, int64_t result) {
    ReadRequest& r = piece.part;
    if (options_.fault_hook) result = options_.fault_hook(r, result);
    if (result == -EINTR || result == -EAGAIN) {
        if (++r.retries > kMaxRetries) {
            if (error_.empty())
                error_ = fmt::format("{}: read at offset {} still failing after {} retries: {}",
                                     paths_[r.file], r.offset, kMaxRetries,
                                     std::strerror(static_cast<int>(-result)));
            return true;
        }
        queued_.push_front(piece);
        return false;
    }
    if (result < 0) {
        if (error_.empty())
            error_ = fmt::format("{}: read of {} bytes at offset {} failed: {}", paths_[r.file],
                                 r.bytes, r.offset, std::strerror(static_cast<int>(-result)));
        return true;
    }
    if (result == 0) {
        if (error_.empty())
            error_ = fmt::format("{}: the file ends before offset {} + {} bytes (truncated?)",
                                 paths_[r.file], r.offset, r.needed);
        return true;
    }
    const auto got = static_cast<uint64_t>(result);
    bytes_read_ += std::min(got, r.needed);
    if (got >= r.needed) return true;
    // Short read: go on from the last aligned byte that arrived (O_DIRECT needs it aligned;
    // the few bytes after it are read again).
    const uint64_t advance = got / kAlign * kAlign;
    bytes_read_ -= got - advance;
    r.offset += advance;
    r.dst += advance;
    r.bytes -= advance;
    r.needed -= advance;
    if (advance == 0 && ++r.retries > kMaxRetries) {
        if (error_.empty())
            error_ = fmt::format("{}: reads at offset {} keep returning under {} bytes",
                                 paths_[r.file], r.offset, kAlign);
        return true;
    }
    queued_.push_front(piece);
    return false;
}

void Reader::finish_piece(uint64_t parent, std::vector<uint64_t>& done) {
    Pending& pending = requests_[parent];
    if (--pending.pieces_left > 0) return;
    pending.live = false;
    free_requests_.push_back(parent);
    --outstanding_;
    done.push_back(pending.tag);
}

void Reader::flush() {
    if (!ring_) return;
    io_uring* ring = &ring_->ring;
    bool prepared = false;
    while (!queued_.empty() && !free_slots_.empty()) {
        io_uring_sqe* sqe = io_uring_get_sqe(ring);
        if (!sqe) break;
        const uint32_t slot = free_slots_.back();
        free_slots_.pop_back();
        if (free_slots_.size() + 1 == options_.queue_depth) start_busy();
        Piece& piece = flight_storage_[slot];
        piece = queued_.front();
        queued_.pop_front();
        in_flight_[slot] = &piece;
        const ReadRequest& r = piece.part;
        const int fd = fixed_files_ ? static_cast<int>(r.file) : fds_[r.file];
        if (fixed_buffers_ && r.buffer >= 0) {
            io_uring_prep_read_fixed(sqe, fd, r.dst, static_cast<unsigned>(r.bytes), r.offset,
                                     r.buffer);
        } else {
            io_uring_prep_read(sqe, fd, r.dst, static_cast<unsigned>(r.bytes), r.offset);
        }
        if (fixed_files_) sqe->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data64(sqe, slot);
        prepared = true;
    }
    if (!prepared) return;
    for (;;) {
        const int ret = io_uring_submit(ring);
        if (ret >= 0) return;
        if (ret == -EINTR || ret == -EAGAIN || ret == -EBUSY) {
            // The kernel is short of room for completions: reap some, then try again.
            std::vector<uint64_t> done;
            reap(false, done);
            completed_.insert(completed_.end(), done.begin(), done.end());
            continue;
        }
        if (error_.empty()) error_ = fmt::format("io_uring_submit failed: {}", std::strerror(-ret));
        fail_drained();
    }
}

void Reader::start_busy() {
    busy_since_ = now_ns();
}
void Reader::stop_busy() {
    busy_ns_ += now_ns() - busy_since_;
}

void Reader::reap(bool block, std::vector<uint64_t>& done) {
    if (!ring_) return;
    io_uring* ring = &ring_->ring;
    for (;;) {
        io_uring_cqe* cqe = nullptr;
        int ret = io_uring_peek_cqe(ring, &cqe);
        if (ret == -EAGAIN && block && free_slots_.size() < options_.queue_depth) {
            ret = io_uring_wait_cqe(ring, &cqe);
            if (ret == -EINTR) continue;
        }
        if (ret < 0 || !cqe) break;
        block = false;  // one completion is enough; take the rest that are there
        const auto slot = static_cast<uint32_t>(io_uring_cqe_get_data64(cqe));
        const int64_t result = cqe->res;
        io_uring_cqe_seen(ring, cqe);
        Piece piece = *in_flight_[slot];
        in_flight_[slot] = nullptr;
        free_slots_.push_back(slot);
        if (free_slots_.size() == options_.queue_depth) stop_busy();
        if (complete(piece, result)) finish_piece(piece.parent, done);
    }
    if (!error_.empty()) fail_drained();
    flush();
}

void Reader::poll(std::vector<uint64_t>& done) {
    done.insert(done.end(), completed_.begin(), completed_.end());
    completed_.clear();
    reap(false, done);
}

void Reader::wait_any(std::vector<uint64_t>& done) {
    const size_t before = done.size();
    poll(done);
    while (done.size() == before && outstanding_ > 0) {
        flush();
        reap(true, done);
    }
}

void Reader::fail_drained() {
    queued_.clear();
    if (ring_) {
        while (free_slots_.size() < options_.queue_depth) {
            io_uring_cqe* cqe = nullptr;
            const int ret = io_uring_wait_cqe(&ring_->ring, &cqe);
            if (ret == -EINTR) continue;
            if (ret < 0) break;
            const auto slot = static_cast<uint32_t>(io_uring_cqe_get_data64(cqe));
            io_uring_cqe_seen(&ring_->ring, cqe);
            in_flight_[slot] = nullptr;
            free_slots_.push_back(slot);
            if (free_slots_.size() == options_.queue_depth) stop_busy();
        }
    }
    requests_.clear();
    free_requests_.clear();
    completed_.clear();
    outstanding_ = 0;
    const std::string message = std::move(error_);
    error_.clear();
    throw Error(message);
}

}  // namespace strata::offload
