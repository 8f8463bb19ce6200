#include "lm_head.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "fast_math.h"
#include "parallel_range.h"
#include "small_gemm.h"

namespace trainopt {

// One pass per row: max, exponentials and their sum, the loss, then dlogits.
void softmax_xent(bool par, float* logits, float* losses, const int* targets, int BT, int V,
                  float dloss) {
    parallel_range(par, BT, (double)BT * V * 8, 4, [&](int r0, int r1) {
        for (int i = r0; i < r1; i++) {
            float* row = logits + (size_t)i * V;
            const float maxval = fast::max_of(row, V);
            const float target_logit = row[targets[i]];
            const float sum = fast::exp_shift_sum(row, row, V, maxval);
            losses[i] = logf(sum) - (target_logit - maxval);
            const float scale = dloss / sum;
#pragma omp simd
            for (int j = 0; j < V; j++) row[j] *= scale;
            row[targets[i]] -= dloss;
        }
    });
}

// The LM head for a wide vocabulary, logits stored transposed, (V,BT): the products keep the
// small operand (lnf, (BT,C)) in L1 and stream the (V,C) embedding through once, with no
// 16-column panels of a (C,V) matrix whose rows are 32 KB apart to walk, and kVecLanes
// positions are one vector in the softmax. The head runs in chunks of kHeadChunk vocabulary
// rows, each finished while it is in L2, with an online softmax: per position a running max,
// and a sum of exponentials rescaled whenever the max grows. The forward stores each chunk's
// exponentials against the running max of that moment; the backward turns them into dlogits
// with one multiply by exp(running max - final max) * dloss / sum per chunk and position. So
// each logit takes one exp, and the (V,BT) matrix one pass between the products.
// A multiple of fast::kKChunk: dlnf then sums over the vocabulary in the order one product would.
constexpr int kHeadChunk = 512;
static_assert(kHeadChunk % fast::kKChunk == 0);
constexpr int kHeadGroup = 4;  // vectors of positions whose softmax runs together

int lm_head_chunks(int V) {
    return (V + kHeadChunk - 1) / kHeadChunk;
}

void lm_head_forward_transposed(float* logitsT, float* losses, float* chunk_max, float* col_sum,
                                const float* wte, const float* lnfT, const int* targets, int BT,
                                int C, int V, KernelProfile& profile) {
    constexpr int W = fast::kVecLanes;
    for (int v0 = 0, c = 0; v0 < V; v0 += kHeadChunk, c++) {
        const int rows = std::min(V - v0, kHeadChunk);
        float* chunk = logitsT + (size_t)v0 * BT;
        {
            KernelTimer timer(profile, KernelId::matmul);
            fast::gemm_small(rows, BT, C, wte + (size_t)v0 * C, C, 1, lnfT, BT, chunk, BT, 1.0f,
                             false);
        }
        KernelTimer timer(profile, KernelId::softmax_xent);
        for (int i = 0; i < BT; i++)  // the target logit, before it becomes an exponential
            if (targets[i] >= v0 && targets[i] < v0 + rows)
                losses[i] = -logitsT[(size_t)targets[i] * BT + i];
        float* mx_out = chunk_max + (size_t)c * BT;
        // kHeadGroup vectors of positions at a time: independent max and sum chains, and whole
        // cache lines of each row
        for (int g0 = 0; g0 < BT; g0 += kHeadGroup * W) {
            const int n = std::min(kHeadGroup, (BT - g0) / W);
            fast::Vec old_max[kHeadGroup], mx[kHeadGroup], sum[kHeadGroup];
            for (int j = 0; j < n; j++) {
                old_max[j] = c == 0 ? fast::vset(-INFINITY) : fast::vload(mx_out - BT + g0 + j * W);
                mx[j] = old_max[j];
            }
            for (int v = 0; v < rows; v++)
                for (int j = 0; j < n; j++)
                    mx[j] = fast::vmax(mx[j], fast::vload(chunk + v * BT + g0 + j * W));
            // first chunk: exp(-inf) is 0 (exp16) or exp8's clamped minimum, times a sum of 0
            for (int j = 0; j < n; j++) {
                const fast::Vec old_sum =
                    c == 0 ? fast::vset(0.0f) : fast::vload(col_sum + g0 + j * W);
                sum[j] = fast::vmul(old_sum, fast::vexp(fast::vsub(old_max[j], mx[j])));
            }
            for (int v = 0; v < rows; v++) {
                for (int j = 0; j < n; j++) {
                    float* x = chunk + v * BT + g0 + j * W;
                    const fast::Vec e = fast::vexp(fast::vsub(fast::vload(x), mx[j]));
                    fast::vstore(x, e);
                    sum[j] = fast::vadd(sum[j], e);
                }
            }
            for (int j = 0; j < n; j++) {
                fast::vstore(mx_out + g0 + j * W, mx[j]);
                fast::vstore(col_sum + g0 + j * W, sum[j]);
            }
        }
    }
    const float* final_max = chunk_max + (size_t)(lm_head_chunks(V) - 1) * BT;
    for (int i = 0; i < BT; i++) losses[i] += final_max[i] + logf(col_sum[i]);
}

void lm_head_backward_transposed(float* logitsT, float* dlnf, float* dwte, const float* chunk_max,
                                 float* col_sum, float* col_factor, const float* wte,
                                 const float* lnf, const int* targets, int BT, int C, int V,
                                 float dloss, KernelProfile& profile) {
    constexpr int W = fast::kVecLanes;
    const float* final_max = chunk_max + (size_t)(lm_head_chunks(V) - 1) * BT;
    for (int i = 0; i < BT; i++) col_sum[i] = dloss / col_sum[i];
    for (int v0 = 0, c = 0; v0 < V; v0 += kHeadChunk, c++) {
        const int rows = std::min(V - v0, kHeadChunk);
        float* chunk = logitsT + (size_t)v0 * BT;
        {
            KernelTimer timer(profile, KernelId::softmax_xent);
            for (int g = 0; g < BT; g += W) {
                const fast::Vec rescale = fast::vexp(fast::vsub(
                    fast::vload(chunk_max + (size_t)c * BT + g), fast::vload(final_max + g)));
                fast::vstore(col_factor + g, fast::vmul(rescale, fast::vload(col_sum + g)));
            }
            for (int v = 0; v < rows; v++) {
                float* x = chunk + v * BT;
                for (int g = 0; g < BT; g += W)
                    fast::vstore(x + g,
                                 fast::vmul(fast::vload(x + g), fast::vload(col_factor + g)));
            }
            for (int i = 0; i < BT; i++)
                if (targets[i] >= v0 && targets[i] < v0 + rows)
                    logitsT[(size_t)targets[i] * BT + i] -= dloss;
        }
        KernelTimer timer(profile, KernelId::matmul);
        fast::gemm_small(rows, C, BT, chunk, BT, 1, lnf, C, dwte + (size_t)v0 * C, C, 1.0f, false);
        fast::gemm_small(BT, C, rows, chunk, 1, BT, wte + (size_t)v0 * C, C, dlnf, C, 1.0f, v0 > 0);
    }
}

}  // namespace trainopt
