// Stop strings (--stop): generation ends where the text first contains one of them (the one that
// starts first; the longest of those that start at the same place). The text comes token by
// token and a stop string may span several tokens, so text that could be the start of a stop
// string is held back until the next token settles it; nothing of a stop string is ever passed
// on, and the result does not depend on how the text was cut into tokens.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace strata::chat {

class StopStrings {
  public:
    // Throws strata::UsageError naming --stop for an empty string.
    explicit StopStrings(std::vector<std::string> stops);

    // The next piece of text; returns what is known not to belong to a stop string. Once a stop
    // string is complete, matched() is true, the text before it has been returned and everything
    // from it on is dropped (later calls return nothing).
    std::string push(std::string_view text);
    // The end of the text: what was held back is returned after all.
    std::string finish();

    bool matched() const { return matched_; }
    const std::string& match() const { return match_; }  // the stop string found
    bool empty() const { return stops_.empty(); }

  private:
    // Passes on what is decided in held text + `text`; `end`: no more text will come.
    std::string scan(std::string buf, bool end);

    std::vector<std::string> stops_;
    std::string held_;  // a suffix of the text that is the start of some stop string
    bool matched_ = false;
    std::string match_;
};

}  // namespace strata::chat
