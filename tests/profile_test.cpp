// What trainopt profile takes from `perf report` (untrusted text from a hostile run's samples):
// rows in percent, the most samples first, names made terminal-safe and clipped, anything else
// ignored.
#include "harness/profile.h"

#include <gtest/gtest.h>

namespace trainopt {
namespace {

TEST(PerfReport, RowsAreParsedSortedAndCut) {
    const std::string text =
        " 1.15%  |libc.so.6        |[.] __strcmp_avx2\n"
        "# a comment line\n"
        "42.50%  |trainopt-train (deleted)  |[.] trainopt::matmul_forward(float*, int)\n"
        "garbage without separators\n"
        "  7.00% |libopenblas.so.0 |[.] sgemm_kernel_HASWELL   \n";
    const std::vector<SampledFunction> rows = parse_perf_report(text, 10);
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_DOUBLE_EQ(rows[0].percent, 42.5);
    EXPECT_EQ(rows[0].function, "trainopt::matmul_forward(float*, int)");
    EXPECT_EQ(rows[0].object, "trainopt-train");  // the in-memory copy's " (deleted)" dropped
    EXPECT_EQ(rows[1].function, "sgemm_kernel_HASWELL");
    EXPECT_EQ(rows[1].object, "libopenblas.so.0");
    EXPECT_EQ(parse_perf_report(text, 1).size(), 1u);
}

TEST(PerfReport, HostileNamesAreMadeSafe) {
    const std::string evil = "\x1b[2J\x1b[31mfake\rtrainopt: VALID " + std::string(500, 'x');
    const std::string text =
        "99.0%|" + evil + "|[.] " + evil + "\n" + "250%|a|b\n" + "nan%|a|b\n" + "-3%|a|b\n";
    const std::vector<SampledFunction> rows = parse_perf_report(text, 10);
    ASSERT_EQ(rows.size(), 1u);  // percentages outside 0-100 are not rows
    for (const std::string& s : {rows[0].function, rows[0].object}) {
        EXPECT_EQ(s.find('\x1b'), std::string::npos);
        EXPECT_EQ(s.find('\r'), std::string::npos);
        EXPECT_LE(s.size(), 110u * 3);
    }
    EXPECT_TRUE(parse_perf_report("", 10).empty());
}

}  // namespace
}  // namespace trainopt
