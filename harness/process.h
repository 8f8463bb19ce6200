// Spawning a child process and measuring it from the parent: wall time around spawn -> reap
// (CLOCK_MONOTONIC) and CPU time from wait4's rusage. Nothing here trusts the child.
#pragma once

#include <string>
#include <vector>

#include "contract/result.h"

namespace trainopt {

struct SpawnSpec {
    std::vector<std::string> argv;
    std::vector<std::string> env;  // complete environment ("K=V"); nothing is inherited
    std::string cwd;               // empty: inherit
    std::string output_path;       // stdout and stderr go here (truncated); empty: /dev/null
    double timeout_seconds = 0;    // 0: none
    int run_as_uid = -1;           // >= 0: switch to this uid (and gid) before exec
    std::vector<int> pass_fds;     // handed to the child as descriptors 3, 4, ... in order
};

// How a command that started ended, and what it used.
struct ProcessOutcome {
    int exit_code = -1;   // valid when exited normally
    int term_signal = 0;  // non-zero when killed by a signal
    bool timed_out = false;
    bool interrupted = false;  // the harness got SIGINT or SIGTERM; the child was killed
    double wall_seconds = 0;
    double user_seconds = 0;
    double sys_seconds = 0;
    double max_rss_mb = 0;  // peak resident memory of the largest process in the tree

    bool succeeded() const { return !timed_out && term_signal == 0 && exit_code == 0; }
    std::string describe() const;  // e.g. "exited with status 3", "killed by signal 9"
};

// SIGINT and SIGTERM set a flag instead of ending the harness at once: the running child is
// killed and callers unwind, clean up and keep the partial report.
void install_interrupt_handlers();
bool interrupted();

// Runs the command to completion (or timeout, after which its process group is killed). Fails
// when the command could not be started.
Result<ProcessOutcome> run_process(const SpawnSpec& spec);

// What happened to a command: describe() of its outcome, or "did not start: " and why.
std::string describe(const Result<ProcessOutcome>& outcome);

// The last `max_bytes` of a log the harness wrote (its content is untrusted: it is returned with
// control characters removed), for error messages. Links are not followed.
std::string file_tail(const std::string& path, size_t max_bytes = 2000);

}  // namespace trainopt
