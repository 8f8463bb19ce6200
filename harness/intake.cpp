#include "harness/intake.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "harness/process.h"
#include "harness/safe_file.h"
#include "harness/sandbox.h"
#include "harness/sandbox_protocol.h"

namespace trainopt {

namespace fs = std::filesystem;

const char* const kEditableRoots[2] = {"baseline", "kernels"};
const char* const kTrainerTreeEntries[5] = {"CMakeLists.txt", "baseline", "contract", "kernels",
                                            "tasks"};
const char* const kWorkspaceMarker = ".trainopt-workspace";

std::string to_string(SubmissionKind kind) {
    switch (kind) {
        case SubmissionKind::patch:
            return "patch";
        case SubmissionKind::overlay:
            return "overlay";
        case SubmissionKind::workspace:
            return "workspace";
    }
    return "?";
}

namespace {

constexpr size_t kMaxSubmissionFileBytes = (size_t)16 << 20;

// A file of the submission (or of a tree it wrote): beneath `root`, no link followed, regular,
// at most 16 MiB.
Result<std::string> read_untrusted(const fs::path& root, const std::string& relative) {
    return read_file_beneath(root.string(), relative, {kMaxSubmissionFileBytes, 30});
}

// A file of the pristine tree.
Result<std::string> read_pristine(const fs::path& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return failure("cannot read " + path.string());
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// Whether the untrusted file ROOT/RELATIVE is readable and holds exactly what the pristine
// file PRISTINE_ROOT/RELATIVE holds.
bool same_as_pristine(const fs::path& root, const std::string& relative,
                      const std::string& pristine_root) {
    Result<std::string> ours = read_untrusted(root, relative);
    Result<std::string> theirs = read_pristine(fs::path(pristine_root) / relative);
    return ours && theirs && *ours == *theirs;
}

bool is_editable_top(const std::string& first_component) {
    for (const char* root : kEditableRoots) {
        if (first_component == root) return true;
    }
    return false;
}

// Directories a workspace may contain that are not part of the submission.
bool is_ignored_workspace_entry(const std::string& name) {
    return name == ".git" || name == kWorkspaceMarker || name == "TASK.md" || name == "docs" ||
           name.rfind("build", 0) == 0;
}

// What every refusal of a submission that changes nothing starts with.
constexpr const char* kChangesNothing = "the submission changes nothing: ";

// Strips the "a/" or "b/" prefix git puts on diff paths (and surrounding quotes).
std::string strip_diff_prefix(std::string path) {
    if (path.size() >= 2 && path.front() == '"' && path.back() == '"')
        path = path.substr(1, path.size() - 2);
    size_t tab = path.find('\t');
    if (tab != std::string::npos) path = path.substr(0, tab);
    if (path.rfind("a/", 0) == 0 || path.rfind("b/", 0) == 0) return path.substr(2);
    return path;
}

// Header-level checks of a unified diff; the patch is applied only when they find no problem.
std::vector<std::string> check_patch_headers(const std::string& text) {
    std::vector<std::string> problems;
    std::istringstream in(text);
    std::string line;
    int line_no = 0;
    bool any_file = false;
    auto path_problem = [&](const std::string& raw) {
        if (raw == "/dev/null") return;
        any_file = true;
        if (Status allowed = check_editable_path(strip_diff_prefix(raw)); !allowed)
            problems.push_back("line " + std::to_string(line_no) + ": " + allowed.error());
    };
    while (std::getline(in, line)) {
        line_no++;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto starts = [&](const char* prefix) { return line.rfind(prefix, 0) == 0; };
        if (starts("diff --git ")) {
            // both names of the header, also for a change that has no ---/+++ lines
            const std::string rest = line.substr(11);
            const size_t split = rest.find(" b/");
            if (split == std::string::npos) {
                problems.push_back("line " + std::to_string(line_no) +
                                   ": a diff --git header without a b/ path");
            } else {
                path_problem(rest.substr(0, split));
                path_problem(rest.substr(split + 1));
            }
        } else if (starts("--- ")) {
            path_problem(line.substr(4));
        } else if (starts("+++ ")) {
            path_problem(line.substr(4));
        } else if (starts("rename from ") || starts("rename to ") || starts("copy from ") ||
                   starts("copy to ")) {
            problems.push_back("line " + std::to_string(line_no) +
                               ": renames and copies are not accepted; send the new file in full");
        } else if (starts("old mode ") || starts("new mode ")) {
            problems.push_back("line " + std::to_string(line_no) +
                               ": mode changes are not accepted (" + line + ")");
        } else if (starts("new file mode ") || starts("deleted file mode ")) {
            std::string mode = line.substr(line.rfind(' ') + 1);
            if (mode == "120000") {
                problems.push_back("line " + std::to_string(line_no) +
                                   ": symlinks are not accepted (" + line + ")");
            } else if (mode != "100644") {
                problems.push_back("line " + std::to_string(line_no) +
                                   ": only regular non-executable files (mode 100644) are "
                                   "accepted (" +
                                   line + ")");
            }
        } else if (starts("GIT binary patch") ||
                   (starts("Binary files ") && line.find(" differ") != std::string::npos)) {
            problems.push_back("line " + std::to_string(line_no) +
                               ": binary patches are not accepted");
        }
    }
    if (!any_file && problems.empty())
        problems.push_back("the patch names no files (is it a unified diff?)");
    return problems;
}

// git must not read configuration, attributes or a repository the harness does not control:
// a planted $HOME/.gitconfig or /tmp/.git could otherwise run filters as the harness's user.
std::vector<std::string> git_environment(const std::string& home, const std::string& ceiling) {
    std::vector<std::string> env = sandbox_environment();
    for (std::string& kv : env) {
        if (kv.rfind("HOME=", 0) == 0) kv = "HOME=" + home;
    }
    env.insert(env.end(),
               {"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_ATTR_NOSYSTEM=1",
                "XDG_CONFIG_HOME=" + home, "GIT_CEILING_DIRECTORIES=" + ceiling});
    return env;
}

// The patch file's text, read without following links; text only (no NUL bytes).
Result<std::string> read_patch(const Submission& submission) {
    const fs::path patch = fs::absolute(submission.path);
    Result<std::string> text = read_file_beneath(
        patch.parent_path().string(), patch.filename().string(), {kMaxSubmissionFileBytes, 30});
    if (!text) return failure("cannot read the patch: " + text.error());
    if (text->find('\0') != std::string::npos)
        return failure("the patch file contains NUL bytes: binary content is not accepted");
    return text;
}

// Applies the patch (read and its headers checked first; git never opens the submission's path,
// so nothing can be swapped in after the checks). Sandboxed, git runs as the untrusted user on the
// scratch tree at /sandbox/src; without the sandbox, as the harness's user with the environment
// above. Returns the problems that refuse it.
std::vector<std::string> apply_patch(const Submission& submission, const std::string& scratch,
                                     SandboxMode mode) {
    Result<std::string> text = read_patch(submission);
    if (!text) return {text.error()};
    if (text->find_first_not_of(" \t\r\n") == std::string::npos)
        return {std::string(kChangesNothing) + "the patch is empty"};
    std::vector<std::string> problems = check_patch_headers(*text);
    if (!problems.empty()) return problems;

    const std::string outside = fs::path(scratch).parent_path().string();
    const std::string copy = outside + "/submission.patch";
    const std::string log = outside + "/git-apply.log";
    {
        std::ofstream out(copy, std::ios::binary | std::ios::trunc);
        out << *text;
        if (!out) return {"cannot keep a private copy of the patch in " + outside};
    }
    // git apply outside a repository behaves like patch(1), with stricter parsing; it refuses
    // paths through symlinks and outside the working directory.
    const bool boxed = mode == SandboxMode::bubblewrap;
    SandboxSpec sandbox;
    sandbox.mode = mode;
    SpawnSpec spec;
    if (boxed) {
        if (Status given = give_tree_to_untrusted_user(scratch); !given) return {given.error()};
        sandbox.mounts = {{scratch, kSandboxSource, true},
                          {copy, "/sandbox/submission.patch", false}};
        sandbox.cwd = kSandboxSource;
        sandbox.command = {"/usr/bin/git", "apply", "--whitespace=nowarn", "--verbose",
                           "/sandbox/submission.patch"};
        spec.env = git_environment("/tmp", "/sandbox");
        spec.run_as_uid = untrusted_uid();
    } else {
        sandbox.command = {"/usr/bin/git", "apply", "--whitespace=nowarn", "--verbose", copy};
        spec.env = git_environment(outside, outside);
    }
    spec.argv = sandbox_argv(sandbox);
    spec.cwd = scratch;
    spec.output_path = log;
    spec.timeout_seconds = 60;
    Result<ProcessOutcome> git = run_process(spec);
    if (!git || !git->succeeded()) {
        return {"the patch does not apply to the pristine tree (git apply " + describe(git) +
                "):\n" + file_tail(log)};
    }
    return {};
}

void collect_files(const fs::path& root, const fs::path& dir, std::set<std::string>& out);

// A workspace's copy of a trusted entry (tasks/, CMakeLists.txt) must equal the pristine one.
// Returns a problem for every file that differs.
std::vector<std::string> check_trusted_copy(const fs::path& workspace,
                                            const std::string& pristine_root,
                                            const std::string& entry) {
    std::vector<std::string> problems;
    std::set<std::string> ours, theirs;
    collect_files(workspace, workspace / entry, ours);
    collect_files(pristine_root, fs::path(pristine_root) / entry, theirs);
    for (const std::string& rel : ours) {
        if (!theirs.count(rel) || fs::is_symlink(workspace / rel) ||
            !same_as_pristine(workspace, rel, pristine_root)) {
            problems.push_back(rel +
                               ": changed, but outside the editable surface (only "
                               "baseline/** and kernels/** may change)");
        }
    }
    return problems;
}

// Copies one regular file of an overlay or workspace directory into scratch after checking it:
// an editable path, not executable, readable, no NUL bytes. Fails with the problem that
// refuses it.
Status take_editable_file(const fs::path& root, const fs::directory_entry& entry,
                          const std::string& scratch) {
    const fs::path rel = fs::relative(entry.path(), root);
    const std::string rel_str = rel.generic_string();
    if (Status allowed = check_editable_path(rel_str); !allowed) return allowed;
    if ((entry.status().permissions() & fs::perms::owner_exec) != fs::perms::none)
        return failure(rel_str + ": executable files are not accepted (mode change)");
    Result<std::string> content = read_untrusted(root, rel_str);
    if (!content) return failure(rel_str + ": cannot read");
    if (content->find('\0') != std::string::npos)
        return failure(rel_str + ": binary files are not accepted (contains NUL bytes)");
    const fs::path dest = fs::path(scratch) / rel;
    fs::create_directories(dest.parent_path());
    std::ofstream out(dest, std::ios::binary | std::ios::trunc);
    out << *content;
    return {};
}

// In a workspace, a pristine editable file that is missing was deleted on purpose: removes it
// from scratch too. `seen` holds the workspace's editable files.
void remove_deleted_files(const std::string& pristine_root, const std::string& scratch,
                          const std::set<std::string>& seen) {
    for (const char* editable : kEditableRoots) {
        const fs::path dir = fs::path(pristine_root) / editable;
        for (auto& entry : fs::recursive_directory_iterator(dir)) {
            if (!entry.is_regular_file()) continue;
            std::string rel = fs::relative(entry.path(), pristine_root).generic_string();
            if (!seen.count(rel)) fs::remove(fs::path(scratch) / rel);
        }
    }
}

// Copies the editable files of an overlay or workspace directory into scratch, checking each.
// Returns the problems that refuse it.
std::vector<std::string> apply_directory(const Submission& submission,
                                         const std::string& pristine_root,
                                         const std::string& scratch) {
    std::vector<std::string> problems;
    const fs::path root = fs::absolute(submission.path);
    std::error_code ec;
    std::set<std::string> seen;
    for (auto it = fs::recursive_directory_iterator(root, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const fs::path rel = fs::relative(it->path(), root);
        const std::string rel_str = rel.generic_string();
        const std::string top = rel.begin()->string();
        if (submission.kind == SubmissionKind::workspace && it.depth() == 0 &&
            (is_ignored_workspace_entry(top) || !is_editable_top(top))) {
            // workspaces carry a copy of the trusted files too: they must be unchanged
            if (!is_ignored_workspace_entry(top)) {
                for (std::string& p : check_trusted_copy(root, pristine_root, top))
                    problems.push_back(std::move(p));
            }
            if (it->is_directory() && !it->is_symlink()) it.disable_recursion_pending();
            continue;
        }
        if (it->is_symlink()) {
            problems.push_back(rel_str + ": symlinks are not accepted");
            continue;
        }
        if (it->is_directory()) {
            if (Status allowed = check_editable_path(rel_str + "/x"); !allowed) {
                problems.push_back(rel_str + "/: " + allowed.error());
                it.disable_recursion_pending();
            }
            continue;
        }
        if (!it->is_regular_file()) {
            problems.push_back(rel_str + ": only regular files are accepted");
            continue;
        }
        if (Status taken = take_editable_file(root, *it, scratch); !taken) {
            problems.push_back(taken.error());
            continue;
        }
        seen.insert(rel_str);
    }
    if (ec) problems.push_back("cannot read " + submission.path + ": " + ec.message());
    if (submission.kind == SubmissionKind::workspace)
        remove_deleted_files(pristine_root, scratch, seen);
    return problems;
}

// Whether the editable files of the scratch tree (audited: regular files only) are exactly the
// pristine tree's: the same names, the same bytes. A scratch file is read as any untrusted file
// (no link followed, bounded); one that cannot be read counts as changed.
bool editable_files_unchanged(const std::string& pristine_root, const std::string& scratch) {
    std::set<std::string> pristine_files, scratch_files;
    for (const char* editable : kEditableRoots) {
        collect_files(pristine_root, fs::path(pristine_root) / editable, pristine_files);
        collect_files(scratch, fs::path(scratch) / editable, scratch_files);
    }
    if (pristine_files != scratch_files) return false;
    for (const std::string& rel : scratch_files) {
        if (!same_as_pristine(scratch, rel, pristine_root)) return false;
    }
    return true;
}

// Why a submission whose scratch tree is the pristine one is refused, in the words of its kind.
std::string changes_nothing(SubmissionKind kind) {
    switch (kind) {
        case SubmissionKind::patch:
            return std::string(kChangesNothing) +
                   "the patch leaves baseline/ and kernels/ exactly as the pristine tree has them";
        case SubmissionKind::overlay:
            return std::string(kChangesNothing) +
                   "the overlay directory holds no file under baseline/ or kernels/ that differs "
                   "from the pristine tree's";
        case SubmissionKind::workspace:
            return std::string(kChangesNothing) +
                   "the workspace's baseline/ and kernels/ are identical to the pristine tree's "
                   "(edit them, then verify again)";
    }
    return kChangesNothing;
}

void collect_files(const fs::path& root, const fs::path& dir, std::set<std::string>& out) {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(dir, ec))) return;
    if (!fs::is_directory(fs::symlink_status(dir, ec))) {
        out.insert(fs::relative(dir, root).generic_string());
        return;
    }
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_directory() && !it->is_symlink()) continue;
        out.insert(fs::relative(it->path(), root).generic_string());
    }
}

}  // namespace

