// CPU feature detection and the per-type kernel tables.
#include "simd/dispatch.h"

#include <cstdlib>
#include <string_view>

#include "runtime/error.h"
#include "simd/ref/ref.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define STRATA_X86 1
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace strata::dispatch {
namespace {

#if STRATA_X86
struct Regs {
    uint32_t a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(uint32_t leaf, uint32_t subleaf) {
    Regs r;
    __cpuid_count(leaf, subleaf, r.a, r.b, r.c, r.d);
    return r;
}

bool bit(uint32_t reg, int n) {
    return (reg >> n) & 1u;
}

// XCR0: which register states the OS saves on a context switch. Only valid when CPUID says
// OSXSAVE; the instruction faults otherwise. Written as asm so that this baseline file needs no
// -mxsave.
uint64_t xgetbv0() {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<uint64_t>(hi) << 32) | lo;
}

// Linux (5.16+) hands out AMX tile data state only to processes that ask for it; without the
// permission the first tile instruction kills the process with SIGILL.
bool request_amx_permission() {
#if defined(__linux__) && defined(SYS_arch_prctl)
    constexpr long kArchReqXcompPerm = 0x1023;
    constexpr long kArchGetXcompPerm = 0x1022;
    constexpr int kXfeatureTileData = 18;
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureTileData) != 0) return false;
    uint64_t granted = 0;
    if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &granted) != 0) return false;
    return (granted >> kXfeatureTileData) & 1u;
#else
    return false;  // other systems: no known way to ask, so no AMX
#endif
}

void append(std::string& list, std::string_view item) {
    if (!list.empty()) list += ", ";
    list += item;
}
#endif

Isa parse_isa_env() {
    const char* env = std::getenv("STRATA_ISA");
    if (env == nullptr || *env == '\0') return Isa::amx;
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::amx})
        if (isa_name(isa) == env) return isa;
    fail("STRATA_ISA: expected scalar, avx2, avx512 or amx, found '{}'", env);
}

}  // namespace

CpuFeatures detect_features() {
    CpuFeatures f;
#if STRATA_X86
    const uint32_t max_leaf = __get_cpuid_max(0, nullptr);
    if (max_leaf < 1) return f;
    const Regs l1 = cpuid(1, 0);
    const Regs l7 = max_leaf >= 7 ? cpuid(7, 0) : Regs{};
    const Regs l7s1 = max_leaf >= 7 && l7.a >= 1 ? cpuid(7, 1) : Regs{};

    // XCR0 bits: 1 SSE, 2 AVX (upper ymm), 5..7 AVX-512 (opmask, upper zmm0-15, zmm16-31),
    // 17..18 AMX (tile config, tile data).
    const uint64_t xcr0 = bit(l1.c, 27) ? xgetbv0() : 0;
    const bool os_avx = (xcr0 & 0x6) == 0x6;
    const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
    const bool os_amx = (xcr0 & 0x60000) == 0x60000;

    const bool cpu_avx = bit(l1.c, 28);
    f.fma = os_avx && bit(l1.c, 12);
    f.f16c = os_avx && bit(l1.c, 29);
    f.avx2 = os_avx && cpu_avx && bit(l7.b, 5);
    if (cpu_avx && !os_avx) append(f.os_disabled, "avx (XCR0)");

    const bool cpu_avx512 = bit(l7.b, 16);
    f.avx512f = os_avx512 && cpu_avx512;
    f.avx512dq = f.avx512f && bit(l7.b, 17);
    f.avx512bw = f.avx512f && bit(l7.b, 30);
    f.avx512vl = f.avx512f && bit(l7.b, 31);
    f.avx512vnni = f.avx512f && bit(l7.c, 11);
    f.avx512bf16 = f.avx512f && bit(l7s1.a, 5);
    if (cpu_avx512 && !os_avx512) append(f.os_disabled, "avx512 (XCR0)");

    const bool cpu_amx = bit(l7.d, 24);
    if (cpu_amx) {
        if (!os_amx) {
            append(f.os_disabled, "amx (XCR0)");
        } else if (!request_amx_permission()) {
            append(f.os_disabled, "amx (arch_prctl permission refused)");
        } else {
            f.amx_tile = true;
            f.amx_int8 = bit(l7.d, 25);
            f.amx_bf16 = bit(l7.d, 22);
        }
    }
#endif
    return f;
}

const CpuFeatures& features() {
    static const CpuFeatures f = detect_features();
    return f;
}

