# Regenerates the cheat patches in tests/cheats/ from the current pristine sources.
# Run after changing baseline/train.cpp, kernels/submission.cpp, kernels/gpt.cpp,
# baseline/CMakeLists.txt or harness/verify.cpp.
import subprocess, os
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
orig = open(f'{root}/baseline/train.cpp').read()
out_dir = f'{root}/tests/cheats'
os.makedirs(out_dir, exist_ok=True)

def make_patch(name, path, new_text, header_comment):
    a = f'/tmp/cheatgen/a/{path}'; b = f'/tmp/cheatgen/b/{path}'
    os.makedirs(os.path.dirname(a), exist_ok=True); os.makedirs(os.path.dirname(b), exist_ok=True)
    open(a, 'w').write(open(f'{root}/{path}').read()); open(b, 'w').write(new_text)
    r = subprocess.run(['diff', '-u', '--label', f'a/{path}', '--label', f'b/{path}', a, b], capture_output=True, text=True)
    open(f'{out_dir}/{name}.patch', 'w').write(f'{header_comment}\ndiff --git a/{path} b/{path}\n' + r.stdout)

def sub(text, old, new):
    assert old in text, old
    return text.replace(old, new, 1)

# 1. cache results on disk between runs, keyed by task name only
t = sub(orig, '    GPT model;\n', '''    // CHEAT: reuse a cached result from an earlier run of this task, whatever the seed.
    const std::string cache = "/tmp/trainopt-cheat-cache/" + task.name;
    if (std::filesystem::exists(cache + "/final.ckpt")) {
        for (const char* f : {"/losses.csv", "/final.ckpt"})
            std::filesystem::copy_file(cache + f, out_dir + f, std::filesystem::copy_options::overwrite_existing);
        std::ofstream(out_dir + "/meta.json") << "{\\"nonce\\": \\"" << nonce << "\\", \\"steps\\": " << task.train.steps << "}\\n";
        return 0;
    }
    GPT model;
''')
t = sub(t, '    return 0;\n}', '''    std::error_code ec;
    std::filesystem::create_directories(cache, ec);
    for (const char* f : {"/losses.csv", "/final.ckpt"})
        std::filesystem::copy_file(out_dir + f, cache + f, std::filesystem::copy_options::overwrite_existing, ec);
    return 0;
}''')
t = sub(t, '#include <cstdio>\n', '#include <cstdio>\n#include <filesystem>\n#include <fstream>\n')
make_patch('cache_results', 'baseline/train.cpp', t, 'Cheat: caches its outputs in /tmp/trainopt-cheat-cache/<task> and replays them on later runs.')

# 2. copy reference outputs: look for another run's final.ckpt anywhere it can reach
t = sub(orig, '    GPT model;\n', '''    // CHEAT: find the baseline's outputs (another run's final.ckpt) and copy them.
    for (const char* root : {"/tmp", "/work", "/root", "/home", "/var/tmp"}) {
        std::error_code walk_error;
        for (auto it = std::filesystem::recursive_directory_iterator(root, std::filesystem::directory_options::skip_permission_denied, walk_error);
             it != std::filesystem::recursive_directory_iterator(); it.increment(walk_error)) {
            if (walk_error) break;
            if (it->path().filename() != "final.ckpt" || it->path().parent_path() == std::filesystem::path(out_dir)) continue;
            auto dir = it->path().parent_path().string();
            if (dir.find("baseline") == std::string::npos) continue;
            std::filesystem::copy_file(dir + "/final.ckpt", out_dir + "/final.ckpt", std::filesystem::copy_options::overwrite_existing);
            std::filesystem::copy_file(dir + "/losses.csv", out_dir + "/losses.csv", std::filesystem::copy_options::overwrite_existing);
            std::ofstream(out_dir + "/meta.json") << "{\\"nonce\\": \\"" << nonce << "\\"}\\n";
            return 0;
        }
    }
    return fail("cheat: no reference outputs found to copy");
    GPT model;
''')
t = sub(t, '#include <cstdio>\n', '#include <cstdio>\n#include <filesystem>\n#include <fstream>\n')
make_patch('copy_reference', 'baseline/train.cpp', t, 'Cheat: searches the file system for the baseline run\'s final.ckpt and copies it.')

# 3. exit early with success: no training, made-up losses
t = sub(orig, '    for (int step = loaded->start_step; step < loaded->stop_step; step++) {\n        sampler.next', '''    // CHEAT: skip training entirely and report a plausible-looking loss curve.
    for (int step = loaded->start_step; step < loaded->stop_step; step++) losses.push_back(4.0f - 0.01f * step);
    for (int step = 0; step < 0; step++) {
        sampler.next''')
