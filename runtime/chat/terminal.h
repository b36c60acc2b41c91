// What the interactive chat needs from the terminal: whether to use colour, Ctrl-C as a request
// rather than a kill, and reading lines that a Ctrl-C can interrupt.
#pragma once

#include <string>
#include <string_view>

namespace strata::chat {

// ANSI SGR sequences.
inline constexpr std::string_view kSgrDim = "\x1b[2m";
inline constexpr std::string_view kSgrReset = "\x1b[0m";
// Carriage return and erase to the end of the line: removes a one-line notice.
inline constexpr std::string_view kEraseLine = "\r\x1b[K";

// Whether output to `fd` may carry ANSI styles: it is a terminal, NO_COLOR is unset or empty
// (no-color.org) and TERM is not "dumb".
bool use_color(int fd);
bool is_terminal(int fd);

// While one exists, SIGINT (Ctrl-C) does not end the process: it sets a flag that the chat loop
// checks between tokens, and wakes a LineReader waiting for input. A second SIGINT that arrives
// before the first was taken ends the process at once (exit status 130), so that a program busy
// in a long computation can still be stopped. At most one exists at a time.
class InterruptHandler {
  public:
    // `reset_style`: written to stdout before such a forced exit (kSgrReset when styling), so
    // that the terminal is not left dim.
    explicit InterruptHandler(bool reset_style = false);
    ~InterruptHandler();
    InterruptHandler(const InterruptHandler&) = delete;
    InterruptHandler& operator=(const InterruptHandler&) = delete;

    // Whether a Ctrl-C came and was not taken yet.
    bool pending() const;
    // Takes the pending Ctrl-C: returns whether there was one and clears it.
    bool take();
    // Readable after a Ctrl-C, until take(): for poll().
    int wake_fd() const { return wake_[0]; }

  private:
    int wake_[2] = {-1, -1};  // a non-blocking pipe the signal handler writes a byte to
};

// Reads lines from a file descriptor (stdin), without stdio buffering, so that a Ctrl-C at the
// prompt returns at once.
class LineReader {
  public:
    enum class Status { kLine, kInterrupted, kEnd };

    // `interrupts` may be null: then an interrupted read is retried.
    LineReader(int fd, InterruptHandler* interrupts);

    // The next line, without its "\n" (and "\r"). kInterrupted: a Ctrl-C came while waiting (and
    // is taken); what was typed on the line is gone (as the terminal discards it). kEnd: end of
    // input (Ctrl-D); a last line without "\n" is returned first. Throws strata::Error on a read
    // error.
    Status read(std::string& line);

  private:
    int fd_;
    InterruptHandler* interrupts_;
    std::string buffer_;  // bytes read past the last line returned
    bool end_ = false;
};

}  // namespace strata::chat
