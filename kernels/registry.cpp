#include "kernels/registry.h"

namespace trainopt {

KernelTable trainer_kernels() {
    KernelTable table = reference_kernels();
    apply_submission_kernels(table);
    return table;
}

std::vector<NamedKernelTable> kernel_registry() {
    return {{"reference", reference_kernels()}, {"submission", trainer_kernels()}};
}

}  // namespace trainopt