Status check_editable_path(const std::string& relative_path) {
    if (relative_path.empty()) return failure("empty path");
    if (relative_path.front() == '/')
        return failure(relative_path + ": absolute paths are not accepted");
    std::istringstream parts(relative_path);
    std::string part, first;
    while (std::getline(parts, part, '/')) {
        if (part == "..") return failure(relative_path + ": path escapes the tree (\"..\")");
        if (part.empty() || part == ".") return failure(relative_path + ": malformed path");
        if (first.empty()) first = part;
    }
    if (!is_editable_top(first)) {
        return failure(relative_path +
                       ": outside the editable surface (only baseline/** and kernels/** may "
                       "change)");
    }
    return {};
}

Result<Submission> classify_submission(const std::string& path) {
    std::error_code ec;
    fs::file_status st = fs::symlink_status(path, ec);
    if (ec || !fs::exists(st)) return failure("submission " + path + " does not exist");
    if (fs::is_regular_file(st)) return Submission{path, SubmissionKind::patch};
    if (!fs::is_directory(st))
        return failure("submission " + path + " is neither a patch file nor a directory");
    const bool workspace = fs::exists(fs::path(path) / kWorkspaceMarker);
    return Submission{path, workspace ? SubmissionKind::workspace : SubmissionKind::overlay};
}

