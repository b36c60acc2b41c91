// Dispatch: feature detection agrees with what Linux reports, tables start from the scalar
// references, registration follows the rules, and a table for a bare CPU is all scalar.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "simd/dispatch.h"
#include "simd/quant.h"

namespace strata {
namespace {

using dispatch::CpuFeatures;
using dispatch::Isa;
using quant::Type;

// The flags of the first CPU in /proc/cpuinfo (the kernel's own view: cpuid filtered by what it
// enabled), or an empty set when it is unavailable.
std::set<std::string> proc_cpu_flags() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("flags", 0) != 0) continue;
        std::istringstream words(line.substr(line.find(':') + 1));
        std::set<std::string> flags;
        for (std::string w; words >> w;) flags.insert(w);
        return flags;
    }
    return {};
}

TEST(QuantDispatch, FeaturesAgreeWithProcCpuinfo) {
    const auto flags = proc_cpu_flags();
    if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo flags on this system";
    const CpuFeatures& f = dispatch::features();
    std::printf("[ features ] %s\n", dispatch::to_string(f).c_str());
    EXPECT_EQ(f.avx2, flags.count("avx2") == 1);
    EXPECT_EQ(f.fma, flags.count("fma") == 1);
    EXPECT_EQ(f.f16c, flags.count("f16c") == 1);
    EXPECT_EQ(f.avx512f, flags.count("avx512f") == 1);
    EXPECT_EQ(f.avx512bw, flags.count("avx512bw") == 1);
    EXPECT_EQ(f.avx512vl, flags.count("avx512vl") == 1);
    EXPECT_EQ(f.avx512dq, flags.count("avx512dq") == 1);
    EXPECT_EQ(f.avx512vnni, flags.count("avx512_vnni") == 1);
    EXPECT_EQ(f.avx512bf16, flags.count("avx512_bf16") == 1);
    // AMX needs the arch_prctl permission on top of the flag; the flag is necessary.
    EXPECT_TRUE(!f.amx_tile || flags.count("amx_tile") == 1);
    EXPECT_TRUE(!f.amx_int8 || flags.count("amx_int8") == 1);
    EXPECT_TRUE(!f.amx_bf16 || flags.count("amx_bf16") == 1);
}

TEST(QuantDispatch, FeaturesAreDetectedOnceAndConsistently) {
    const CpuFeatures again = dispatch::detect_features();
    EXPECT_EQ(dispatch::to_string(again), dispatch::to_string(dispatch::features()));
    // The table this process multiplies with was built for these features: unless STRATA_ISA
    // caps it, the float types take AVX-512 kernels exactly when the CPU runs AVX-512, and the
    // K-quants' vec_dot (registered at avx2 only) AVX2 exactly when it runs AVX2.
    const char* cap = std::getenv("STRATA_ISA");
    if (cap != nullptr && *cap != '\0') return;
    const CpuFeatures& f = dispatch::features();
    EXPECT_EQ(dispatch::kernels()[quant::Type::F32].vec_dot_isa,
              f.avx512_set() ? dispatch::Isa::avx512 : dispatch::Isa::scalar);
    EXPECT_EQ(dispatch::kernels()[quant::Type::Q4_K].vec_dot_isa,
              f.avx2_set() ? dispatch::Isa::avx2 : dispatch::Isa::scalar);
}

TEST(QuantDispatch, ToStringListsFlagsAndOsRefusals) {
    CpuFeatures f;
    EXPECT_EQ(dispatch::to_string(f), "none");
    f.avx2 = f.fma = true;
    f.amx_int8 = true;
    EXPECT_EQ(dispatch::to_string(f), "avx2 fma amx-int8");
    f.os_disabled = "avx512 (XCR0)";
    EXPECT_EQ(dispatch::to_string(f), "avx2 fma amx-int8; not enabled by the OS: avx512 (XCR0)");
}

