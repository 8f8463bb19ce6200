// trainopt-sandbox-init: the first process of every sandboxed trainer run (trusted code).
//
//   trainopt-sandbox-init [--drop-privileges] [--cpus 0,1] [--max-processes N]
//                         [--max-memory-bytes N] [--max-file-bytes N]
//                         [--out-dir DIR --export-fd FD --collect NAME:MAX_BYTES ...]
//                         -- TRAINER ARGS...
//
// It applies the run's limits (pinned cores the trainer cannot leave, processes, memory, file
// size), starts the trainer, waits for it, then kills and counts every
// process the trainer left behind (it is PID 1 of the sandbox's PID namespace, or a child
// subreaper without one, so all orphans end up as its children). Only then, with nothing of the
// trainer's left alive, it copies the outputs named by --collect from DIR into the directory
// open as FD: each opened without following links, only a regular file, at most MAX_BYTES. The
// directory behind FD is the harness's; it is never visible in the sandbox's file system, and the
// descriptor is close-on-exec, so the trainer never holds it. What could not be collected is
// written to FD/collect-problems.txt, one line per file.
//
// Exit status: the trainer's, 128+signal when the trainer was killed, kLeftoverExit when
// anything outlived the trainer (the run is then invalid), or kInitError when init itself failed.
// With --drop-privileges (the unsandboxed fallback, run as root) only the trainer switches to
// uid/gid 65534; init stays privileged to kill and collect.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "harness/sandbox_protocol.h"

namespace {

using trainopt::kCollectProblemsFile;
using trainopt::kInitError;
using trainopt::kLeftoverExit;
using trainopt::kNobodyId;

struct Collect {
    std::string name;
    size_t max_bytes = 0;
};

struct InitOptions {
    bool drop_privileges = false;
    std::vector<int> cpus;
    rlim_t max_processes = 0;     // 0: no limit set
    rlim_t max_memory_bytes = 0;  // 0: no limit set
    rlim_t max_file_bytes = (rlim_t)4 << 30;
    std::string out_dir;
    int export_fd = -1;
    std::vector<Collect> collect;
    char** command = nullptr;
};

int usage(const char* why) {
    fprintf(stderr, "trainopt-sandbox-init: %s\n", why);
    return kInitError;
}

bool parse_number(const char* text, unsigned long long& out) {
    char* end = nullptr;
    errno = 0;
    out = strtoull(text, &end, 10);
    return errno == 0 && end != text && *end == '\0';
}

bool parse_options(int argc, char** argv, InitOptions& o) {
    int i = 1;
    for (; i < argc; i++) {
        const std::string arg = argv[i];
        const bool has_value = i + 1 < argc;
        unsigned long long n = 0;
        if (arg == "--drop-privileges") {
            o.drop_privileges = true;
        } else if (arg == "--") {
            i++;
            break;
        } else if (!has_value) {
            return false;
        } else if (arg == "--cpus") {
            std::string list = argv[++i];
            size_t begin = 0;
            while (begin <= list.size()) {
                size_t comma = list.find(',', begin);
                std::string item = list.substr(begin, comma - begin);
                if (!parse_number(item.c_str(), n) || n >= CPU_SETSIZE) return false;
                o.cpus.push_back((int)n);
                if (comma == std::string::npos) break;
                begin = comma + 1;
            }
        } else if (arg == "--max-processes" && parse_number(argv[i + 1], n)) {
            o.max_processes = n;
            i++;
        } else if (arg == "--max-memory-bytes" && parse_number(argv[i + 1], n)) {
            o.max_memory_bytes = n;
            i++;
        } else if (arg == "--max-file-bytes" && parse_number(argv[i + 1], n)) {
            o.max_file_bytes = n;
            i++;
        } else if (arg == "--out-dir") {
            o.out_dir = argv[++i];
        } else if (arg == "--export-fd" && parse_number(argv[i + 1], n) && n < 1024) {
            o.export_fd = (int)n;
            i++;
        } else if (arg == "--collect") {
            std::string spec = argv[++i];
            size_t colon = spec.rfind(':');
            if (colon == std::string::npos || colon == 0 || spec.find('/') != std::string::npos ||
                !parse_number(spec.c_str() + colon + 1, n)) {
                return false;
            }
            o.collect.push_back({spec.substr(0, colon), (size_t)n});
        } else {
            return false;
        }
    }
    if (i >= argc) return false;
    if (!o.collect.empty() && (o.export_fd < 0 || o.out_dir.empty())) return false;
    o.command = argv + i;
    return true;
}

// Direct children of this process that are still alive (or zombies), by scanning /proc.
std::vector<pid_t> list_children() {
    std::vector<pid_t> children;
    const pid_t self = getpid();
    DIR* proc = opendir("/proc");
    if (proc == nullptr) return children;
    while (dirent* entry = readdir(proc)) {
        char* end = nullptr;
        long pid = strtol(entry->d_name, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == self) continue;
        std::string path = std::string("/proc/") + entry->d_name + "/stat";
        FILE* f = fopen(path.c_str(), "re");
        if (f == nullptr) continue;
        char buf[512];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        // the field after the ")" that closes the command name is the state, then the ppid
        const char* close_paren = strrchr(buf, ')');
        if (close_paren == nullptr) continue;
        char state;
        long ppid;
        if (sscanf(close_paren + 1, " %c %ld", &state, &ppid) == 2 && ppid == self) {
            children.push_back((pid_t)pid);
        }
    }
    closedir(proc);
    return children;
}

// Kills and reaps everything left; returns how many processes that was.
int reap_leftovers() {
    int count = 0;
    while (true) {
        int status;
        pid_t done = waitpid(-1, &status, WNOHANG);
        if (done > 0) {
            count++;
            continue;
        }
        if (done < 0 && errno == ECHILD) break;
        for (pid_t child : list_children()) kill(child, SIGKILL);
        if (getpid() == 1) kill(-1, SIGKILL);  // everything else in our PID namespace
        done = waitpid(-1, &status, 0);
        if (done > 0) count++;
    }
    return count;
}

bool apply_limits(const InitOptions& o) {
    rlimit no_core{0, 0};
    rlimit fsize{o.max_file_bytes, o.max_file_bytes};
    if (setrlimit(RLIMIT_CORE, &no_core) != 0 || setrlimit(RLIMIT_FSIZE, &fsize) != 0) {
        perror("trainopt-sandbox-init: setrlimit");
        return false;
    }
    if (o.max_memory_bytes > 0) {
        rlimit data{o.max_memory_bytes, o.max_memory_bytes};
        if (setrlimit(RLIMIT_DATA, &data) != 0) {
            perror("trainopt-sandbox-init: RLIMIT_DATA");
            return false;
        }
    }
    if (!o.cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        for (int cpu : o.cpus) CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0) {
            perror("trainopt-sandbox-init: sched_setaffinity");
            return false;
        }
    }
    return true;
}

