#include "harness/binary_audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "harness/process.h"
#include "harness/safe_file.h"
#include "harness/sandbox_protocol.h"

namespace trainopt {

namespace {

const std::set<std::string> kTimeFunctions = {
    "clock_gettime", "__clock_gettime", "gettimeofday", "__gettimeofday",
    "time",          "clock",           "timespec_get", "__vdso_clock_gettime",
    "clock_getres",  "times",           "getrusage",    "ftime"};

constexpr size_t kMaxListingBytes = (size_t)64 << 20;

// Runs `nm FLAGS trainer` sandboxed, writing the listing to `listing`.
bool run_nm(const std::string& trainer_copy, const std::vector<std::string>& flags,
            const std::string& listing, SandboxMode mode) {
    SandboxSpec sandbox;
    sandbox.mode = mode;
    const bool boxed = mode == SandboxMode::bubblewrap;
    SpawnSpec spec;
    int trainer_fd = -1;
    if (boxed) {
        trainer_fd = open(trainer_copy.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (trainer_fd < 0) return false;
        sandbox.data_files = {{3, kSandboxTrainer, 0444}};
        spec.pass_fds = {trainer_fd};
    }
    sandbox.command = {"/usr/bin/nm"};
    sandbox.command.insert(sandbox.command.end(), flags.begin(), flags.end());
    sandbox.command.push_back(boxed ? kSandboxTrainer : trainer_copy);
    spec.argv = sandbox_argv(sandbox);
    spec.env = sandbox_environment();
    spec.cwd = "/";
    spec.output_path = listing;
    spec.timeout_seconds = 60;
    spec.run_as_uid = untrusted_uid();
    const bool ok = run_process(spec).succeeded();
    if (trainer_fd >= 0) close(trainer_fd);
    return ok;
}

}  // namespace

BinaryAudit audit_trainer_binary(const std::string& trainer_copy, const std::string& private_dir,
                                 SandboxMode mode) {
    BinaryAudit audit;
    if (!std::filesystem::exists("/usr/bin/nm")) {
        audit.warnings.push_back("nm not found: the timer-interposition check was skipped");
        return audit;
    }
    const std::vector<std::pair<std::string, std::vector<std::string>>> listings = {
        {"symbols.txt", {"--defined-only", "--extern-only"}},
        {"dynamic-symbols.txt", {"--dynamic", "--defined-only"}}};
    std::set<std::string> reported;
    for (const auto& [name, flags] : listings) {
        // Fail closed: a trainer whose symbol tables nm cannot read (a damaged section header
        // table still runs, the loader never reads it) cannot be audited, so it is refused.
        std::string text, error;
        if (!run_nm(trainer_copy, flags, private_dir + "/" + name, mode) ||
            !read_file_beneath(private_dir, name, {kMaxListingBytes, 30}, text, error)) {
            audit.problems.push_back(
                "nm cannot read the trainer's " +
                std::string(name == "symbols.txt" ? "symbol table" : "dynamic symbol table") +
                ": a trainer the harness cannot audit for timer interposition is refused");
            continue;
        }
        std::istringstream lines(text);
        std::string line;
        while (std::getline(lines, line)) {
            std::istringstream fields(line);
            std::string address, type, symbol;
            if (!(fields >> address >> type >> symbol)) continue;
            std::string base = symbol.substr(0, symbol.find('@'));
            if (kTimeFunctions.count(base) && (type == "T" || type == "W" || type == "i") &&
                !reported.count(base)) {
                reported.insert(base);
                audit.problems.push_back(
                    "the trainer defines its own " + base +
                    "(): replacing time functions (timer interposition) is not allowed");
            }
        }
    }
    return audit;
}

}  // namespace trainopt
