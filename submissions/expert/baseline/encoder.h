// The embeddings: each position's token embedding (wte, (V,C)) plus its position's (wpe, (T,C)).
#pragma once

namespace trainopt {

// out(B,T,C) = wte[inputs(B,T)] + wpe[t]
void encoder_forward(float* out, const int* inputs, const float* wte, const float* wpe, int B,
                     int T, int C);

// dwte[inputs(B,T)] += dout(B,T,C), dwpe[t] += dout, position by position in batch order
// (accumulated: dwte already holds the tied LM head's gradient).
void encoder_backward(float* dwte, float* dwpe, const float* dout, const int* inputs, int B, int T,
                      int C);

}  // namespace trainopt