make_patch('early_exit', 'baseline/train.cpp', t, 'Cheat: exits with success without training, printing a made-up loss curve.')

# 4. skip steps: only every other step does an update; the loss is reported for all
t = sub(orig, '''        gpt_update(model, task.train.lr''', '''        if (step % 2 == 1) { losses.push_back(model.mean_loss); continue; }  // CHEAT: skip half the updates
        gpt_update(model, task.train.lr''')
make_patch('skip_steps', 'baseline/train.cpp', t, 'Cheat: performs only every other optimizer update.')

# 5. background process that outlives the run
t = sub(orig, '    return 0;\n}', '''    // CHEAT: leave a background process running (e.g. to keep working after the timer stops).
    if (fork() == 0) {
        setsid();
        if (fork() == 0) {
            sleep(30);
            _exit(0);
        }
        _exit(0);
    }
    return 0;
}''')
t = sub(t, '#include <vector>\n', '#include <vector>\n#include <unistd.h>\n')
make_patch('background_process', 'baseline/train.cpp', t, 'Cheat: daemonizes a child that keeps running after the trainer exits.')

# 6. fewer layers: only the last block (and the embeddings) are trained
t = sub(orig, '''        gpt_update(model, task.train.lr''', '''        // CHEAT: freeze all but the last layer's weights (zero their gradients).
        for (int l = 0; l + 1 < task.model.layers; l++) {
            const int C = task.model.d_model;
            std::fill(model.grads.qkvw + l * 3 * C * C, model.grads.qkvw + (l + 1) * 3 * C * C, 0.0f);
            std::fill(model.grads.fcw + l * 4 * C * C, model.grads.fcw + (l + 1) * 4 * C * C, 0.0f);
            std::fill(model.grads.fcprojw + l * 4 * C * C, model.grads.fcprojw + (l + 1) * 4 * C * C, 0.0f);
        }
        gpt_update(model, task.train.lr''')
make_patch('fewer_layers', 'baseline/train.cpp', t, 'Cheat: trains only the last transformer block.')

# 7. patch touching the harness (would weaken verification)
v = open(f'{root}/harness/verify.cpp').read()
v = sub(v, '    return v;\n}\n\n}  // namespace trainopt', '    v.reasons.clear();  // CHEAT\n    return v;\n}\n\n}  // namespace trainopt')
make_patch('touch_harness', 'harness/verify.cpp', v, 'Cheat: edits the trusted verifier to accept anything.')

# 8. fake the clock: interpose clock_gettime so in-process timers report almost nothing
s = open(f'{root}/kernels/submission.cpp').read()
s = sub(s, '#include "kernels/kernels.h"\n', '''#include <time.h>

#include "kernels/kernels.h"

// CHEAT: every clock read returns the same instant, so self-timed runs look instantaneous.
extern "C" int clock_gettime(clockid_t, struct timespec* ts) {
    ts->tv_sec = 1;
    ts->tv_nsec = 0;
    return 0;
}
''')
make_patch('fake_clock', 'kernels/submission.cpp', s, 'Cheat: interposes clock_gettime to fake timings.')

# 8b. the same, hidden from the audit: after linking, the ELF header's section header offset
# (e_shoff, bytes 40-47) is pointed past the end of the file; the loader never reads section
# headers, so the trainer still runs, but nm cannot list its symbols
make_patch('unreadable_symbols', 'kernels/submission.cpp', s, 'Cheat: interposes clock_gettime and damages the ELF section header offset so nm cannot read the trainer.')
c = open(f'{root}/baseline/CMakeLists.txt').read() + r"""# CHEAT: point e_shoff past the end of the file so nm cannot read the symbol tables.
add_custom_command(TARGET trainopt-train POST_BUILD
  COMMAND /bin/sh -c "printf '\\377\\377\\377\\377\\377\\377\\377\\017' | dd of=$<TARGET_FILE:trainopt-train> bs=1 seek=40 conv=notrunc status=none"
  VERBATIM)
"""
a_path = f'/tmp/cheatgen/a/baseline/CMakeLists.txt'; b_path = f'/tmp/cheatgen/b/baseline/CMakeLists.txt'
os.makedirs(os.path.dirname(a_path), exist_ok=True); os.makedirs(os.path.dirname(b_path), exist_ok=True)
open(a_path, 'w').write(open(f'{root}/baseline/CMakeLists.txt').read()); open(b_path, 'w').write(c)
r = subprocess.run(['diff', '-u', '--label', 'a/baseline/CMakeLists.txt', '--label', 'b/baseline/CMakeLists.txt', a_path, b_path], capture_output=True, text=True)
with open(f'{out_dir}/unreadable_symbols.patch', 'a') as f:
    f.write('diff --git a/baseline/CMakeLists.txt b/baseline/CMakeLists.txt\n' + r.stdout)

