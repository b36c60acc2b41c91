// Where a forward pass's products run. Every product of weights by activations goes through
// here: on the CPU from the file's mapping, or — for weights a placement put on a device
// (runtime/device_weights.h) — on that device's copy (split execution). The host device runs the
// CPU's own kernels, so a split pass through it equals the CPU-only pass bit for bit.
//
// It also keeps a batch of independent sequences (Forward::run_batch) independent: with
// rows_apart() set, a product that would sum its float weights in the reference's order for
// several rows (simd::takes_gemm_order) sums each row as for that row alone.
#pragma once

#include <cstdint>
#include <span>

#include "runtime/arch/common.h"
#include "runtime/device_weights.h"
#include "simd/matmul.h"

namespace strata::arch {

class Products {
  public:
    // Weights found in `tier` are multiplied there from now on; null: none.
    void use_device(const DeviceTier* tier) { tier_ = tier; }
    const DeviceTier* device() const { return tier_; }

    // While set, the rows of a product are independent sequences: every Path becomes Path::Rows.
    void set_rows_apart(bool apart) { apart_ = apart; }
    bool rows_apart() const { return apart_; }
    simd::Path path(simd::Path p) const { return apart_ ? simd::Path::Rows : p; }

    // Whether w's rows are on the device.
    bool on_device(const simd::Matrix& w) const { return tier_ && tier_->find(w); }

    // simd::matmul, wherever w lives.
    void matmul(const simd::Matrix& w, const simd::Activations& a, float* y, int64_t y_stride,
                simd::Path p = simd::Path::Gemm) const;
    // The same from float rows, converted into `scratch`.
    void matmul(const simd::Matrix& w, const float* x, int64_t x_stride, int64_t n_rows, float* y,
                int64_t y_stride, simd::Activations& scratch,
                simd::Path p = simd::Path::Gemm) const;
    // simd::matmul_batch: the products on the device one by one, the others as one job.
    void batch(std::span<const simd::Product> products) const;
    // run_ffns: the tasks whose weights are all in RAM as one batch, the others with each
    // product on its device.
    void ffns(std::span<const FfnTask> tasks, FfnScratch& s) const;
    // run_ffn through ffns.
    void ffn(const Ffn& w, const float* x, int64_t n_rows, float* out, FfnScratch& s,
             simd::Path p = simd::Path::Gemm) const;

    // Row `token` of an embedding table as floats, from the device when the table is there.
    void embed_row(const gguf::Tensor& t, int32_t token, float* out) const;

  private:
    const DeviceTier* tier_ = nullptr;
    bool apart_ = false;
};

// Products::set_rows_apart(true) for a scope.
class RowsApart {
  public:
    explicit RowsApart(Products& p) : p_(p) { p_.set_rows_apart(true); }
    ~RowsApart() { p_.set_rows_apart(false); }
    RowsApart(const RowsApart&) = delete;
    RowsApart& operator=(const RowsApart&) = delete;

  private:
    Products& p_;
};

}  // namespace strata::arch