// The system calls everything init starts may not make, each failing with EPERM:
// - sched_setaffinity: pinning holds only if the trainer cannot move itself;
// - memory that RLIMIT_DATA does not count: shared anonymous mappings (mmap with MAP_SHARED and
//   MAP_ANONYMOUS), memfd_create and SysV shared memory (shmget). File-backed shared memory
//   needs a writable file system, and the sandbox's (/tmp, /sandbox/out) are size-capped tmpfs.
// Only native x86-64 calls get through at all: the 32-bit (int 0x80) and x32 entry points fail
// with EPERM, so no rule can be sidestepped through another ABI.
bool install_syscall_filter() {
    scmp_filter_ctx filter = seccomp_init(SCMP_ACT_ALLOW);
    if (filter == nullptr) return false;
    bool ok = seccomp_attr_set(filter, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(EPERM)) == 0;
    const uint32_t refuse = SCMP_ACT_ERRNO(EPERM);
    ok = ok && seccomp_rule_add(filter, refuse, SCMP_SYS(sched_setaffinity), 0) == 0;
    ok = ok && seccomp_rule_add(filter, refuse, SCMP_SYS(memfd_create), 0) == 0;
    ok = ok && seccomp_rule_add(filter, refuse, SCMP_SYS(shmget), 0) == 0;
    const scmp_datum_t shared_anonymous = MAP_SHARED | MAP_ANONYMOUS;
    ok = ok &&
         seccomp_rule_add(filter, refuse, SCMP_SYS(mmap), 1,
                          SCMP_A3(SCMP_CMP_MASKED_EQ, shared_anonymous, shared_anonymous)) == 0;
    ok = ok && seccomp_load(filter) == 0;
    seccomp_release(filter);
    return ok;
}

