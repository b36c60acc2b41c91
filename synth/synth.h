// `strata synth`: writes a synthetic model (synth/spec.h says what it holds) as one GGUF
// file or as llama-gguf-split shards, the tensor data drawn one tensor at a time, or left a hole
// for shape-only models.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/gguf.h"
#include "synth/layout.h"
#include "synth/spec.h"

namespace strata::synth {

// The files of a model, ready to write: one writer per shard, shard 0 first.
struct Layout {
    std::vector<TensorPlan> tensors;   // in file order, each with its shard
    std::vector<gguf::Writer> shards;  // headers and tensor fills
    int64_t n_params = 0;
    Fill fill = Fill::Quantize;  // as resolved from the spec's (never Auto)
};

// Plans the tensors, splits them into shards and prepares the writers. The fills draw from
// `spec` and the tensor table, which the Layout owns; keep both alive until written.
Layout make_layout(const Spec& spec);

// The shard file names for `path`: itself for one file, PREFIX-0000k-of-0000n.gguf otherwise
// (PREFIX is path without its .gguf suffix).
std::vector<std::string> shard_paths(const std::string& path, size_t n_shards);

struct Written {
    std::vector<std::string> paths;
    uint64_t file_bytes = 0;  // all shards, as their sizes say (holes included)
    size_t n_tensors = 0;
    int64_t n_params = 0;
    Fill fill = Fill::Quantize;
    double seconds = 0;  // writing, fsync included
};

// Writes the model to `path`, with a progress bar when it takes more than a second. Refuses,
// before writing anything, a type that cannot be quantized yet or a disk without room.
Written write_model(const Spec& spec, const std::string& path);

}  // namespace strata::synth
