#include "scoring/machine_id.h"

#include <unistd.h>

#include <fstream>
#include <string>

#include "scoring/spec_hash.h"

namespace trainopt {

namespace {

// The value of /proc/cpuinfo's first "model name" line (x86; other CPUs name it otherwise).
std::string cpu_model_name() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) != 0) continue;
        const size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        const size_t start = line.find_first_not_of(" \t", colon + 1);
        return start == std::string::npos ? "" : line.substr(start);
    }
    return "";
}

}  // namespace

std::string MachineIdentity::key() const {
    if (!known()) return kUnknownHash;
    return host + " / " + (cpu_model.empty() ? "unknown CPU" : cpu_model) + " / " +
           std::to_string(cpus) + " cores";
}

MachineIdentity identify_machine() {
    MachineIdentity id;
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) == 0) id.host = host;
    id.cpu_model = cpu_model_name();
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    id.cpus = cpus > 0 ? (int)cpus : 0;
    return id;
}

}  // namespace trainopt
