#include "harness/trusted_inputs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "harness/intake.h"
#include "harness/trusted_manifest.h"

namespace trainopt {

namespace fs = std::filesystem;

// ---- locating and verifying ----

namespace {

// Reads a regular file without following a symlink at its last component. A failure says what
// is wrong with the file ("is a symlink"), to follow its path.
Result<std::string> read_regular_file(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return failure(errno == ELOOP ? "is a symlink" : std::string(strerror(errno)));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return failure("is not a regular file");
    }
    std::string out;
    out.reserve((size_t)st.st_size);
    char buf[1 << 16];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const std::string why = strerror(errno);
            close(fd);
            return failure(why);
        }
        if (n == 0) break;
        out.append(buf, (size_t)n);
    }
    close(fd);
    return out;
}

std::string how_to_fix(const TrustedInputs& in) {
    return in.installed ? "reinstall trainopt (cmake --install)"
                        : "rebuild trainopt (cmake --build) if the change is yours";
}

// Checks one file against its expected hash; fails naming it when it differs.
Status check_file(const TrustedInputs& in, const std::string& path, const std::string& expected) {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(path, ec)))
        return failure("trusted input missing since the build: " + path + "; " + how_to_fix(in));
    Result<std::string> content = read_regular_file(path);
    if (!content) {
        return failure("trusted input changed since the build: " + path + " " + content.error() +
                       " (expected a regular file with sha256 " + expected + "); " +
                       how_to_fix(in));
    }
    std::string found = sha256_hex(*content);
    if (found != expected) {
        return failure("trusted input changed since the build: " + path + " (expected sha256 " +
                       expected + ", found " + found + "); " + how_to_fix(in));
    }
    return {};
}

// The pristine tree, listed without following symlinks.
struct PristineListing {
    std::set<std::string> files;        // regular files, relative to the pristine root
    std::vector<std::string> problems;  // anything else (symlinks, devices, FIFOs, sockets)
};

PristineListing list_pristine_tree(const TrustedInputs& in) {
    PristineListing listing;
    std::set<std::string>& files = listing.files;
    std::vector<std::string>& problems = listing.problems;
    const fs::path root(in.pristine_root);
    for (const char* entry : kTrainerTreeEntries) {
        const fs::path top = root / entry;
        std::error_code ec;
        fs::file_status st = fs::symlink_status(top, ec);
        if (!fs::exists(st)) continue;  // reported as missing by the manifest comparison
        auto classify = [&](const fs::path& p, fs::file_status s) {
            const std::string rel = p.lexically_relative(root).generic_string();
            if (fs::is_regular_file(s)) {
                files.insert(rel);
            } else if (!fs::is_directory(s)) {
                problems.push_back(
                    "trusted input changed since the build: " + p.string() +
                    (fs::is_symlink(s) ? " is a symlink" : " is not a regular file") + "; " +
                    how_to_fix(in));
            }
        };
        classify(top, st);
        if (!fs::is_directory(st)) continue;
        for (auto it = fs::recursive_directory_iterator(top, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            classify(it->path(), it->symlink_status());
        }
        if (ec) {
            problems.push_back("cannot read the trusted input " + top.string() + ": " +
                               ec.message());
        }
    }
    return listing;
}

// Fails naming the first file or folder of an install that someone other than root may change:
// not owned by root, or group- or world-writable (a root-owned sticky folder such as /tmp is
// fine).
Status check_only_root_can_change(const fs::path& exe, const TrustedInputs& in) {
    std::vector<fs::path> paths = {exe,
                                   exe.parent_path(),
                                   in.prefix,
                                   fs::path(in.baseline_trainer).parent_path(),
                                   in.baseline_trainer,
                                   in.sandbox_init,
                                   fs::path(in.pristine_root).parent_path(),
                                   in.pristine_root};
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(in.pristine_root, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        paths.push_back(it->path());
    }
    for (const fs::path& p : paths) {
        struct stat st;
        if (lstat(p.c_str(), &st) != 0) continue;  // missing files are the manifest's business
        if (st.st_uid != 0)
            return failure(p.string() + " is owned by uid " + std::to_string(st.st_uid));
        const bool sticky_dir = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX);
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !S_ISLNK(st.st_mode) && !sticky_dir)
            return failure(p.string() + " is writable by its group or by everyone");
    }
    return {};
}

