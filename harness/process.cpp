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

#include "scoring/untrusted_text.h"

namespace trainopt {

namespace {

double monotonic_seconds() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double timeval_seconds(const timeval& tv) {
    return tv.tv_sec + tv.tv_usec * 1e-6;
}

}  // namespace

std::string ProcessOutcome::describe() const {
    if (!started) return "did not start: " + spawn_error;
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

ProcessOutcome run_process(const SpawnSpec& spec) {
    ProcessOutcome outcome;
    if (spec.argv.empty() || spec.pass_fds.size() > 16) {
        outcome.spawn_error = "empty command or too many descriptors to pass";
        return outcome;
    }
    // Build everything the child needs before fork: the child only calls async-signal-safe code.
    std::vector<char*> argv;
    for (const std::string& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const std::string& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    const std::string out_path = spec.output_path.empty() ? "/dev/null" : spec.output_path;
    int out_fd =
        open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out_fd < 0) {
        outcome.spawn_error = "cannot open " + out_path + ": " + strerror(errno);
        return outcome;
    }
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    // The exec error, if any, comes back through a close-on-exec pipe.
    int err_pipe[2];
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
        outcome.spawn_error = std::string("pipe: ") + strerror(errno);
        close(out_fd);
        close(null_fd);
        return outcome;
    }

    const double start = monotonic_seconds();
    pid_t pid = fork();
    if (pid < 0) {
        outcome.spawn_error = std::string("fork: ") + strerror(errno);
        close(out_fd);
        close(null_fd);
        close(err_pipe[0]);
        close(err_pipe[1]);
        return outcome;
    }
    if (pid == 0) {
        setpgid(0, 0);  // own process group, so a timeout can kill the whole tree
        prctl(PR_SET_PDEATHSIG, SIGKILL);  // an interrupted harness leaves no child running
        dup2(null_fd, 0);
        dup2(out_fd, 1);
        dup2(out_fd, 2);
        // Passed descriptors move above the targets first so no dup2 overwrites a source.
        const int passed = (int)spec.pass_fds.size();
        int moved[16];
        for (int i = 0; i < passed && i < 16; i++) {
            moved[i] = fcntl(spec.pass_fds[i], F_DUPFD_CLOEXEC, 64);
        }
        for (int i = 0; i < passed && i < 16; i++) dup2(moved[i], 3 + i);
        // nothing else is inherited: 0-2, the passed ones, the error pipe (close-on-exec)
        for (int fd = 3 + passed; fd < 1024; fd++) {
            if (fd != err_pipe[1]) close(fd);
        }
        if (!spec.cwd.empty() && chdir(spec.cwd.c_str()) != 0) {
            int e = errno;
            (void)!write(err_pipe[1], &e, sizeof(e));
            _exit(127);
        }
        if (spec.run_as_uid >= 0 &&
            (setgroups(0, nullptr) != 0 || setgid((gid_t)spec.run_as_uid) != 0 ||
             setuid((uid_t)spec.run_as_uid) != 0)) {
            int e = errno;
            (void)!write(err_pipe[1], &e, sizeof(e));
            _exit(127);
        }
        execve(argv[0], argv.data(), envp.data());
        int e = errno;
        (void)!write(err_pipe[1], &e, sizeof(e));
        _exit(127);
    }
    close(err_pipe[1]);
    close(out_fd);
    close(null_fd);
    int exec_errno = 0;
    ssize_t got = read(err_pipe[0], &exec_errno, sizeof(exec_errno));
    close(err_pipe[0]);

    // Wait with a timeout: a pidfd becomes readable when the child exits. An interrupt of the
    // harness kills the child too.
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd >= 0) {
        const double deadline = spec.timeout_seconds > 0 ? start + spec.timeout_seconds : 1e300;
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
    }
    if (pidfd >= 0) close(pidfd);

    int status = 0;
    rusage usage{};
    while (wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
    }
    const double end = monotonic_seconds();
    kill(-pid, SIGKILL);  // anything left in the child's process group goes too

    outcome.started = got != sizeof(exec_errno);
    if (!outcome.started) {
        outcome.spawn_error = "cannot run " + spec.argv[0] + ": " + strerror(exec_errno);
        return outcome;
    }
    outcome.wall_seconds = end - start;
    outcome.user_seconds = timeval_seconds(usage.ru_utime);
    outcome.sys_seconds = timeval_seconds(usage.ru_stime);
    outcome.max_rss_mb = usage.ru_maxrss / 1024.0;
    if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) outcome.term_signal = WTERMSIG(status);
    return outcome;
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