// The process-count limit counts processes per user, so it goes on the trainer only: init must
// still be able to fork it, and in the fallback the trainer's uid differs from init's.
bool limit_processes(rlim_t max_processes) {
    if (max_processes == 0) return true;
    rlimit nproc{max_processes, max_processes};
    return setrlimit(RLIMIT_NPROC, &nproc) == 0;
}

void append_problem(int dir_fd, const std::string& line) {
    int fd = openat(dir_fd, kCollectProblemsFile,
                    O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return;
    std::string text = line + "\n";
    (void)!write(fd, text.data(), text.size());
    close(fd);
}

// Copies one output into the export directory; on any problem records it instead.
void collect_one(const InitOptions& o, const Collect& c) {
    const std::string path = o.out_dir + "/" + c.name;
    int in = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (in < 0) {
        append_problem(o.export_fd,
                       c.name + (errno == ENOENT  ? " is missing"
                                 : errno == ELOOP ? " is a symbolic link: links are not followed"
                                                  : " cannot be opened"));
        return;
    }
    struct stat st;
    if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
        append_problem(o.export_fd, c.name + " is not a regular file");
        close(in);
        return;
    }
    if ((size_t)st.st_size > c.max_bytes) {
        append_problem(o.export_fd, c.name + " is " + std::to_string(st.st_size) +
                                        " bytes, more than the " + std::to_string(c.max_bytes) +
                                        " bytes allowed");
        close(in);
        return;
    }
    int out = openat(o.export_fd, c.name.c_str(),
                     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        append_problem(o.export_fd, c.name + " could not be exported");
        close(in);
        return;
    }
    size_t total = 0;
    char buf[1 << 16];
    while (true) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        total += (size_t)n;
        if (total > c.max_bytes || write(out, buf, (size_t)n) != n) {
            append_problem(o.export_fd, c.name + " could not be exported whole");
            break;
        }
    }
    close(in);
    close(out);
}

}  // namespace

int main(int argc, char** argv) {
    InitOptions o;
    if (!parse_options(argc, argv, o)) {
        return usage(
            "usage: trainopt-sandbox-init [--drop-privileges] [--cpus LIST] [--max-processes N] "
            "[--max-memory-bytes N] [--max-file-bytes N] [--out-dir DIR --export-fd FD "
            "--collect NAME:MAX ...] -- COMMAND...");
    }
    // The export directory must not reach the trainer through exec, nor anything else inherited.
    if (o.export_fd >= 0 && fcntl(o.export_fd, F_SETFD, FD_CLOEXEC) != 0) {
        return usage("--export-fd is not an open descriptor");
    }
    for (int fd = 3; fd < 1024; fd++) {
        if (fd != o.export_fd) close(fd);
    }
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    prctl(PR_SET_DUMPABLE, 0);  // the trainer cannot inspect or signal us through /proc
    if (!apply_limits(o)) return kInitError;

    pid_t trainer = fork();
    if (trainer < 0) {
        perror("trainopt-sandbox-init: fork");
        return kInitError;
    }
    if (trainer == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with us (the unsandboxed fallback needs this)
        signal(SIGPIPE, SIG_DFL);
        if (o.drop_privileges && getuid() == 0 &&
            (setgroups(0, nullptr) != 0 || setgid(kNobodyId) != 0 || setuid(kNobodyId) != 0)) {
            perror("trainopt-sandbox-init: cannot drop privileges");
            _exit(kInitError);
        }
        if (!install_syscall_filter()) {
            fprintf(stderr, "trainopt-sandbox-init: cannot install the system call filter\n");
            _exit(kInitError);
        }
        if (!limit_processes(o.max_processes)) {
            perror("trainopt-sandbox-init: RLIMIT_NPROC");
            _exit(kInitError);
        }
        execv(o.command[0], o.command);
        fprintf(stderr, "trainopt-sandbox-init: cannot run %s: %s\n", o.command[0],
                strerror(errno));
        _exit(127);
    }
    int status = 0;
    while (waitpid(trainer, &status, 0) < 0 && errno == EINTR) {
    }
    int leftovers = reap_leftovers();
    if (leftovers > 0) {
        fprintf(stderr,
                "trainopt-sandbox-init: killed %d process(es) left running by the trainer\n",
                leftovers);
        return kLeftoverExit;
    }
    for (const Collect& c : o.collect) collect_one(o, c);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