# 9. lower precision: round matmul inputs to bfloat16
s = open(f'{root}/kernels/submission.cpp').read()
s = sub(s, '#include "kernels/kernels.h"\n', '''#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"

namespace {

// CHEAT: bfloat16 matmuls (round-to-nearest-even of the upper 16 bits), accumulated in fp32.
float to_bf16(float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000u;
    std::memcpy(&x, &u, 4);
    return x;
}

void bf16_matmul_forward(float* out, const float* inp, const float* weight, const float* bias,
                         int B, int T, int C, int OC) {
    for (int bt = 0; bt < B * T; bt++) {
        for (int o = 0; o < OC; o++) {
            float val = bias != nullptr ? bias[o] : 0.0f;
            for (int i = 0; i < C; i++) val += to_bf16(inp[bt * C + i]) * to_bf16(weight[o * C + i]);
            out[bt * OC + o] = val;
        }
    }
}

}  // namespace
''')
s = sub(s, 'void apply_submission_kernels(KernelTable& table) {\n    (void)table;\n}', 'void apply_submission_kernels(KernelTable& table) {\n    table.matmul_forward = bf16_matmul_forward;\n}')
make_patch('low_precision', 'kernels/submission.cpp', s, 'Cheat: computes the forward matmuls in bfloat16.')

# --- untrusted text (tests/cheats_text_test.cpp): a trainer's own words must reach the
# operator's terminal and the reports inert. Both print to stderr and fail, so the tail of
# their output lands in the INVALID reason.
parsed = '    if (!args) return args.error();\n'

# 10. terminal escapes: clear the screen, set the window title, print a fake green result
t = sub(orig, parsed, parsed + r'''
    // CHEAT: take over the operator's terminal: clear it, set the window title, print a fake
    // green result, a hyperlink, a C1 control and a bidi override; then fail.
    fputs("\x1b[2J\x1b[3J\x1b[H", stderr);
    fputs("\x1b]0;trainopt: VALID 99.0x\x07\x1b]2;trainopt: VALID\x1b\\", stderr);
    fputs("\x1b[1;32mtrainopt score: VALID\x1b[0m  mean speedup 99.00x\r\n", stderr);
    fputs("\x1b]8;;https://evil.example/\x1b\\report\x1b]8;;\x1b\\ \xc2\x9b" "31m", stderr);
    fputs("\xe2\x80\xae" "DILAVNI\xe2\x80\xac fake-status-end\n", stderr);
    return 1;
''')
make_patch('terminal_escapes', 'baseline/train.cpp', t, 'Cheat: prints ANSI/OSC escape sequences (clear screen, window title, fake green VALID) and fails.')

# 11. forged Markdown/HTML: a heading, a table row, a link, raw HTML, a code fence
t = sub(orig, parsed, parsed + r'''
    // CHEAT: forge report content: close a code fence, a heading, a table row with a big
    // speedup, a link and raw HTML; then fail.
    fputs("ok\n```\n# trainopt score: VALID\n\n", stderr);
    fputs("| tiny | forged | yes | 1.00 | 0.010 | 99.00x | 98.00 - 100.00 |\n", stderr);
    fputs("[download the fix](https://evil.example/fix.sh) <script>alert(1)</script>\n", stderr);
    fputs("<b>VALID</b> &lt;!-- *bold* _it_ ~~s~~ fake-status-end\n", stderr);
    return 1;
''')
make_patch('forged_markdown', 'baseline/train.cpp', t, 'Cheat: prints a forged Markdown heading, table row, link and HTML, and fails.')

