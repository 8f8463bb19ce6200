// The build cache's key (harness/build_cache.h): one SHA-256 over everything that determines a
// submission's trainer binary. The scratch tree after intake (every path, mode and content,
// harness/tree_digest.h), the build recipe (harness/build.h), the toolchain and the CPU the build
// sees, trainopt's own executable and the trusted-input manifest compiled into it, and the cache
// format. The -j count of the build is left out: it changes how fast a build runs, not what it
// produces (a trainer sizes its threads at run time, from the cores it is pinned to).
#pragma once

#include <string>

#include "contract/result.h"
#include "harness/sandbox.h"

namespace trainopt {

constexpr int kBuildCacheFormat = 1;  // part of every key; bump when the entries' layout changes

// What the key covers; each part is text that changes when what it stands for does.
struct BuildKeyInputs {
    std::string tree_sha256;      // digest_tree of the scratch tree (src/) after intake
    std::string recipe;           // build_recipe(mode)
    std::string toolchain;        // toolchain_identity()
    std::string machine;          // machine_identity(): a build may use -march=native
    std::string trainopt_sha256;  // trainopt's own executable
    std::string trusted_inputs;   // trusted_manifest_digest()
};

// The key: SHA-256 (64 hex digits) over the cache format and every part of `inputs`, each
// length-prefixed so that no part can run into the next.
std::string build_cache_key(const BuildKeyInputs& inputs);

// The toolchain a build picks up, identified as cheaply as ccache's default compiler check: for
// cmake and the compiler, linker and archiver names in the build's PATH, the resolved path, size
// and modification time; and the size and modification time of the Debian package database
// (/var/lib/dpkg/status), which changes with every package installed, upgraded or removed, the
// libraries and headers a submission links included.
std::string toolchain_identity();

// The CPU a build runs on: architecture, vendor, family, model and feature flags (a submission may
// compile with -march=native, whose binary need not run on another CPU).
std::string machine_identity();

// SHA-256 of trainopt's own executable (/proc/self/exe), read as any bounded file.
Result<std::string> own_executable_sha256();

// Every part of the key for a build of the tree `source_dir` in `mode`. Fails when the tree
// cannot be read safely (a link, a special file, beyond the digest's limits) or trainopt's own
// executable cannot be read.
Result<BuildKeyInputs> build_key_inputs(const std::string& source_dir, SandboxMode mode);

}  // namespace trainopt
