// Debugging taps (see tap.h).
#include "runtime/arch/tap.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace strata::arch {
namespace {

const char* tap_dir() {
    static const char* dir = std::getenv("STRATA_TAP_DIR");
    return dir;
}

int g_pass = -1;
int64_t g_layer = -1;

}  // namespace

bool tap_enabled() {
    return tap_dir() != nullptr;
}

void tap_next_pass() {
    ++g_pass;
}

void tap_set_layer(int64_t layer) {
    g_layer = layer;
}

void tap(const char* name, int64_t layer, const float* data, int64_t n) {
    if (!tap_enabled()) return;
    if (layer == kTapCurrent) layer = g_layer;
    const std::string path = layer >= 0
                                 ? fmt::format("{}/{}_{}-{}.bin", tap_dir(), g_pass, name, layer)
                                 : fmt::format("{}/{}_{}.bin", tap_dir(), g_pass, name);
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return;
    std::fwrite(data, sizeof(float), static_cast<size_t>(n), f);
    std::fclose(f);
}

}  // namespace strata::arch
