// Layernorm over the C channels of each of BT rows: out = (x - mean) * rstd * w + b.
#pragma once

namespace trainopt {

// out(BT,C), mean(BT), rstd(BT) from inp(BT,C); w(C), b(C).
void layernorm_forward(bool par, float* out, float* mean, float* rstd, const float* inp,
                       const float* w, const float* b, int BT, int C);

// dinp(BT,C) = add(BT,C) + layernorm'(dout) (add may be null: the residual gradient that
// passes the layernorm by); dw(C), db(C). All overwritten.
void layernorm_backward(bool par, float* dinp, float* dw, float* db, const float* dout,
                        const float* inp, const float* w, const float* mean, const float* rstd,
                        const float* add, int BT, int C);

}  // namespace trainopt
