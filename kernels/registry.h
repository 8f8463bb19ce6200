// Named kernel implementations. The trainer runs "submission" (the reference table with the
// submission's overrides applied); benchmarks and tests compare every entry against "reference".
#pragma once

#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace trainopt {

struct NamedKernelTable {
    std::string name;
    KernelTable table;
};

std::vector<NamedKernelTable> kernel_registry();

// The table the trainer uses: reference kernels with the submission's overrides applied.
KernelTable trainer_kernels();

}  // namespace trainopt