std::string to_string(const CpuFeatures& f) {
    const std::pair<bool, std::string_view> names[] = {
        {f.avx2, "avx2"},
        {f.fma, "fma"},
        {f.f16c, "f16c"},
        {f.avx512f, "avx512f"},
        {f.avx512bw, "avx512bw"},
        {f.avx512vl, "avx512vl"},
        {f.avx512dq, "avx512dq"},
        {f.avx512vnni, "avx512vnni"},
        {f.avx512bf16, "avx512bf16"},
        {f.amx_tile, "amx-tile"},
        {f.amx_int8, "amx-int8"},
        {f.amx_bf16, "amx-bf16"},
    };
    std::string out;
    for (const auto& [present, name] : names) {
        if (!present) continue;
        if (!out.empty()) out += ' ';
        out += name;
    }
    if (out.empty()) out = "none";
    if (!f.os_disabled.empty()) out += "; not enabled by the OS: " + f.os_disabled;
    return out;
}

std::string_view isa_name(Isa isa) {
    switch (isa) {
        case Isa::scalar:
            return "scalar";
        case Isa::avx2:
            return "avx2";
        case Isa::avx512:
            return "avx512";
        case Isa::amx:
            return "amx";
    }
    return "unknown";
}

KernelTable::KernelTable() {
    for (uint32_t id = 0; id < quant::kTypeIdLimit; ++id) {
        const quant::TypeTraits& t = quant::traits(id);
        kernels_[id].vec_dot = t.vec_dot;
        kernels_[id].gemm_dot = t.vec_dot;
        kernels_[id].quantize_activation = t.quantize_activation;
    }
    // The float formats' GEMM order has a scalar reference of its own.
    set_gemm_dot(quant::Type::F32, Isa::scalar, quant::ref::gemm_dot_f32);
    set_gemm_dot(quant::Type::F16, Isa::scalar, quant::ref::gemm_dot_f16);
    set_gemm_dot(quant::Type::BF16, Isa::scalar, quant::ref::gemm_dot_bf16);
}

const TypeKernels& KernelTable::operator[](quant::Type type) const {
    static const TypeKernels kNone{};
    const auto id = static_cast<uint32_t>(type);
    return id < quant::kTypeIdLimit ? kernels_[id] : kNone;
}

void KernelTable::set_vec_dot(quant::Type type, Isa isa, quant::VecDotFn fn) {
    const auto id = static_cast<uint32_t>(type);
    if (id >= quant::kTypeIdLimit || fn == nullptr || quant::traits(type).vec_dot == nullptr)
        return;
    kernels_[id].vec_dot = fn;
    kernels_[id].vec_dot_isa = isa;
    if (!own_gemm_dot_[id]) {
        kernels_[id].gemm_dot = fn;
        kernels_[id].gemm_dot_isa = isa;
    }
}

void KernelTable::set_gemm_dot(quant::Type type, Isa isa, quant::VecDotFn fn) {
    const auto id = static_cast<uint32_t>(type);
    if (id >= quant::kTypeIdLimit || fn == nullptr || quant::traits(type).vec_dot == nullptr)
        return;
    kernels_[id].gemm_dot = fn;
    kernels_[id].gemm_dot_isa = isa;
    own_gemm_dot_[id] = true;
}

void KernelTable::set_quantize_activation(quant::Type type, Isa isa, quant::QuantizeFn fn) {
    const auto id = static_cast<uint32_t>(type);
    if (id >= quant::kTypeIdLimit || fn == nullptr ||
        quant::traits(type).quantize_activation == nullptr)
        return;
    kernels_[id].quantize_activation = fn;
    kernels_[id].quantize_activation_isa = isa;
}

void KernelTable::set_tile(quant::Type type, Isa isa, TileFn fn) {
    const auto id = static_cast<uint32_t>(type);
    if (id >= quant::kTypeIdLimit || fn == nullptr || quant::traits(type).vec_dot == nullptr)
        return;
    kernels_[id].tile = fn;
    kernels_[id].tile_isa = isa;
}

void KernelTable::set_tile_x16(quant::Type type, Isa isa, TileFn fn) {
    const auto id = static_cast<uint32_t>(type);
    if (id >= quant::kTypeIdLimit || fn == nullptr || quant::traits(type).vec_dot == nullptr)
        return;
    kernels_[id].tile_x16 = fn;
    kernels_[id].tile_x16_isa = isa;
}

void KernelTable::set_interleave_x16(quant::Type type, Isa isa, InterleaveFn fn) {
    const auto id = static_cast<uint32_t>(type);
    if (id >= quant::kTypeIdLimit || fn == nullptr) return;
    kernels_[id].interleave_x16 = fn;
    kernels_[id].interleave_x16_isa = isa;
}

KernelTable build_table(const CpuFeatures& f, Isa max_isa) {
    KernelTable table;
    if (f.avx2_set() && max_isa >= Isa::avx2) avx2::register_kernels(table);
    if (f.avx512_set() && max_isa >= Isa::avx512) avx512::register_kernels(table);
    if (f.avx512bf16_set() && max_isa >= Isa::avx512) avx512bf16::register_kernels(table);
    if (f.amx_set() && max_isa >= Isa::amx) amx::register_kernels(table);
    return table;
}

const KernelTable& kernels() {
    static const KernelTable table = build_table(features(), parse_isa_env());
    return table;
}

}  // namespace strata::dispatch
