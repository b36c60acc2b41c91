// Agreement of two sets of logits (see logit_metrics.h).
#include "runtime/logit_metrics.h"

#include <cstring>

namespace strata::metrics {

LogitAgreement compare_logits(std::span<const float> out, std::span<const float> ref,
                              int64_t n_vocab) {
    LogitAgreement a;
    a.n_rows = n_vocab > 0 ? static_cast<int64_t>(ref.size()) / n_vocab : 0;
    int64_t same = 0;
    for (int64_t r = 0; r < a.n_rows; ++r) {
        const float* o = out.data() + r * n_vocab;
        const float* g = ref.data() + r * n_vocab;
        const double rel = row_max_rel(o, g, n_vocab);
        if (rel > a.max_rel) {
            a.max_rel = rel;
            a.worst_row = r;
        }
        a.mean_kl += row_kl(o, g, n_vocab);
        same += row_argmax(o, n_vocab) == row_argmax(g, n_vocab);
        a.exact_rows += std::memcmp(o, g, static_cast<size_t>(n_vocab) * sizeof(float)) == 0;
    }
    if (a.n_rows > 0) {
        a.mean_kl /= static_cast<double>(a.n_rows);
        a.top1 = static_cast<double>(same) / static_cast<double>(a.n_rows);
    }
    return a;
}

}  // namespace strata::metrics
