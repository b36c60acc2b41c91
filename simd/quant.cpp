// The traits table: one row per ggml type id.
#include "simd/quant.h"

#include <array>
#include <cctype>

#include "runtime/error.h"
#include "simd/ref/ref.h"

namespace strata::quant {
namespace {

constexpr size_t kF16 = sizeof(uint16_t);

// Ids ggml retired or never used keep block_size 0: unknown.
std::array<TypeTraits, kTypeIdLimit> make_table() {
    std::array<TypeTraits, kTypeIdLimit> t{};
    auto row = [&](Type type) -> TypeTraits& { return t[static_cast<uint32_t>(type)]; };

    // A type Strata computes with: every kernel present; `activation` only for partner formats.
    auto computed = [](std::string_view name, int64_t block_size, size_t block_bytes, Type partner,
                       DequantizeFn dequantize, QuantizeFn quantize, VecDotFn vec_dot,
                       QuantizeFn activation = nullptr) {
        return TypeTraits{name,       block_size, block_bytes, true,      partner,
                          dequantize, quantize,   vec_dot,     activation};
    };

    // Float formats pair with activations of their own type (F16 / BF16 rounded to nearest even).
    row(Type::F32) = computed("F32", 1, sizeof(float), Type::F32, ref::dequantize_f32,
                              ref::quantize_f32, ref::vec_dot_f32, ref::quantize_f32);
    row(Type::F16) = computed("F16", 1, kF16, Type::F16, ref::dequantize_f16, ref::quantize_f16,
                              ref::vec_dot_f16, ref::quantize_f16);
    row(Type::BF16) = computed("BF16", 1, kF16, Type::BF16, ref::dequantize_bf16,
                               ref::quantize_bf16, ref::vec_dot_bf16, ref::quantize_bf16);

    // Legacy formats: blocks of 32, partners Q8_0 (symmetric) and Q8_1 (with a minimum).
    row(Type::Q4_0) = computed("Q4_0", QK4_0, sizeof(block_q4_0), Type::Q8_0, ref::dequantize_q4_0,
                               ref::quantize_q4_0, ref::vec_dot_q4_0);
    row(Type::Q4_1) = computed("Q4_1", QK4_1, sizeof(block_q4_1), Type::Q8_1, ref::dequantize_q4_1,
                               ref::quantize_q4_1, ref::vec_dot_q4_1);
    row(Type::Q5_0) = computed("Q5_0", QK5_0, sizeof(block_q5_0), Type::Q8_0, ref::dequantize_q5_0,
                               ref::quantize_q5_0, ref::vec_dot_q5_0);
    row(Type::Q5_1) = computed("Q5_1", QK5_1, sizeof(block_q5_1), Type::Q8_1, ref::dequantize_q5_1,
                               ref::quantize_q5_1, ref::vec_dot_q5_1);
    row(Type::Q8_0) =
        computed("Q8_0", QK8_0, sizeof(block_q8_0), Type::Q8_0, ref::dequantize_q8_0,
                 ref::quantize_q8_0, ref::vec_dot_q8_0, ref::quantize_activation_q8_0);
    row(Type::Q8_1) =
        computed("Q8_1", QK8_1, sizeof(block_q8_1), Type::Q8_1, ref::dequantize_q8_1,
                 ref::quantize_q8_1, ref::vec_dot_q8_1, ref::quantize_activation_q8_1);

    // K-quants: super-blocks of 256, partner Q8_K.
    row(Type::Q2_K) = computed("Q2_K", QK_K, sizeof(block_q2_K), Type::Q8_K, ref::dequantize_q2_K,
                               ref::quantize_q2_K, ref::vec_dot_q2_K);
    row(Type::Q3_K) = computed("Q3_K", QK_K, sizeof(block_q3_K), Type::Q8_K, ref::dequantize_q3_K,
                               ref::quantize_q3_K, ref::vec_dot_q3_K);
    row(Type::Q4_K) = computed("Q4_K", QK_K, sizeof(block_q4_K), Type::Q8_K, ref::dequantize_q4_K,
                               ref::quantize_q4_K, ref::vec_dot_q4_K);
    row(Type::Q5_K) = computed("Q5_K", QK_K, sizeof(block_q5_K), Type::Q8_K, ref::dequantize_q5_K,
                               ref::quantize_q5_K, ref::vec_dot_q5_K);
    row(Type::Q6_K) = computed("Q6_K", QK_K, sizeof(block_q6_K), Type::Q8_K, ref::dequantize_q6_K,
                               ref::quantize_q6_K, ref::vec_dot_q6_K);
    row(Type::Q8_K) =
        computed("Q8_K", QK_K, sizeof(block_q8_K), Type::Q8_K, ref::dequantize_q8_K,
                 ref::quantize_q8_K, ref::vec_dot_q8_K, ref::quantize_activation_q8_K);

    // Known to GGUF but not computed by Strata: sizes only, so that such files can be inspected.
    row(Type::IQ2_XXS) = {"IQ2_XXS", QK_K, 66};
    row(Type::IQ2_XS) = {"IQ2_XS", QK_K, 74};
    row(Type::IQ3_XXS) = {"IQ3_XXS", QK_K, 98};
    row(Type::IQ1_S) = {"IQ1_S", QK_K, 50};
    row(Type::IQ4_NL) = {"IQ4_NL", 32, 18};
    row(Type::IQ3_S) = {"IQ3_S", QK_K, 110};
    row(Type::IQ2_S) = {"IQ2_S", QK_K, 82};
    row(Type::IQ4_XS) = {"IQ4_XS", QK_K, 136};
    row(Type::I8) = {"I8", 1, 1};
    row(Type::I16) = {"I16", 1, 2};
    row(Type::I32) = {"I32", 1, 4};
    row(Type::I64) = {"I64", 1, 8};
    row(Type::F64) = {"F64", 1, 8};
    row(Type::IQ1_M) = {"IQ1_M", QK_K, 56};
    row(Type::TQ1_0) = {"TQ1_0", QK_K, 54};
    row(Type::TQ2_0) = {"TQ2_0", QK_K, 66};
    row(Type::MXFP4) = {"MXFP4", 32, 17};
    return t;
}

const std::array<TypeTraits, kTypeIdLimit> kTable = make_table();
const TypeTraits kUnknown{};

}  // namespace

const TypeTraits& traits(Type type) {
    const auto id = static_cast<uint32_t>(type);
    return id < kTypeIdLimit ? kTable[id] : kUnknown;
}

bool is_known(uint32_t id) {
    return id < kTypeIdLimit && kTable[id].block_size != 0;
}

std::string_view type_name(Type type) {
    const TypeTraits& t = traits(type);
    return t.block_size ? t.name : std::string_view("unknown");
}

std::optional<Type> type_from_name(std::string_view name) {
    for (uint32_t id = 0; id < kTypeIdLimit; ++id) {
        const std::string_view n = kTable[id].name;
        if (kTable[id].block_size == 0 || n.size() != name.size()) continue;
        bool same = true;
        for (size_t i = 0; i < n.size() && same; ++i)
            same = std::toupper(static_cast<unsigned char>(name[i])) == n[i];
        if (same) return static_cast<Type>(id);
    }
    return std::nullopt;
}

void dequantize_row(Type type, const void* src, float* dst, int64_t n) {
    const TypeTraits& t = traits(type);
    if (!t.dequantize) fail("cannot dequantize tensors of type {}", type_name(type));
    t.dequantize(src, dst, n);
}

void quantize_row(Type type, const float* src, void* dst, int64_t n) {
    const TypeTraits& t = traits(type);
    if (!t.quantize) fail("cannot quantize to type {}", type_name(type));
    t.quantize(src, dst, n);
}

}  // namespace strata::quant
