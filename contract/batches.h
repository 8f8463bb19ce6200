// The batches of a run: B windows of T+1 tokens per step, at offsets drawn from the seed's data
// stream (data_stream_seed). Every trainer must see exactly these batches in this order; the
// verifier's reference run does.
#pragma once

#include <cstdint>
#include <vector>

#include "contract/rng.h"

namespace trainopt {

class BatchSampler {
  public:
    // tokens must hold at least T + 2 tokens and outlive the sampler.
    BatchSampler(const std::vector<int>& tokens, uint64_t seed, int B, int T);

    // Fills inputs and targets, (B,T) each: window b starts at the next offset drawn, targets are
    // the inputs shifted by one token.
    void next(int* inputs, int* targets);

    // Moves past the batches of `steps` steps without reading them: a run resumed at step s
    // skips s batches.
    void skip(int steps);

  private:
    const std::vector<int>& tokens_;
    Rng rng_;
    int B_, T_;
};

}  // namespace trainopt