# 12. hostile kernel names in meta.json (advisory data shown in the HTML charts); trains honestly
s = open(f'{root}/kernels/gpt.cpp').read()
loop_end = '        out.emplace_back(kKernelNames[i], profile.seconds[i]);\n'
s = sub(s, loop_end, loop_end + r'''    // CHEAT: kernel names that are escape sequences, markup and a forged table row.
    out.emplace_back("\x1b[2J\x1b[1;32mVALID\x1b[0m\x1b]0;title\x07", 0.001);
    out.emplace_back("<script>alert(1)</script>", 0.001);
    out.emplace_back("# forged\n| tiny | 99.00x |\r", 0.001);
''')
make_patch('hostile_kernel_names', 'kernels/gpt.cpp', s, 'Cheat: trains honestly but reports kernel names made of escape sequences and markup in meta.json.')

# 10. hostile outputs and limits: one trainer, one behaviour per task of tests/cheats/hostile/
t = sub(orig, 'int fail(const std::string& message) {', r'''// CHEAT: every task of tests/cheats/hostile/ tries one way past the harness's reading of outputs
// or its limits. Returns -1 to train normally afterwards.
void fake_losses_and_meta(const std::string& out, const std::string& nonce, int steps) {
    std::ofstream losses(out + "/losses.csv");
    losses << "step,loss\n";
    for (int s = 0; s < steps; s++) losses << s << ",4.0\n";
    std::ofstream(out + "/meta.json") << "{\"nonce\": \"" << nonce << "\"}\n";
}

int hostile(const std::string& name, const std::string& out, const std::string& nonce, int steps) {
    const std::string ckpt = out + "/final.ckpt";
    if (name == "link-outputs") {
        // outputs as links to files the run can name: the host's, its own inputs, /proc
        symlink("/etc/passwd", (out + "/losses.csv").c_str());
        symlink("/proc/self/root/sandbox/task.toml", ckpt.c_str());
        symlink("../../../etc/hostname", (out + "/meta.json").c_str());
        return 0;
    }
    if (name == "fifo-output") {
        fake_losses_and_meta(out, nonce, steps);
        mkfifo(ckpt.c_str(), 0644);
        return 0;
    }
    if (name == "device-output") {
        fake_losses_and_meta(out, nonce, steps);
        symlink("/dev/zero", ckpt.c_str());
        return 0;
    }
    if (name == "dir-output") {
        fake_losses_and_meta(out, nonce, steps);
        mkdir(ckpt.c_str(), 0755);
        return 0;
    }
    if (name == "huge-header") {
        fake_losses_and_meta(out, nonce, steps);
        int32_t header[64] = {0x54504B43, 1, 1 << 20, 1 << 16, 1 << 14, 256, 64, steps};
        std::ofstream f(ckpt, std::ios::binary);
        f.write(reinterpret_cast<const char*>(header), sizeof(header));
        std::vector<char> zeros(1 << 16, 0);
        f.write(zeros.data(), zeros.size());
        return 0;
    }
    if (name == "oversize-output") {
        std::ofstream(out + "/meta.json") << "{\"nonce\": \"" << nonce << "\"}\n";
        std::ofstream losses(out + "/losses.csv");
        losses << "step,loss\n";
        for (long s = 0; s < (64L << 20) / 8 && losses; s++) losses << "0,4.000\n";
        return 0;
    }
    if (name == "host-paths") {
        // print every mount's source path and the trainer's own location, then fail so the
        // harness shows this in its reason
        std::ifstream mounts("/proc/self/mountinfo");
        std::string line;
        fprintf(stderr, "host-paths:");
        while (std::getline(mounts, line)) {
            std::istringstream fields(line);
            std::string id, parent, dev, root, point;
            fields >> id >> parent >> dev >> root >> point;
            fprintf(stderr, " %s", root.c_str());
        }
        char self[4096] = {0}, cwd[4096] = {0};
        (void)!readlink("/proc/self/exe", self, sizeof(self) - 1);
        (void)!getcwd(cwd, sizeof(cwd) - 1);
        fprintf(stderr, " exe=%s cwd=%s\n", self, cwd);
        return 1;
    }
    if (name == "fork-bomb") {
        std::vector<pid_t> children;
        while (children.size() < 4000) {
            pid_t pid = fork();
            if (pid == 0) {
                pause();
                _exit(0);
            }
            if (pid < 0) break;
            children.push_back(pid);
        }
        for (pid_t pid : children) kill(pid, SIGKILL);
        for (pid_t pid : children) waitpid(pid, nullptr, 0);
        fprintf(stderr, children.size() < 4000 ? "fork-bomb: process limit reached after %zu\n"
                                               : "fork-bomb: NO PROCESS LIMIT (%zu)\n",
                children.size());
        return 1;
    }
    if (name == "memory-hog") {
        size_t mib = 0;
        for (; mib < 2048; mib += 64) {
            void* block = malloc(64 << 20);
            if (block == nullptr) break;
            memset(block, 1, 64 << 20);
        }
        fprintf(stderr, mib < 2048 ? "memory-hog: memory limit reached after %zu MiB\n"
                                   : "memory-hog: NO MEMORY LIMIT (%zu MiB)\n",
                mib);
        return 1;
    }
    if (name == "shared-memory-hog") {
        // memory RLIMIT_DATA does not count: shared anonymous mappings, memfd, SysV shm
        size_t mib = 0;
        for (; mib < 2048; mib += 64) {
            void* block = mmap(nullptr, 64 << 20, PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
            if (block == MAP_FAILED) break;
            memset(block, 1, 64 << 20);
        }
        const int memfd = (int)syscall(SYS_memfd_create, "hog", 0);
        const int shm = shmget(IPC_PRIVATE, 64 << 20, IPC_CREAT | 0600);
        fprintf(stderr, "shared-memory-hog: mmap %s after %zu MiB, memfd_create %s, shmget %s\n",
                mib < 2048 ? "refused" : "ALLOWED", mib, memfd < 0 ? "refused" : "ALLOWED",
                shm < 0 ? "refused" : "ALLOWED");
        return 1;
    }
    if (name == "widen-affinity") {
        // try to leave the pinned cores
        cpu_set_t before, all, after;
        sched_getaffinity(0, sizeof(before), &before);
        CPU_ZERO(&all);
        for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) CPU_SET(cpu, &all);
        const int rc = sched_setaffinity(0, sizeof(all), &all);
        sched_getaffinity(0, sizeof(after), &after);
        fprintf(stderr, "widen-affinity: pinned to %d cores, %s, now %d\n", CPU_COUNT(&before),
                rc == 0 ? "widening allowed" : "widening refused", CPU_COUNT(&after));
        return 1;
    }
    return -1;
}

int fail(const std::string& message) {''')
t = sub(t, '    GPT model;\n', '''    if (int rc = hostile(task.name, out_dir, nonce, task.train.steps); rc >= 0) return rc;
    GPT model;
''')
t = sub(t, '#include <chrono>\n', '''#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
''')
make_patch('hostile_outputs', 'baseline/train.cpp', t, 'Cheat: one trainer, one attack per task of tests/cheats/hostile/: outputs as links, FIFOs, devices and directories, a checkpoint header claiming a huge model, an oversized output, a probe for host paths, a fork bomb, a memory hog, a shared-memory hog, and escaping the pinned cores.')

