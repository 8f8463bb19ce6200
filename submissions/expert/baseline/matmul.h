// The layers' products, out = inp w^T (+ bias, + a residual) and their backward, with weights
// stored (out, in) as in the reference. Narrow layers run on fast::gemm_small tiles
// (small_gemm.h); others on OpenBLAS's sgemm, split across oneTBB's threads when one replica
// has the whole batch.
#pragma once

namespace trainopt {

// out(BT,OC) = base(BT,OC) + bias(OC) + inp(BT,C) @ w(OC,C)^T; base may be null, bias too.
// tiled: run the product on fast::gemm_small tiles, not sgemm (C a multiple of 8).
void linear_forward(bool par, bool tiled, float* out, const float* inp, const float* w,
                    const float* bias, const float* base, int BT, int C, int OC);

// dinp(BT,C) = dout @ w; dw(OC,C) = dout^T @ inp; dbias(OC) = colsum(dout) (all overwritten;
// dbias may be null). tiled: as in linear_forward.
void linear_backward(bool par, bool tiled, float* dinp, float* dw, float* dbias, const float* dout,
                     const float* inp, const float* w, int BT, int C, int OC);

}  // namespace trainopt
