#include "harness/build_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

#include "harness/build.h"
#include "harness/cache_dir.h"
#include "harness/safe_file.h"
#include "harness/tree_digest.h"
#include "harness/trusted_inputs.h"
#include "tasks/sha256.h"

namespace trainopt {

namespace {

constexpr size_t kMaxTrainoptBytes = (size_t)1 << 30;

bool starts_with(const std::string& s, const char* prefix) {
    return s.rfind(prefix, 0) == 0;
}

// The build's PATH (sandbox_environment), as directories.
std::vector<std::string> build_path_dirs() {
    std::vector<std::string> dirs;
    for (const std::string& var : sandbox_environment()) {
        if (!starts_with(var, "PATH=")) continue;
        std::string rest = var.substr(5);
        size_t begin = 0;
        while (begin <= rest.size()) {
            size_t colon = rest.find(':', begin);
            if (colon == std::string::npos) colon = rest.size();
            if (colon > begin) dirs.push_back(rest.substr(begin, colon - begin));
            begin = colon + 1;
        }
    }
    return dirs;
}

// "PATH SIZE MTIME" of a file, links resolved; "-" when there is none.
std::string file_identity(const std::string& path) {
    char* real = realpath(path.c_str(), nullptr);
    if (real == nullptr) return "-";
    const std::string resolved = real;
    free(real);
    struct stat st;
    if (stat(resolved.c_str(), &st) != 0) return "-";
    return resolved + " " + std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) +
           "." + std::to_string(st.st_mtim.tv_nsec);
}

}  // namespace

Result<std::string> own_executable_sha256() {
    const int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return failure(std::string("cannot open /proc/self/exe: ") + strerror(errno));
    struct stat st;
    Result<std::string> content = failure("trainopt's executable is not a regular file");
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        content = read_open_file(fd, "trainopt's executable", {kMaxTrainoptBytes, 60});
    close(fd);
    if (!content) return failure(content.error());
    return sha256_hex(*content);
}

std::string build_cache_key(const BuildKeyInputs& in) {
    return cache_key("trainopt build cache " + std::to_string(kBuildCacheFormat),
                     {{"tree", in.tree_sha256},
                      {"recipe", in.recipe},
                      {"toolchain", in.toolchain},
                      {"machine", in.machine},
                      {"trainopt", in.trainopt_sha256},
                      {"trusted-inputs", in.trusted_inputs}});
}

std::string toolchain_identity() {
    std::string out = "cmake " + file_identity("/usr/bin/cmake") + "\n";  // build.cpp's cmake
    // CMake takes the first C and C++ compiler in PATH (the environment names none); the
    // compiler drivers pick their assembler and linker from the same installation
    const std::vector<std::string> dirs = build_path_dirs();
    for (const char* tool :
         {"c++", "cc", "g++", "gcc", "clang++", "clang", "ld", "as", "ar", "make", "ninja"}) {
        std::string found = "-";
        for (const std::string& dir : dirs) {
            struct stat st;
            const std::string candidate = dir + "/" + tool;
            if (lstat(candidate.c_str(), &st) == 0) {
                found = file_identity(candidate);
                break;
            }
        }
        out += std::string(tool) + " " + found + "\n";
    }
    out += "packages " + file_identity("/var/lib/dpkg/status") + "\n";
    return out;
}

std::string machine_identity() {
    std::string out;
    utsname u{};
    if (uname(&u) == 0) out += std::string("arch ") + u.machine + "\n";
    // the first processor's block of /proc/cpuinfo: x86 and ARM name their features differently
    static const char* const keys[] = {
        "vendor_id",       "cpu family",       "model",       "model name", "flags", "Features",
        "CPU implementer", "CPU architecture", "CPU variant", "CPU part"};
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line) && !line.empty()) {
        const size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string key = line.substr(0, colon);
        while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
        if (std::find(std::begin(keys), std::end(keys), key) != std::end(keys)) out += line + "\n";
    }
    return out;
}

Result<BuildKeyInputs> build_key_inputs(const std::string& source_dir, SandboxMode mode) {
    BuildKeyInputs in;
    Result<std::string> tree = digest_tree(source_dir);
    if (!tree) return failure("the scratch tree cannot be hashed: " + tree.error());
    in.tree_sha256 = *tree;
    Result<std::string> self = own_executable_sha256();
    if (!self) return failure(self.error());
    in.trainopt_sha256 = *self;
    in.recipe = build_recipe(mode);
    in.toolchain = toolchain_identity();
    in.machine = machine_identity();
    in.trusted_inputs = trusted_manifest_digest();
    return in;
}

}  // namespace trainopt
