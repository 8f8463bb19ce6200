// trainopt-sandbox-init: the first process of every sandboxed trainer run.
//
//   trainopt-sandbox-init [--drop-privileges] [--max-file-bytes N] -- TRAINER ARGS...
//
// It starts the trainer, waits for it, then kills and counts every process the trainer left
// behind (it is PID 1 of the sandbox's PID namespace, or a child subreaper without one, so all
// orphans end up as its children). Exit status: the trainer's, 128+signal when the trainer was
// killed, or kLeftoverExit when anything outlived the trainer, which the harness treats as
// invalid. A trainer that exits with kLeftoverExit itself only hurts itself.
#include <dirent.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr int kLeftoverExit = 125;

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
        FILE* f = fopen(path.c_str(), "r");
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

}  // namespace

int main(int argc, char** argv) {
    bool drop_privileges = false;
    rlim_t max_file_bytes = (rlim_t)4 << 30;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--drop-privileges") == 0) {
            drop_privileges = true;
        } else if (strcmp(argv[i], "--max-file-bytes") == 0 && i + 1 < argc) {
            max_file_bytes = strtoull(argv[++i], nullptr, 10);
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else {
            fprintf(stderr, "trainopt-sandbox-init: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "usage: trainopt-sandbox-init [--drop-privileges] -- COMMAND...\n");
        return 2;
    }
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    prctl(PR_SET_DUMPABLE, 0);  // the trainer cannot inspect or signal us through /proc
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    rlimit fsize{max_file_bytes, max_file_bytes};
    setrlimit(RLIMIT_FSIZE, &fsize);
    if (drop_privileges && getuid() == 0) {
        if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
            perror("trainopt-sandbox-init: cannot drop privileges");
            return 2;
        }
        prctl(PR_SET_DUMPABLE, 0);
    }

    pid_t trainer = fork();
    if (trainer < 0) {
        perror("trainopt-sandbox-init: fork");
        return 2;
    }
    if (trainer == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with us (the unsandboxed fallback needs this)
        signal(SIGPIPE, SIG_DFL);
        execv(argv[i], argv + i);
        fprintf(stderr, "trainopt-sandbox-init: cannot run %s: %s\n", argv[i], strerror(errno));
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
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