TEST(QuantDispatch, IsaSetsNest) {
    CpuFeatures f;
    f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = f.avx512vnni = true;
    EXPECT_FALSE(f.avx512_set()) << "AVX-512 kernels are built with -mfma -mf16c too";
    f.avx2 = f.fma = f.f16c = true;
    EXPECT_TRUE(f.avx2_set());
    EXPECT_TRUE(f.avx512_set()) << "Cascade Lake / Ice Lake: AVX-512 with VNNI, no BF16";
    EXPECT_FALSE(f.avx512bf16_set());
    f.amx_tile = f.amx_int8 = f.amx_bf16 = true;
    EXPECT_FALSE(f.amx_set()) << "AMX kernels are built with -mavx512bf16 too";
    f.avx512bf16 = true;
    EXPECT_TRUE(f.avx512bf16_set());
    EXPECT_TRUE(f.amx_set());
    f.avx512vnni = false;
    EXPECT_FALSE(f.avx512_set()) << "Skylake-X: AVX-512 without VNNI runs the avx2 level";
    EXPECT_FALSE(f.avx512bf16_set());
    EXPECT_FALSE(f.amx_set());
}

TEST(QuantDispatch, BareCpuGetsTheScalarReferences) {
    const dispatch::KernelTable table = dispatch::build_table(CpuFeatures{});
    for (uint32_t id = 0; id < quant::kTypeIdLimit; ++id) {
        const auto type = static_cast<Type>(id);
        const quant::TypeTraits& t = quant::traits(type);
        EXPECT_EQ(table[type].vec_dot, t.vec_dot) << quant::type_name(type);
        EXPECT_EQ(table[type].quantize_activation, t.quantize_activation);
        EXPECT_EQ(table[type].vec_dot_isa, Isa::scalar);
    }
    // Every computed type can multiply: a dot product and an activation quantizer for its partner.
    for (Type type :
         {Type::F32, Type::F16, Type::BF16, Type::Q4_0, Type::Q4_1, Type::Q5_0, Type::Q5_1,
          Type::Q8_0, Type::Q2_K, Type::Q3_K, Type::Q4_K, Type::Q5_K, Type::Q6_K}) {
        EXPECT_NE(table[type].vec_dot, nullptr) << quant::type_name(type);
        EXPECT_NE(table[quant::traits(type).partner].quantize_activation, nullptr)
            << quant::type_name(type);
    }
}

float fake_dot(int64_t, const void*, const void*) {
    return 42.0f;
}

TEST(QuantDispatch, RegistrationReplacesOnlyTypesWithAReference) {
    dispatch::KernelTable table;
    table.set_vec_dot(Type::Q4_K, Isa::avx512, fake_dot);
    EXPECT_EQ(table[Type::Q4_K].vec_dot, fake_dot);
    EXPECT_EQ(table[Type::Q4_K].vec_dot_isa, Isa::avx512);
    // No scalar reference to test it against: refused.
    table.set_vec_dot(Type::IQ2_XXS, Isa::avx512, fake_dot);
    EXPECT_EQ(table[Type::IQ2_XXS].vec_dot, nullptr);
    // Q4_K is a weight format, not a partner: no activation quantizer can be registered.
    table.set_quantize_activation(Type::Q4_K, Isa::avx2, quant::traits(Type::Q8_K).quantize);
    EXPECT_EQ(table[Type::Q4_K].quantize_activation, nullptr);
    // Out-of-range ids read as empty instead of indexing past the table.
    EXPECT_EQ(table[static_cast<Type>(quant::kTypeIdLimit + 5)].vec_dot, nullptr);
}

TEST(QuantDispatch, CapAtScalarKeepsReferences) {
    const dispatch::KernelTable table = dispatch::build_table(dispatch::features(), Isa::scalar);
    for (uint32_t id = 0; id < quant::kTypeIdLimit; ++id)
        EXPECT_EQ(table[static_cast<Type>(id)].vec_dot_isa, Isa::scalar);
    EXPECT_EQ(dispatch::isa_name(Isa::avx512), "avx512");
}

}  // namespace
}  // namespace strata
