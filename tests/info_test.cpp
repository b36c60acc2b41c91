#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "scheduler/hardware.h"
#include "tests/test_util.h"

namespace strata {
namespace {

TEST(Hardware, DetectsThisMachine) {
    const scheduler::Hardware hw = scheduler::detect_hardware();
    EXPECT_GE(hw.logical_cpus, 1);
    EXPECT_GE(hw.physical_cores, 1);
    EXPECT_LE(hw.physical_cores, hw.logical_cpus);
    EXPECT_GT(hw.ram_total_bytes, 0u);
    EXPECT_LE(hw.ram_available_bytes, hw.ram_total_bytes);
    EXPECT_FALSE(hw.cpu_features.empty());
    if (hw.gpus.empty()) {
        EXPECT_FALSE(hw.gpu_note.empty());
    }
}

TEST(InfoCommand, JsonCarriesTheMachine) {
    const auto r = test::run_strata("info --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_GE(j.at("logical_cpus").get<int>(), 1);
    EXPECT_GT(j.at("ram_total_bytes").get<uint64_t>(), 0u);
    // Every weight type names the ISA of its kernel.
    for (const char* type : {"F32", "Q4_K", "Q6_K", "Q8_0"}) {
        const std::string isa = j.at("kernels").at(type).get<std::string>();
        EXPECT_TRUE(isa == "scalar" || isa == "avx2" || isa == "avx512" || isa == "amx") << isa;
    }
}

// info reports the OpenMP wait policy in force: the user's, else libgomp's own (strata no longer
// sets one: the pass team of simd/parallel.h waits on its own terms).
TEST(InfoCommand, OpenMpWaitPolicyIsTheUsers) {
    const auto wait = [](const std::string& env) {
        test::TempDir dir;
        const std::string cmd = "env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY " + env + " " +
                                STRATA_BIN + " info --json >" + (dir / "out").string();
        EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
        return nlohmann::json::parse(test::read_file(dir / "out"))
            .at("openmp_wait")
            .get<std::string>();
    };
    EXPECT_EQ(wait(""), "libgomp default");
    EXPECT_EQ(wait("GOMP_SPINCOUNT=7"), "GOMP_SPINCOUNT=7");
    EXPECT_EQ(wait("OMP_WAIT_POLICY=passive"), "OMP_WAIT_POLICY=passive");
}

}  // namespace
}  // namespace strata