Status copy_pristine_tree(const std::string& pristine_root, const std::string& dest) {
    std::error_code ec;
    fs::create_directories(dest, ec);
    for (const char* entry : kTrainerTreeEntries) {
        fs::path from = fs::path(pristine_root) / entry;
        fs::copy(from, fs::path(dest) / entry,
                 fs::copy_options::recursive | fs::copy_options::skip_symlinks, ec);
        if (ec)
            return failure("cannot copy " + from.string() + " to " + dest + ": " + ec.message());
    }
    return {};
}

std::vector<std::string> apply_submission(const Submission& submission,
                                          const std::string& pristine_root,
                                          const std::string& scratch, SandboxMode mode) {
    std::vector<std::string> problems = submission.kind == SubmissionKind::patch
                                            ? apply_patch(submission, scratch, mode)
                                            : apply_directory(submission, pristine_root, scratch);
    if (!problems.empty()) return problems;
    problems = audit_scratch_tree(pristine_root, scratch);
    if (problems.empty() && editable_files_unchanged(pristine_root, scratch))
        problems.push_back(changes_nothing(submission.kind));
    return problems;
}

std::vector<std::string> audit_scratch_tree(const std::string& pristine_root,
                                            const std::string& scratch) {
    std::vector<std::string> problems;
    std::set<std::string> pristine_files, scratch_files;
    for (const char* entry : kTrainerTreeEntries) {
        collect_files(pristine_root, fs::path(pristine_root) / entry, pristine_files);
        collect_files(scratch, fs::path(scratch) / entry, scratch_files);
    }
    for (const std::string& rel : scratch_files) {
        const fs::path p = fs::path(scratch) / rel;
        std::string top = rel.substr(0, rel.find('/'));
        if (fs::is_symlink(p)) {
            problems.push_back(rel + ": symlinks are not accepted");
        } else if (!fs::is_regular_file(p)) {
            problems.push_back(rel + ": only regular files are accepted");
        } else if (is_editable_top(top)) {
            if ((fs::status(p).permissions() & fs::perms::owner_exec) != fs::perms::none) {
                problems.push_back(rel + ": executable files are not accepted (mode change)");
            }
        } else {
            if (!pristine_files.count(rel) || !same_as_pristine(scratch, rel, pristine_root)) {
                problems.push_back(rel +
                                   ": outside the editable surface (only baseline/** and "
                                   "kernels/** may change)");
            }
        }
    }
    // Nothing beside the trainer tree's entries may appear at the top of the scratch tree.
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(scratch, ec)) {
        const std::string name = entry.path().filename().string();
        if (std::find(std::begin(kTrainerTreeEntries), std::end(kTrainerTreeEntries), name) ==
            std::end(kTrainerTreeEntries)) {
            problems.push_back(name +
                               ": outside the editable surface (only baseline/** and "
                               "kernels/** may change)");
        }
    }
    for (const std::string& rel : pristine_files) {
        std::string top = rel.substr(0, rel.find('/'));
        if (!is_editable_top(top) && !scratch_files.count(rel)) {
            problems.push_back(rel + ": deleted, but it is outside the editable surface");
        }
    }
    return problems;
}

}  // namespace trainopt