std::string self_executable() {
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    return ec ? std::string() : exe.string();
}

// "bin" -> 1, "local/bin" -> 2: how many levels the executable's folder sits below the prefix.
int bindir_depth() {
    int depth = 0;
    for (const auto& part : fs::path(TRAINOPT_INSTALL_BINDIR)) {
        if (!part.empty() && part != ".") depth++;
    }
    return depth;
}

}  // namespace

Result<TrustedInputs> locate_trusted_inputs(const std::string& exe_arg) {
    TrustedInputs in;
    std::error_code ec;
    const std::string exe_str = exe_arg.empty() ? self_executable() : exe_arg;
    if (exe_str.empty()) return failure("cannot find trainopt's own executable (/proc/self/exe)");
    const fs::path exe = fs::weakly_canonical(exe_str, ec);
    const fs::path build_bin = fs::weakly_canonical(TRAINOPT_BUILD_EXE_DIR, ec);
    if (exe.parent_path() == build_bin) {
        // development: the source tree and the build directory this binary was compiled from
        in.installed = false;
        in.prefix = TRAINOPT_BINARY_DIR;
        in.pristine_root = TRAINOPT_SOURCE_DIR;
        in.baseline_trainer = manifest::kBuildBaselineTrainer;
        in.sandbox_init = manifest::kBuildSandboxInit;
        return in;
    }
    fs::path prefix = exe.parent_path();
    for (int i = 0; i < bindir_depth(); i++) prefix = prefix.parent_path();
    in.installed = true;
    in.prefix = prefix.string();
    in.pristine_root = (prefix / TRAINOPT_INSTALL_DATADIR / "trainopt" / "pristine").string();
    const fs::path libexec = prefix / TRAINOPT_INSTALL_LIBEXECDIR / "trainopt";
    in.baseline_trainer = (libexec / "trainopt-train").string();
    in.sandbox_init = (libexec / "trainopt-sandbox-init").string();
    if (!fs::is_directory(fs::symlink_status(in.pristine_root, ec))) {
        return failure("trainopt at " + exe.string() + " is neither in its build tree (" +
                       build_bin.string() + ") nor in an install prefix (no directory " +
                       in.pristine_root + "); install it with cmake --install BUILD --prefix P");
    }
    if (Status protected_install = check_only_root_can_change(exe, in); !protected_install) {
        in.warnings.push_back("INSTALL NOT PROTECTED: " + protected_install.error() +
                              ": users other than root could change this trainopt and what "
                              "it scores against; install it as root for official scores "
                              "(docs/security.md)");
    }
    return in;
}

Status verify_trusted_inputs(const TrustedInputs& in) {
    PristineListing on_disk = list_pristine_tree(in);
    std::vector<std::string>& problems = on_disk.problems;
    std::set<std::string> expected;
    auto check = [&](const std::string& path, const std::string& sha256) {
        if (Status same = check_file(in, path, sha256); !same) problems.push_back(same.error());
    };
    for (size_t i = 0; i < manifest::kPristineFileCount; i++) {
        const manifest::FileHash& f = manifest::kPristineFiles[i];
        expected.insert(f.path);
        check((fs::path(in.pristine_root) / f.path).string(), f.sha256);
    }
    for (const std::string& rel : on_disk.files) {
        if (!expected.count(rel)) {
            problems.push_back("trusted input added since the build: " +
                               (fs::path(in.pristine_root) / rel).string() +
                               " (not in the manifest); " + how_to_fix(in));
        }
    }
    check(in.baseline_trainer, manifest::kBaselineTrainerSha256);
    check(in.sandbox_init, manifest::kSandboxInitSha256);
    if (problems.empty()) return {};
    std::string out;
    const size_t shown = std::min<size_t>(problems.size(), 10);
    for (size_t i = 0; i < shown; i++) out += (i ? "\n" : "") + problems[i];
    if (problems.size() > shown) {
        out += "\n(and " + std::to_string(problems.size() - shown) + " more)";
    }
    return failure(out);
}

