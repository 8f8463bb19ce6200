#include "harness/process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "harness/safe_file.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace {

double timeval_seconds(const timeval& tv) {
    return tv.tv_sec + tv.tv_usec * 1e-6;
}

}  // namespace

std::string ProcessOutcome::describe() const {
    if (interrupted) return "was killed: the harness was interrupted";
    if (timed_out) return "timed out and was killed";
    if (term_signal != 0)
        return std::string("killed by signal ") + std::to_string(term_signal) + " (" +
               strsignal(term_signal) + ")";
    return "exited with status " + std::to_string(exit_code);
}

namespace {
volatile sig_atomic_t interrupt_received = 0;
void on_interrupt(int) {
    interrupt_received = 1;
}
}  // namespace

void install_interrupt_handlers() {
    struct sigaction action {};
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

bool interrupted() {
    return interrupt_received != 0;
}

namespace {

constexpr size_t kMaxPassedFds = 16;

// Everything the child needs, built before fork: after fork the child only calls
// async-signal-safe code.
struct ChildSetup {
    std::vector<char*> argv;
    std::vector<char*> envp;
    int out_fd = -1;             // the child's stdout and stderr
    int null_fd = -1;            // the child's stdin
    int err_pipe[2] = {-1, -1};  // the exec error, if any, comes back through it (close-on-exec)

    void close_all() {
        for (int* fd : {&out_fd, &null_fd, &err_pipe[0], &err_pipe[1]}) {
            if (*fd >= 0) close(*fd);
            *fd = -1;
        }
    }
};

Status prepare_child(const SpawnSpec& spec, ChildSetup& child) {
    for (const std::string& a : spec.argv) child.argv.push_back(const_cast<char*>(a.c_str()));
    child.argv.push_back(nullptr);
    for (const std::string& e : spec.env) child.envp.push_back(const_cast<char*>(e.c_str()));
    child.envp.push_back(nullptr);
    const std::string out_path = spec.output_path.empty() ? "/dev/null" : spec.output_path;
    child.out_fd =
        open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (child.out_fd < 0) return failure("cannot open " + out_path + ": " + strerror(errno));
    child.null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (pipe2(child.err_pipe, O_CLOEXEC) != 0) {
        const std::string why = std::string("pipe: ") + strerror(errno);
        child.close_all();
        return failure(why);
    }
    return {};
}

// In the child: hands errno to the parent through the error pipe and exits.
[[noreturn]] void report_exec_error(const ChildSetup& child) {
    int e = errno;
    (void)!write(child.err_pipe[1], &e, sizeof(e));
    _exit(127);
}

// In the child, after fork: sets up descriptors, directory and user, then execs the command.
[[noreturn]] void exec_child(const SpawnSpec& spec, const ChildSetup& child) {
    setpgid(0, 0);                     // own process group, so a timeout can kill the whole tree
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // an interrupted harness leaves no child running
    dup2(child.null_fd, 0);
    dup2(child.out_fd, 1);
    dup2(child.out_fd, 2);
    // Passed descriptors move above the targets first so no dup2 overwrites a source.
    const int passed = (int)spec.pass_fds.size();
    int moved[kMaxPassedFds];
    for (int i = 0; i < passed; i++) moved[i] = fcntl(spec.pass_fds[i], F_DUPFD_CLOEXEC, 64);
    for (int i = 0; i < passed; i++) dup2(moved[i], 3 + i);
    // nothing else is inherited: 0-2, the passed ones, the error pipe (close-on-exec)
    for (int fd = 3 + passed; fd < 1024; fd++) {
        if (fd != child.err_pipe[1]) close(fd);
    }
    if (!spec.cwd.empty() && chdir(spec.cwd.c_str()) != 0) report_exec_error(child);
    if (spec.run_as_uid >= 0 &&
        (setgroups(0, nullptr) != 0 || setgid((gid_t)spec.run_as_uid) != 0 ||
         setuid((uid_t)spec.run_as_uid) != 0))
        report_exec_error(child);
    execve(child.argv[0], child.argv.data(), child.envp.data());
    report_exec_error(child);
}

// Waits until the child exits, killing its process group at the deadline or when the harness
// is interrupted (a pidfd becomes readable when the child exits).
void wait_for_exit(pid_t pid, double deadline, ProcessOutcome& outcome) {
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) return;
    while (true) {
        const double remaining = deadline - monotonic_seconds();
        const bool stop = interrupted();
        if (remaining <= 0 || stop) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            outcome.timed_out = !stop;
            outcome.interrupted = stop;
            break;
        }
        pollfd p{pidfd, POLLIN, 0};
        int r = poll(&p, 1, (int)std::min(remaining * 1000 + 1, 1000.0));
        if (r > 0) break;
        if (r < 0 && errno != EINTR) break;
    }
    close(pidfd);
}

// Reaps the child, records how it ended and what it used, and kills anything left in its
// process group.
void reap(pid_t pid, double start, ProcessOutcome& outcome) {
    int status = 0;
    rusage usage{};
    while (wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
    }
    outcome.wall_seconds = monotonic_seconds() - start;
    kill(-pid, SIGKILL);
    outcome.user_seconds = timeval_seconds(usage.ru_utime);
    outcome.sys_seconds = timeval_seconds(usage.ru_stime);
    outcome.max_rss_mb = usage.ru_maxrss / 1024.0;
    if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) outcome.term_signal = WTERMSIG(status);
}

}  // namespace

Result<ProcessOutcome> run_process(const SpawnSpec& spec) {
    if (spec.argv.empty() || spec.pass_fds.size() > kMaxPassedFds)
        return failure("empty command or too many descriptors to pass");
    ChildSetup child;
    if (Status prepared = prepare_child(spec, child); !prepared) return failure(prepared.error());

    const double start = monotonic_seconds();
    pid_t pid = fork();
    if (pid < 0) {
        const std::string why = std::string("fork: ") + strerror(errno);
        child.close_all();
        return failure(why);
    }
    if (pid == 0) exec_child(spec, child);
    close(child.err_pipe[1]);
    close(child.out_fd);
    close(child.null_fd);
    int exec_errno = 0;
    const bool exec_failed =
        read(child.err_pipe[0], &exec_errno, sizeof(exec_errno)) == (ssize_t)sizeof(exec_errno);
    close(child.err_pipe[0]);

    ProcessOutcome outcome;
    wait_for_exit(pid, spec.timeout_seconds > 0 ? start + spec.timeout_seconds : 1e300, outcome);
    reap(pid, start, outcome);
    if (exec_failed) return failure("cannot run " + spec.argv[0] + ": " + strerror(exec_errno));
    return outcome;
}

std::string describe(const Result<ProcessOutcome>& outcome) {
    return outcome ? outcome->describe() : "did not start: " + outcome.error();
}

std::string file_tail(const std::string& path, size_t max_bytes) {
    int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return "";
    struct stat st;
    std::string s;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        const off_t from = st.st_size > (off_t)max_bytes ? st.st_size - (off_t)max_bytes : 0;
        s.resize((size_t)(st.st_size - from));
        ssize_t n = pread(fd, s.data(), s.size(), from);
        s.resize(n > 0 ? (size_t)n : 0);
    }
    close(fd);
    return untrusted_tail(s, max_bytes);
}

}  // namespace trainopt
