// Which machine a report was measured on: its host name, CPU model and number of online CPUs.
// Speedups move with the machine (docs/scoring.md), so the history (history_db.h) only puts runs
// of the same machine in one series.
#pragma once

#include <string>

namespace trainopt {

struct MachineIdentity {
    std::string host;       // gethostname(); empty: unknown (a report from before the field)
    std::string cpu_model;  // /proc/cpuinfo's first "model name"
    int cpus = 0;           // online CPUs, sysconf(_SC_NPROCESSORS_ONLN)

    bool known() const { return !host.empty(); }
    // "host / CPU model / N cores", or kUnknownHash ("unknown") when not known: the history's
    // machine key
    std::string key() const;
};

// This machine. Fields that cannot be read stay empty (or 0).
MachineIdentity identify_machine();

}  // namespace trainopt
