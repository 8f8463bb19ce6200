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

// The listing of `nm FLAGS trainer`, run sandboxed, written to PRIVATE_DIR/LISTING and read
// back with a size cap.
Result<std::string> list_symbols(const std::string& trainer_copy,
                                 const std::vector<std::string>& flags,
                                 const std::string& private_dir, const std::string& listing,
                                 SandboxMode mode) {
    SandboxSpec sandbox;
    sandbox.mode = mode;
    const bool boxed = mode == SandboxMode::bubblewrap;
    SpawnSpec spec;
    int trainer_fd = -1;
    if (boxed) {
        trainer_fd = open(trainer_copy.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (trainer_fd < 0) return failure("cannot open " + trainer_copy);
        sandbox.data_files = {{3, kSandboxTrainer, 0444}};
        spec.pass_fds = {trainer_fd};
    }
    sandbox.command = {"/usr/bin/nm"};
    sandbox.command.insert(sandbox.command.end(), flags.begin(), flags.end());
    sandbox.command.push_back(boxed ? kSandboxTrainer : trainer_copy);
    spec.argv = sandbox_argv(sandbox);
    spec.env = sandbox_environment();
    spec.cwd = "/";
    spec.output_path = private_dir + "/" + listing;
    spec.timeout_seconds = 60;
    spec.run_as_uid = untrusted_uid();
    Result<ProcessOutcome> nm = run_process(spec);
    if (trainer_fd >= 0) close(trainer_fd);
    if (!nm || !nm->succeeded()) return failure("nm " + describe(nm));
    return read_file_beneath(private_dir, listing, {kMaxListingBytes, 30});
}

// The time functions a listing shows the trainer defines (T, W or i symbols), in the listing's
// order.
std::vector<std::string> defined_time_functions(const std::string& listing) {
    std::vector<std::string> found;
    std::istringstream lines(listing);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream fields(line);
        std::string address, type, symbol;
        if (!(fields >> address >> type >> symbol)) continue;
        std::string base = symbol.substr(0, symbol.find('@'));
        if (kTimeFunctions.count(base) && (type == "T" || type == "W" || type == "i"))
            found.push_back(base);
    }
    return found;
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
        Result<std::string> listing = list_symbols(trainer_copy, flags, private_dir, name, mode);
        if (!listing) {
            audit.problems.push_back(
                "nm cannot read the trainer's " +
                std::string(name == "symbols.txt" ? "symbol table" : "dynamic symbol table") +
                ": a trainer the harness cannot audit for timer interposition is refused");
            continue;
        }
        for (const std::string& function : defined_time_functions(*listing)) {
            if (!reported.insert(function).second) continue;
            audit.problems.push_back(
                "the trainer defines its own " + function +
                "(): replacing time functions (timer interposition) is not allowed");
        }
    }
    return audit;
}

}  // namespace trainopt