std::string trusted_manifest_digest() {
    // one line per file; paths hold no line breaks (the manifest is generated from the tree)
    std::string listing = "pristine " + std::to_string(manifest::kPristineFileCount) + "\n";
    for (size_t i = 0; i < manifest::kPristineFileCount; i++) {
        const manifest::FileHash& f = manifest::kPristineFiles[i];
        listing += std::string(f.sha256) + " " + f.path + "\n";
    }
    listing += std::string("baseline-trainer ") + manifest::kBaselineTrainerSha256 + "\n";
    listing += std::string("sandbox-init ") + manifest::kSandboxInitSha256 + "\n";
    return sha256_hex(listing);
}

Result<TrustedInputs> load_trusted_inputs(const std::string& exe) {
    Result<TrustedInputs> in = locate_trusted_inputs(exe);
    if (!in) return in;
    if (Status verified = verify_trusted_inputs(*in); !verified)
        return failure("refusing to run: " + verified.error());
    return in;
}

std::vector<EmbeddedFile> builtin_task_files() {
    return {manifest::kTaskFiles, manifest::kTaskFiles + manifest::kTaskFileCount};
}

std::vector<EmbeddedFile> workspace_documents() {
    return {manifest::kWorkspaceDocs, manifest::kWorkspaceDocs + manifest::kWorkspaceDocCount};
}

std::string workspace_document_text(const EmbeddedFile& doc, const std::string& trainopt_command) {
    std::string text(doc.text());
    for (size_t at = text.find(kTrainoptPlaceholder); at != std::string::npos;
         at = text.find(kTrainoptPlaceholder, at + trainopt_command.size()))
        text.replace(at, kTrainoptPlaceholder.size(), trainopt_command);
    return text;
}

std::string shell_word(const std::string& text) {
    const bool plain = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
        return std::isalnum((unsigned char)c) || std::strchr("/._+-", c) != nullptr;
    });
    if (plain) return text;
    std::string quoted = "'";
    for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

std::string own_command() {
    const std::string exe = self_executable();
    return exe.empty() ? "trainopt" : shell_word(exe);
}

std::vector<std::string> builtin_suite_names() {
    std::set<std::string> names;
    for (const EmbeddedFile& f : builtin_task_files()) {
        std::string path = f.path;
        names.insert(path.substr(0, path.find('/')));
    }
    return {names.begin(), names.end()};
}

Result<ScoringSuite> load_scoring_suite(const TrustedInputs& in, const std::string& name_or_dir) {
    const std::vector<std::string> names = builtin_suite_names();
    if (std::find(names.begin(), names.end(), name_or_dir) == names.end()) {
        std::error_code ec;
        if (!fs::is_directory(name_or_dir, ec)) {
            std::string list;
            for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
            return failure("suite '" + name_or_dir + "' is neither a built-in suite (" + list +
                           ") nor a directory of task files");
        }
        // the user's own task files, read from disk: allowed, but never an official score
        Result<Suite> suite = load_suite(name_or_dir, "");
        if (!suite) return failure(suite.error());
        return ScoringSuite{std::move(*suite), false};
    }
    std::vector<TaskText> texts;
    for (const EmbeddedFile& f : builtin_task_files()) {
        const std::string path = f.path;
        if (path.substr(0, path.find('/')) != name_or_dir) continue;
        // The trainer reads the task from this file; it is part of the verified pristine tree.
        texts.push_back(
            {(fs::path(in.pristine_root) / "tasks" / path).string(), std::string(f.text())});
    }
    Result<Suite> suite = load_suite_texts(name_or_dir, texts);
    if (!suite) return failure(suite.error());
    return ScoringSuite{std::move(*suite), true};
}

}  // namespace trainopt
