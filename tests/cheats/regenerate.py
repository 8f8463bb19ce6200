# Regenerates the cheat patches in tests/cheats/ from the current pristine sources.
# Run after changing baseline/train.cpp, kernels/submission.cpp or harness/verify.cpp.
import subprocess, os
root = '/work/main'
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
t = sub(t, '    return 0;\n}', '''    std::filesystem::create_directories(cache, ec);
    for (const char* f : {"/losses.csv", "/final.ckpt"})
        std::filesystem::copy_file(out_dir + f, cache + f, std::filesystem::copy_options::overwrite_existing, ec);
    return 0;
}''')
t = sub(t, '#include <filesystem>\n', '#include <filesystem>\n#include <fstream>\n')
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
t = sub(t, '#include <filesystem>\n', '#include <filesystem>\n#include <fstream>\n')
make_patch('copy_reference', 'baseline/train.cpp', t, 'Cheat: searches the file system for the baseline run\'s final.ckpt and copies it.')

# 3. exit early with success: no training, made-up losses
t = sub(orig, '    for (int step = 0; step < task.train.steps; step++) {\n        sampler.next', '''    // CHEAT: skip training entirely and report a plausible-looking loss curve.
    for (int step = 0; step < task.train.steps; step++) losses[step] = 4.0f - 0.01f * step;
    for (int step = 0; step < 0; step++) {
        sampler.next''')
make_patch('early_exit', 'baseline/train.cpp', t, 'Cheat: exits with success without training, printing a made-up loss curve.')

# 4. skip steps: only every other step does an update; the loss is reported for all
t = sub(orig, '''        gpt_update(model, task.train.lr''', '''        if (step % 2 == 1) { losses[step] = model.mean_loss; continue; }  // CHEAT: skip half the updates
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
v = sub(v, '    v.valid = v.reasons.empty();', '    v.reasons.clear();  // CHEAT\n    v.valid = v.reasons.empty();')
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
