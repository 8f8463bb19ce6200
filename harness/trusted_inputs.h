// Trusted inputs: the files a score rests on that live outside the trainopt binary — the
// pristine trainer tree (CMakeLists.txt, baseline/, kernels/, tasks/), the baseline trainer
// binary and trainopt-sandbox-init. Their SHA-256 hashes are computed at build time and compiled
// into trainopt together with the built-in task suites and the agent-facing workspace documents,
// so an edit of any of them after the build (e.g. a loose [tolerances] table appended to a task
// file, a slower baseline trainer) makes trainopt refuse to run instead of scoring against it.
//
// trainopt finds them next to its own executable: in its build tree (development: the source
// tree and the build directory it was compiled from) or in an install prefix P
// (`cmake --install build --prefix P`: P/share/trainopt/pristine and P/libexec/trainopt).
// See docs/security.md for the evaluation flow that makes the install unwritable to an agent.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "contract/result.h"
#include "tasks/sha256.h"  // sha256_hex, with which the trusted inputs are hashed
#include "tasks/task_spec.h"

namespace trainopt {

// A file compiled into trainopt at build time.
struct EmbeddedFile {
    const char* path;  // relative: "default/small.toml" (tasks), "docs/kernel-api.md" (docs)
    const unsigned char* data;
    size_t size;
    std::string_view text() const { return {reinterpret_cast<const char*>(data), size}; }
};

struct TrustedInputs {
    bool installed = false;        // false: trainopt runs from its build tree (development)
    std::string prefix;            // install prefix, or the build directory
    std::string pristine_root;     // holds CMakeLists.txt, baseline/, kernels/, tasks/
    std::string baseline_trainer;  // the pristine baseline trainopt-train
    std::string sandbox_init;      // trainopt-sandbox-init
    // An install that users other than root could change (not owned by root, or group- or
    // world-writable): it still runs, but such a score is not an official one. For reports.
    std::vector<std::string> warnings;
};

// Finds the trusted inputs of the trainopt executable at `exe` (empty: this process's own,
// /proc/self/exe). Does not check them; see verify_trusted_inputs.
Result<TrustedInputs> locate_trusted_inputs(const std::string& exe = "");

// Hashes every trusted input (without following symlinks) and compares it with the manifest
// compiled in at build time. Fails unless all match, with one line per problem naming the
// file, e.g. "trusted input changed since the build: P/.../tiny.toml (expected sha256 ..., found
// ...); reinstall trainopt".
Status verify_trusted_inputs(const TrustedInputs& inputs);

// One SHA-256 over the manifest compiled into trainopt: every pristine file's path and hash, the
// baseline trainer's and trainopt-sandbox-init's hash. What this trainopt was built to score
// against, in one value (part of the build cache's key, harness/build_cache.h).
std::string trusted_manifest_digest();

// locate_trusted_inputs, then verify_trusted_inputs.
Result<TrustedInputs> load_trusted_inputs(const std::string& exe = "");

// Names of the suites compiled into trainopt (the subfolders of tasks/ at build time), sorted.
std::vector<std::string> builtin_suite_names();

struct ScoringSuite {
    Suite suite;
    bool builtin = false;  // false: the user's own task files, not an official score
};

// Loads the suite to score on. A built-in suite name (no '/') loads the task files compiled into
// trainopt (builtin; each task's `file`, which the trainer reads, is the verified copy under
// inputs.pristine_root/tasks). Anything else must be a directory of the user's own task files,
// read from disk (not builtin).
Result<ScoringSuite> load_scoring_suite(const TrustedInputs& inputs,
                                        const std::string& name_or_dir);

// The agent-facing documents `trainopt workspace init` writes, paths relative to the workspace:
// TASK.md, docs/writing-a-submission.md, docs/task-format.md, docs/kernel-api.md.
std::vector<EmbeddedFile> workspace_documents();

// The placeholder in the workspace documents (TASK.md) that `trainopt workspace init` replaces
// with the command that runs the trainopt creating the workspace, so the documents give the
// exact command whatever the agent's PATH holds.
constexpr std::string_view kTrainoptPlaceholder = "@TRAINOPT@";

// A workspace document's text with every kTrainoptPlaceholder replaced by `trainopt_command`.
std::string workspace_document_text(const EmbeddedFile& doc, const std::string& trainopt_command);

// `text` as one word of a POSIX shell: as it is when it holds only letters, digits and
// "/._+-", else single-quoted with ' written as '\''.
std::string shell_word(const std::string& text);

// The running trainopt as one shell word: its absolute path (/proc/self/exe), single-quoted
// when it holds anything but letters, digits and "/._+-"; "trainopt" when it cannot be found.
std::string own_command();

// The task files compiled into trainopt, paths relative to tasks/ ("default/small.toml").
std::vector<EmbeddedFile> builtin_task_files();

}  // namespace trainopt
