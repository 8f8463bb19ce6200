#include "harness/binary_audit.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "harness/process.h"
#include "harness/sandbox.h"

namespace trainopt {

namespace {

const std::set<std::string> kTimeFunctions = {
    "clock_gettime", "__clock_gettime", "gettimeofday", "__gettimeofday",
    "time",          "clock",           "timespec_get", "__vdso_clock_gettime",
    "clock_getres",  "times",           "getrusage",    "ftime"};

}  // namespace

std::vector<std::string> audit_trainer_binary(const std::string& path,
                                              std::vector<std::string>& warnings) {
    std::vector<std::string> problems;
    if (!std::filesystem::exists("/usr/bin/nm")) {
        warnings.push_back("nm not found: the timer-interposition check was skipped");
        return problems;
    }
    const std::string listing = path + ".symbols";
    SpawnSpec spec;
    spec.argv = {"/usr/bin/nm", "--defined-only", "--extern-only", path};
    spec.env = sandbox_environment();
    spec.output_path = listing;
    spec.timeout_seconds = 60;
    ProcessOutcome outcome = run_process(spec);
    spec.argv = {"/usr/bin/nm", "--dynamic", "--defined-only", path};
    spec.output_path = listing + ".dynamic";
    ProcessOutcome dynamic = run_process(spec);
    if (!outcome.succeeded() && !dynamic.succeeded()) {
        warnings.push_back(
            "nm could not read the trainer: the timer-interposition check was skipped");
        return problems;
    }
    std::set<std::string> reported;
    for (const std::string& file : {listing, listing + ".dynamic"}) {
        std::ifstream in(file);
        std::string line;
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::string address, type, name;
            if (!(fields >> address >> type >> name)) continue;
            std::string base = name.substr(0, name.find('@'));
            if (kTimeFunctions.count(base) && (type == "T" || type == "W" || type == "i") &&
                !reported.count(base)) {
                reported.insert(base);
                problems.push_back(
                    "the trainer defines its own " + base +
                    "(): replacing time functions (timer interposition) is not allowed");
            }
        }
    }
    return problems;
}

}  // namespace trainopt
