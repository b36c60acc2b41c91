#include "runtime/chat/stop_strings.h"

#include <algorithm>

#include "runtime/error.h"

namespace strata::chat {

StopStrings::StopStrings(std::vector<std::string> stops) : stops_(std::move(stops)) {
    for (const std::string& s : stops_)
        if (s.empty()) throw UsageError("--stop: a stop string cannot be empty");
}

std::string StopStrings::push(std::string_view text) {
    if (matched_) return {};
    std::string buf = std::move(held_);
    held_.clear();
    buf.append(text);
    return scan(std::move(buf), false);
}

std::string StopStrings::finish() {
    if (matched_) return {};
    std::string buf = std::move(held_);
    held_.clear();
    return scan(std::move(buf), true);
}

std::string StopStrings::scan(std::string buf, bool end) {
    // The earliest complete stop string (the longest where several start at the same place).
    size_t first = std::string::npos;
    std::string_view found;
    for (const std::string& s : stops_) {
        const size_t at = buf.find(s);
        if (at == std::string::npos) continue;
        if (at < first || (at == first && s.size() > found.size())) {
            first = at;
            found = s;
        }
    }
    // A stop string that may still complete and would start before that one, or at the same
    // place and be longer: wait for it. Only the last max_len - 1 positions can hold one.
    const size_t limit = first == std::string::npos ? buf.size() : first + 1;
    size_t max_len = 0;
    for (const std::string& s : stops_) max_len = std::max(max_len, s.size());
    size_t pending = std::string::npos;
    if (!end) {
        for (size_t q = buf.size() >= max_len ? buf.size() - max_len + 1 : 0; q < limit; ++q) {
            const std::string_view tail = std::string_view(buf).substr(q);
            for (const std::string& s : stops_) {
                if (s.size() > tail.size() && std::string_view(s).substr(0, tail.size()) == tail) {
                    pending = q;
                    break;
                }
            }
            if (pending != std::string::npos) break;
        }
    }
    if (pending != std::string::npos) {
        held_ = buf.substr(pending);
        buf.resize(pending);
        return buf;
    }
    if (first != std::string::npos) {
        matched_ = true;
        match_ = std::string(found);
        buf.resize(first);
    }
    return buf;
}

}  // namespace strata::chat