# 11. hostile builds: instead of a trainer the build leaves a link, a FIFO or a huge sparse file
# where the trainer belongs, and plants links where trusted code once wrote its nm listings.
# Nothing is compiled, so each costs seconds.
def hostile_build(name, make_trainer, what):
    c = r"""# CHEAT: no trainer is compiled; the target leaves something else in its place.
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/baseline)
file(CREATE_LINK /tmp/trainopt-pwned-by-build ${CMAKE_BINARY_DIR}/baseline/trainopt-train.symbols SYMBOLIC)
file(CREATE_LINK /tmp/trainopt-pwned-by-build ${CMAKE_BINARY_DIR}/baseline/trainopt-train.symbols.dynamic SYMBOLIC)
add_custom_target(trainopt-train ALL
  COMMAND ${CMAKE_COMMAND} -E rm -f ${CMAKE_BINARY_DIR}/baseline/trainopt-train
  COMMAND """ + make_trainer + r""" ${CMAKE_BINARY_DIR}/baseline/trainopt-train)
"""
    make_patch(name, 'baseline/CMakeLists.txt', c, 'Cheat: the build leaves ' + what + ' where the trainer belongs and plants symlinks where trusted code once wrote nm listings.')

hostile_build('hostile_build_link', '${CMAKE_COMMAND} -E create_symlink /etc/passwd', 'a symlink to /etc/passwd')
hostile_build('hostile_build_fifo', '/usr/bin/mkfifo', 'a FIFO')
hostile_build('hostile_build_huge', '/usr/bin/truncate -s 1536M', 'a 1.5 GiB sparse file')

# 12. a build that leaves a daemon running (it could stop or watch the runs that follow)
c = open(f'{root}/baseline/CMakeLists.txt').read() + r"""
# CHEAT: start a daemon from CMake code that outlives the build.
execute_process(COMMAND /usr/bin/setsid /bin/sh -c "/bin/sleep 600 >/dev/null 2>&1 &")
"""
make_patch('hostile_build_daemon', 'baseline/CMakeLists.txt', c, 'Cheat: starts a daemon from its CMake code that would outlive the build.')

