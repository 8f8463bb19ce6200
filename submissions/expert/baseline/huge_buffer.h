// Large float buffers on transparent huge pages, where the kernel offers them on request (THP in
// "madvise" mode, as on the reference VM). Every fresh 4 KB page costs a page fault on first
// touch, and on 4 KB pages the faults of 10-40 MB of buffers are 15-20% of a short run's time
// (perf, the matmul task run for one step); a 2 MB page is one fault.
#pragma once

#include <sys/mman.h>

#include <cstdlib>
#include <new>
#include <vector>

namespace trainopt::fast {

constexpr size_t kHugePage = 2 << 20;  // smaller buffers stay on the ordinary heap

template <typename T>
struct HugePageAllocator {
    using value_type = T;
    HugePageAllocator() = default;
    template <typename U>
    HugePageAllocator(const HugePageAllocator<U>&) {}

    T* allocate(size_t n) {
        const size_t bytes = n * sizeof(T);
        if (bytes < kHugePage) return static_cast<T*>(::operator new(bytes));
        const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
        void* p = std::aligned_alloc(kHugePage, rounded);
        if (p == nullptr) throw std::bad_alloc();
        // Huge pages for the whole 2 MB blocks only: the kernel zeroes a huge page entirely on
        // first touch, and fresh memory is slow to zero on this VM (~2 GB/s, the host backs it
        // lazily), so a tail rounded up to 2 MB costs more than its 4 KB pages' faults.
        // (A hint: without THP, ordinary pages throughout.)
        madvise(p, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);
        return static_cast<T*>(p);
    }
    void deallocate(T* p, size_t n) {
        if (n * sizeof(T) < kHugePage)
            ::operator delete(p);
        else
            std::free(p);
    }
    bool operator==(const HugePageAllocator&) const { return true; }
};

using HugeBuffer = std::vector<float, HugePageAllocator<float>>;

}  // namespace trainopt::fast
