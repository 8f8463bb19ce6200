// Loops split across oneTBB's threads, which stay on the calling thread when the work is too
// small to pay for waking the others.
#pragma once

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

namespace trainopt {

constexpr double kParallelWork = 1 << 16;  // elementwise work below this runs on one thread

// body(begin, end) over [0, n): in pieces of at least grain across oneTBB's threads when par is
// set and work (about the flops of the whole range) reaches kParallelWork, else in one call.
template <typename Body>
void parallel_range(bool par, int n, double work, int grain, const Body& body) {
    if (!par || work < kParallelWork) {
        body(0, n);
        return;
    }
    tbb::parallel_for(tbb::blocked_range<int>(0, n, grain),
                      [&](const tbb::blocked_range<int>& r) { body(r.begin(), r.end()); });
}

}  // namespace trainopt