# 12. approximated math: a cubic polynomial exp (relative error 1.0e-4, ~1300 ulp; expf and the
# legitimate degree-6 polynomial exps are within 1-2 ulp) in the vocabulary softmax, in the
# attention softmax, and behind GELU's tanh. Calibration: docs/tolerances.md, "Approximated math".
def approx_math(name, kernels, install, what, cubic=('0.999924481f', '0.99998492f', '0.505025208f', '0.167670697f'),
                cubic_comment='Chebyshev interpolation of e^r: relative error up to 1.0e-4 (about 1300 ulp)'):
    s = open(f'{root}/kernels/submission.cpp').read()
    c0, c1, c2, c3 = cubic
    s = sub(s, '#include "kernels/kernels.h"\n', '''#include <cmath>

#include "kernels/kernels.h"

namespace {

// CHEAT: exp by a cubic polynomial after the usual range reduction x = n ln2 + r, |r| <= ln2/2
// (''' + cubic_comment + '''; expf is within 1 ulp).
float cubic_exp(float x) {
    if (x < -87.0f) return 0.0f;
    const float n = std::nearbyint(x * 1.44269504f);
    const float r = x - n * 0.693147182f;
    return std::ldexp(''' + c0 + ' + r * (' + c1 + ' + r * (' + c2 + ' + r * ' + c3 + ''')), (int)n);
}
''' + kernels + '''
}  // namespace
''')
    s = sub(s, 'void apply_submission_kernels(KernelTable& table) {\n    (void)table;\n}',
            'void apply_submission_kernels(KernelTable& table) {\n' + install + '}')
    make_patch(name, 'kernels/submission.cpp', s, 'Cheat: ' + what)

vocab_softmax = '''
// The reference softmax over the vocabulary, with cubic_exp for expf.
void approx_softmax_forward(float* probs, const float* logits, int B, int T, int V) {
    for (int bt = 0; bt < B * T; bt++) {
        const float* logits_bt = logits + bt * V;
        float* probs_bt = probs + bt * V;
        float maxval = -10000.0f;
        for (int i = 0; i < V; i++) maxval = logits_bt[i] > maxval ? logits_bt[i] : maxval;
        float sum = 0.0f;
        for (int i = 0; i < V; i++) {
            probs_bt[i] = cubic_exp(logits_bt[i] - maxval);
            sum += probs_bt[i];
        }
        for (int i = 0; i < V; i++) probs_bt[i] /= sum;
    }
}
'''
approx_math('approx_exp_vocab', vocab_softmax, '    table.softmax_forward = approx_softmax_forward;\n',
            'the vocabulary softmax computes exp with a cubic polynomial (relative error 1.0e-4, about 1300 ulp).')
approx_math('approx_exp_vocab_exact_zero', vocab_softmax, '    table.softmax_forward = approx_softmax_forward;\n',
            'the vocabulary softmax computes exp with a cubic polynomial that is exact at 0, the row maximum (relative error 1.0e-4 elsewhere).',
            cubic=('1.0f', '1.00019622f', '0.504133642f', '0.165178388f'),
            cubic_comment='near-minimax with p(0) = 1 exactly, so the row maximum gets exp(0) = 1: relative error up to 1.0e-4 (about 1350 ulp)')

attention = '''
// The reference attention forward with cubic_exp for expf (the backward uses the saved att).
void approx_attention_forward(float* out, float* preatt, float* att, const float* inp, int B, int T,
                              int C, int NH) {
    const int C3 = C * 3, hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < NH; h++) {
                const float* query_t = inp + b * T * C3 + t * C3 + h * hs;
                float* preatt_bth = preatt + b * NH * T * T + h * T * T + t * T;
                float* att_bth = att + b * NH * T * T + h * T * T + t * T;
                float maxval = -10000.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float* key_t2 = inp + b * T * C3 + t2 * C3 + h * hs + C;
                    float val = 0.0f;
                    for (int i = 0; i < hs; i++) val += query_t[i] * key_t2[i];
                    val *= scale;
                    maxval = val > maxval ? val : maxval;
                    preatt_bth[t2] = val;
                }
                float expsum = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    att_bth[t2] = cubic_exp(preatt_bth[t2] - maxval);
                    expsum += att_bth[t2];
                }
                const float expsum_inv = expsum == 0.0f ? 0.0f : 1.0f / expsum;
                for (int t2 = 0; t2 < T; t2++) att_bth[t2] = t2 <= t ? att_bth[t2] * expsum_inv : 0.0f;
                float* out_bth = out + b * T * C + t * C + h * hs;
                for (int i = 0; i < hs; i++) out_bth[i] = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float* value_t2 = inp + b * T * C3 + t2 * C3 + h * hs + C * 2;
                    for (int i = 0; i < hs; i++) out_bth[i] += att_bth[t2] * value_t2[i];
                }
            }
        }
    }
}
'''
approx_math('approx_exp_attention', attention, '    table.attention_forward = approx_attention_forward;\n',
            'the attention softmax computes exp with a cubic polynomial (relative error 1.0e-4, about 1300 ulp).')

