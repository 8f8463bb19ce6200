// Deterministic random numbers shared by the trainer (init, batch sampling) and the trusted
// verifier (which recomputes the initial weights). splitmix64: tiny, portable, well mixed.
#pragma once

#include <cmath>
#include <cstdint>

namespace trainopt {

struct Rng {
    uint64_t state;

    explicit Rng(uint64_t seed) : state(seed) {}

    uint64_t next_u64() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

    // uniform in [0, 1) with 53 random bits
    double next_double() { return (next_u64() >> 11) * (1.0 / 9007199254740992.0); }

    // uniform integer in [0, n)
    uint64_t next_below(uint64_t n) { return next_u64() % n; }

    // standard normal via Box-Muller in double precision (one value per call, for simplicity)
    double next_normal() {
        double u1 = next_double();
        double u2 = next_double();
        if (u1 < 1e-300) u1 = 1e-300;
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
};

// Independent streams derived from the run seed, so init and data order do not interact.
inline uint64_t init_stream_seed(uint64_t seed) {
    return seed * 0x2545F4914F6CDD1Dull + 1;
}
inline uint64_t data_stream_seed(uint64_t seed) {
    return seed * 0x9E3779B97F4A7C15ull + 2;
}

}  // namespace trainopt
