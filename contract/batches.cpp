#include "contract/batches.h"

namespace trainopt {

BatchSampler::BatchSampler(const std::vector<int>& tokens, uint64_t seed, int B, int T)
    : tokens_(tokens), rng_(data_stream_seed(seed)), B_(B), T_(T) {}

void BatchSampler::next(int* inputs, int* targets) {
    const uint64_t range = tokens_.size() - T_ - 1;
    for (int b = 0; b < B_; b++) {
        const size_t start = rng_.next_below(range);
        for (int t = 0; t < T_; t++) {
            inputs[b * T_ + t] = tokens_[start + t];
            targets[b * T_ + t] = tokens_[start + t + 1];
        }
    }
}

void BatchSampler::skip(int steps) {
    const uint64_t range = tokens_.size() - T_ - 1;
    for (int64_t draw = 0; draw < (int64_t)steps * B_; draw++) rng_.next_below(range);
}

}  // namespace trainopt