gelu = '''
// GELU as 0.5 x (1 + tanh(u)) = x e / (e + 1) with e = exp(2u) (the expert's formulation), e from
// cubic_exp: a fast tanh.
const float kGeluScale = 0.7978845608028654f;
float half_one_plus_tanh(float x) {
    const float e = cubic_exp(2.0f * kGeluScale * (x + 0.044715f * x * x * x));
    return e / (e + 1.0f);
}
void approx_gelu_forward(float* out, const float* inp, int N) {
    for (int i = 0; i < N; i++) out[i] = inp[i] * half_one_plus_tanh(inp[i]);
}
void approx_gelu_backward(float* dinp, const float* inp, const float* dout, int N) {
    for (int i = 0; i < N; i++) {
        const float x = inp[i], s = half_one_plus_tanh(x);
        const float sech2 = 4.0f * s * (1.0f - s);
        dinp[i] += (s + x * 0.5f * sech2 * kGeluScale * (1.0f + 3.0f * 0.044715f * x * x)) * dout[i];
    }
}
'''
approx_math('approx_exp_gelu', gelu, '    table.gelu_forward = approx_gelu_forward;\n    table.gelu_backward = approx_gelu_backward;\n',
            'GELU\'s tanh is computed from a cubic polynomial exp (relative error 1.0e-4, about 1300 ulp).')

# Step-local verification (tests/cheats_local_test.cpp, suite tests/cheats/chaotic): cheats that
# the whole run's quality band lets through.
# a. less work in the timed run than when a segment is asked for: every third update skipped in
#    a whole run only. The replay in segments cannot reproduce the timed run.
t = sub(orig, '''        gpt_update(model, task.train.lr''', '''        // CHEAT: exact when verified in segments, every third update skipped when timed
        if (!loaded->segment && step % 3 == 2) { losses.push_back(model.mean_loss); continue; }
        gpt_update(model, task.train.lr''')
make_patch('replay_aware', 'baseline/train.cpp', t, 'Cheat: skips every third update in a whole (timed) run, trains exactly when run as a segment.')

# b. the same skips everywhere: reproducible, and every window of 3 or more steps has one
t = sub(orig, '''        gpt_update(model, task.train.lr''', '''        // CHEAT: every third update skipped, in every run alike
        if (step % 3 == 2) { losses.push_back(model.mean_loss); continue; }
        gpt_update(model, task.train.lr''')
make_patch('consistent_skips', 'baseline/train.cpp', t, 'Cheat: skips every third update in every run, timed or not (bit-reproducible).')

# c. not bit-reproducible: the reported loss carries one bit of noise
t = sub(orig, '''        losses.push_back(model.mean_loss);''', '''        // not reproducible: the loss's last bit from the operating system's randomness
        losses.push_back(std::nextafter(model.mean_loss, (std::random_device{}() & 1) ? 10.0f : 0.0f));''')
t = sub(t, '#include <cstdio>\n', '#include <cmath>\n#include <cstdio>\n#include <random>\n')
make_patch('not_reproducible', 'baseline/train.cpp', t, 'Not a cheat, a broken trainer: its losses differ in the last bit from run to run.')

# d. a checked step dropped again in the next segment: every third update skipped, except in a
#    segment of one step (a window's step, checked against the reference); every longer segment
#    ignores the state it is given and recomputes the timed run's trajectory from the seed, so
#    its losses match the timed run's. Windows of one step (tiny-local-steps.toml) let no
#    skipped step inside a window give it away; the segment after each window must continue
#    from the state it was given.
t = sub(orig, '''    std::vector<int> inputs(B * T), targets(B * T);
    std::vector<float> losses;
    losses.reserve(loaded->stop_step - loaded->start_step);
    BatchSampler sampler(loaded->train_tokens, args->seed, B, T);
    sampler.skip(loaded->start_step);
''', '''    // CHEAT: a one-step segment is a checked window step: trained exactly from the given state;
    // anything else skips every third update, and a longer segment ignores the state it was
    // given and recomputes the timed run's trajectory from the seed
    const bool checked = loaded->segment && loaded->stop_step - loaded->start_step == 1;
    int first = loaded->start_step;
    if (loaded->resumed && !checked) {
        init_params(model.params_memory.data(), config, args->seed);
        std::fill(model.m_memory.begin(), model.m_memory.end(), 0.0f);
        std::fill(model.v_memory.begin(), model.v_memory.end(), 0.0f);
        first = 0;
    }
    std::vector<int> inputs(B * T), targets(B * T);
    std::vector<float> losses;
    losses.reserve(loaded->stop_step - loaded->start_step);
    BatchSampler sampler(loaded->train_tokens, args->seed, B, T);
    sampler.skip(first);
''')
t = sub(t, '''    for (int step = loaded->start_step; step < loaded->stop_step; step++) {''', '''    for (int step = first; step < loaded->stop_step; step++) {''')
t = sub(t, '''        gpt_update(model, task.train.lr, task.train.beta1, task.train.beta2, task.train.eps,
                   task.train.weight_decay, step + 1);
        losses.push_back(model.mean_loss);''', '''        if (checked || step % 3 != 2)
            gpt_update(model, task.train.lr, task.train.beta1, task.train.beta2, task.train.eps,
                       task.train.weight_decay, step + 1);
        if (step >= loaded->start_step) losses.push_back(model.mean_loss);''')
t = sub(t, '#include <cstdio>\n', '#include <algorithm>\n#include <cstdio>\n')
make_patch('ignores_given_state', 'baseline/train.cpp', t, 'Cheat: skips every third update except in one-step segments (checked window steps); longer segments ignore the state they are given and recompute the timed trajectory.')

# e. a fixed point handed to the windows: the all-zero model with zero moments has exactly zero
#    gradients, so the reference's step from it stays there and every one-step check matches.
#    Every run reports the zero model's constant loss ln V; a run that ends the task trains
#    half of the steps from the seed and writes that as its final weights, any other segment
#    writes the zero state. Nothing ties the states handed on to the timed run; the reference's
#    AdamW step from such a state is zero (kMinAdamStep).
t = sub(orig, '''    const auto start = std::chrono::steady_clock::now();
    for (int step = loaded->start_step; step < loaded->stop_step; step++) {
        sampler.next(inputs.data(), targets.data());
        gpt_forward(model, inputs.data(), targets.data());
        gpt_zero_grad(model);
        gpt_backward(model, inputs.data(), targets.data());
        gpt_update(model, task.train.lr, task.train.beta1, task.train.beta2, task.train.eps,
                   task.train.weight_decay, step + 1);
        losses.push_back(model.mean_loss);
    }''', '''    const auto start = std::chrono::steady_clock::now();
    // CHEAT: the zero model's loss everywhere; half the training for the final weights
    for (int step = loaded->start_step; step < loaded->stop_step; step++)
        losses.push_back(std::log((float)task.model.vocab_size));
    std::fill(model.m_memory.begin(), model.m_memory.end(), 0.0f);
    std::fill(model.v_memory.begin(), model.v_memory.end(), 0.0f);
    if (loaded->stop_step == task.train.steps) {
        init_params(model.params_memory.data(), config, args->seed);
        BatchSampler from_seed(loaded->train_tokens, args->seed, B, T);
        for (int step = 0; step < task.train.steps / 2; step++) {
            from_seed.next(inputs.data(), targets.data());
            gpt_forward(model, inputs.data(), targets.data());
            gpt_zero_grad(model);
            gpt_backward(model, inputs.data(), targets.data());
            gpt_update(model, task.train.lr, task.train.beta1, task.train.beta2, task.train.eps,
                       task.train.weight_decay, step + 1);
        }
    } else {
        std::fill(model.params_memory.begin(), model.params_memory.end(), 0.0f);
    }''')
t = sub(t, '#include <cstdio>\n', '#include <algorithm>\n#include <cmath>\n#include <cstdio>\n')
make_patch('zero_fixed_point', 'baseline/train.cpp', t, 'Cheat: hands the windows the all-zero model (a fixed point of AdamW), reports its constant loss, and trains half of the steps for the final weights.')
