// Trusted inputs and the scoring install (docs/security.md, "An agent with a shell"): trainopt
// refuses to run when a task file, the pristine source or a trusted binary changed since the
// build, naming the file; built-in suites come from the binary, not from disk; a scoring install
// and a fresh workspace hold no answer key and reference nothing they lack.
//
// Tampering happens only in copies: an install into a temporary prefix and temporary trees.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <regex>
#include <set>

#include "harness/intake.h"
#include "harness/trusted_inputs.h"
#include "harness/trusted_manifest.h"
#include "test_util.h"

namespace trainopt {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// `cmake --install` of this build into `prefix`. Its parent is made traversable, as an install
// prefix is, for the sandboxed runs (uid nobody inside bubblewrap).
void install_to(const std::string& prefix, const std::string& log) {
    chmod(fs::path(prefix).parent_path().c_str(), 0755);
    auto r = testing::run_command(
        {TRAINOPT_CMAKE, "--install", TRAINOPT_BINARY_DIR, "--prefix", prefix}, log);
    ASSERT_EQ(r.exit_code, 0) << r.output;
}

// Runs an installed trainopt.
testing::CliResult run_installed(const std::string& prefix, std::vector<std::string> args,
                                 const std::string& log) {
    args.insert(args.begin(), prefix + "/bin/trainopt");
    return testing::run_command(args, log);
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

// Every regular file under `root`, relative paths.
std::vector<std::string> files_under(const std::string& root) {
    std::vector<std::string> out;
    for (auto& e : fs::recursive_directory_iterator(root)) {
        if (e.is_regular_file()) out.push_back(fs::relative(e.path(), root).generic_string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

// The expert submission's distinctive techniques and numbers, and names of the material that
// describes it: none may reach an agent's workspace.
// clang-format off
const char* const kAnswerKeyTerms[] = {
    "expert", "avx-512", "avx512", "q16", "online softmax", "online-softmax", "huge page",
    "huge-page", "hugepage", "madvise", "scalef", "55x", "55.1x", "53.0x", "41.0x", "83.4x",
    "16-query", "chunked lm head", "activation arena", "session 5", "blas-tbb", "submissions/",
    "performance.md", "tolerances.md", "history.md", "bench_kernels", "scripts/main.sh",
    "query_lanes", "query lanes", "44.3x"};
// clang-format on

std::vector<std::string> answer_key_hits(const std::string& root) {
    std::vector<std::string> hits;
    for (const std::string& rel : files_under(root)) {
        const std::string text = lower(testing::read_text(root + "/" + rel));
        for (const char* term : kAnswerKeyTerms) {
            if (text.find(term) != std::string::npos) hits.push_back(rel + ": " + term);
        }
    }
    return hits;
}

// References to files in the workspace's documents and sources that the workspace lacks:
// Markdown links, `code` spans naming a repository path, and docs/*.md mentioned anywhere.
std::vector<std::string> dangling_references(const std::string& root) {
    static const std::set<std::string> kRepoTops = {"docs",    "baseline",    "contract", "kernels",
                                                    "tasks",   "harness",     "scoring",  "tests",
                                                    "scripts", "submissions", "results",  ".ci"};
    std::vector<std::string> out;
    auto exists_pattern = [&](const fs::path& base, const std::string& ref) {
        std::string path = ref;
        size_t star = path.find('*');
        if (star != std::string::npos) path = path.substr(0, path.rfind('/', star) + 1);
        return fs::exists(base / path);
    };
    const std::regex link(R"(\]\(([^)#\s]+)\))");
    const std::regex code("`([^`\\s]+)`");
    const std::regex doc_mention(R"(docs/[A-Za-z0-9_.-]+\.md)");
    const std::regex any_doc(R"(\b[A-Za-z0-9_-]+\.md\b)");
    std::set<std::string> doc_names;
    for (const std::string& rel : files_under(root)) {
        if (rel.size() > 3 && rel.substr(rel.size() - 3) == ".md")
            doc_names.insert(fs::path(rel).filename().string());
    }
    for (const std::string& rel : files_under(root)) {
        const std::string text = testing::read_text(root + "/" + rel);
        const fs::path dir = (fs::path(root) / rel).parent_path();
        const bool markdown = rel.size() > 3 && rel.substr(rel.size() - 3) == ".md";
        if (markdown) {
            for (std::sregex_iterator it(text.begin(), text.end(), link), end; it != end; ++it) {
                const std::string target = (*it)[1];
                if (target.rfind("http", 0) == 0) continue;
                if (!exists_pattern(dir, target)) out.push_back(rel + ": link to " + target);
            }
            for (std::sregex_iterator it(text.begin(), text.end(), code), end; it != end; ++it) {
                const std::string token = (*it)[1];
                const std::string top = token.substr(0, token.find('/'));
                const bool is_doc = token.size() > 3 && token.substr(token.size() - 3) == ".md";
                if (token.find('/') == std::string::npos && !is_doc) continue;
                if (top == "build") {
                    // the agent's own trainer build is fine; the repository's build tree is not
                    const std::string rest = token.substr(6);
                    const std::string second = rest.substr(0, rest.find('/'));
                    if (second != "baseline" && second != "contract" && second != "kernels" &&
                        second != "tasks")
                        out.push_back(rel + ": names " + token);
                    continue;
                }
                if (!kRepoTops.count(top) && !is_doc) continue;
                // paths in a workspace's documents are relative to the workspace
                if (!exists_pattern(root, token) && !exists_pattern(dir, token))
                    out.push_back(rel + ": names " + token);
            }
        }
        for (std::sregex_iterator it(text.begin(), text.end(), doc_mention), end; it != end; ++it) {
            if (!fs::exists(fs::path(root) / it->str()))
                out.push_back(rel + ": mentions " + it->str());
        }
        // any document named anywhere, by file name
        for (std::sregex_iterator it(text.begin(), text.end(), any_doc), end; it != end; ++it) {
            if (!doc_names.count(it->str())) out.push_back(rel + ": mentions " + it->str());
        }
    }
    return out;
}

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x + "\n";
    return s;
}

TEST(TrustedInputs, Sha256KnownAnswers) {
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    // the padding boundaries, against coreutils
    TempDir dir;
    for (size_t n : {55, 56, 63, 64, 65, 119, 120, 127, 128}) {
        std::string data;
        for (size_t i = 0; i < n; i++) data.push_back((char)(i * 7 + 1));
        testing::write_text(dir.path + "/d", data);
        auto r = testing::run_command({"/usr/bin/sha256sum", dir.path + "/d"}, dir.path + "/log");
        ASSERT_EQ(r.exit_code, 0);
        EXPECT_EQ(sha256_hex(data), r.output.substr(0, 64)) << n << " bytes";
    }
}

TEST(TrustedInputs, BuildTreeMatchesItsManifest) {
    Result<TrustedInputs> in = locate_trusted_inputs(TRAINOPT_CLI);
    ASSERT_TRUE(in) << in.error();
    EXPECT_FALSE(in->installed);
    EXPECT_EQ(fs::canonical(in->pristine_root), fs::canonical(testing::project_root()));
    EXPECT_EQ(fs::canonical(in->baseline_trainer), fs::canonical(TRAINOPT_TRAINER));
    Status verified = verify_trusted_inputs(*in);
    EXPECT_TRUE(verified) << "the source tree changed since the last build: rebuild\n"
                          << verified.error();
    // the manifest covers exactly the trainer tree
    std::set<std::string> tops;
    for (size_t i = 0; i < manifest::kPristineFileCount; i++) {
        std::string path = manifest::kPristineFiles[i].path;
        tops.insert(path.substr(0, path.find('/')));
    }
    EXPECT_EQ(tops, std::set<std::string>(std::begin(kTrainerTreeEntries),
                                          std::end(kTrainerTreeEntries)));
}

TEST(TrustedInputs, BuiltInSuitesComeFromTheBinary) {
    EXPECT_EQ(builtin_suite_names(),
              (std::vector<std::string>{"default", "edge", "test", "text", "text-test"}));
    for (const EmbeddedFile& f : builtin_task_files()) {
        EXPECT_EQ(f.text(), testing::read_text(testing::project_root() + "/tasks/" + f.path))
            << f.path;
    }
    // a pristine tree whose task file gained a loose [tolerances] table: the suite still
    // carries the built-in tolerances (and verify_trusted_inputs refuses that tree)
    TempDir dir;
    Status copied = copy_pristine_tree(testing::project_root(), dir.path);
    ASSERT_TRUE(copied) << copied.error();
    std::ofstream(dir.path + "/tasks/test/tiny.toml", std::ios::app)
        << "\n[tolerances]\nloss_abs = 100.0\nheldout_abs = 100.0\nweights_rel = 100.0\n";
    Result<TrustedInputs> located = locate_trusted_inputs(TRAINOPT_CLI);
    ASSERT_TRUE(located) << located.error();
    TrustedInputs in = *located;
    in.pristine_root = dir.path;
    Result<ScoringSuite> loaded = load_scoring_suite(in, "test");
    ASSERT_TRUE(loaded) << loaded.error();
    EXPECT_TRUE(loaded->builtin);
    ASSERT_EQ(loaded->suite.tasks.size(), 1u);
    EXPECT_EQ(loaded->suite.tasks[0].tolerances.loss_abs, Tolerances{}.loss_abs);
    EXPECT_EQ(loaded->suite.tasks[0].file, dir.path + "/tasks/test/tiny.toml");
    Status verified = verify_trusted_inputs(in);
    ASSERT_FALSE(verified);
    EXPECT_NE(verified.error().find("trusted input changed since the build: " + dir.path +
                                    "/tasks/test/tiny.toml"),
              std::string::npos)
        << verified.error();
    // a directory of one's own task files is allowed, but not built in
    loaded = load_scoring_suite(in, dir.path + "/tasks/test");
    ASSERT_TRUE(loaded) << loaded.error();
    EXPECT_FALSE(loaded->builtin);
    EXPECT_EQ(loaded->suite.tasks[0].tolerances.loss_abs, 100.0);
    loaded = load_scoring_suite(in, "no-such-suite");
    ASSERT_FALSE(loaded);
    EXPECT_NE(loaded.error().find("no-such-suite"), std::string::npos) << loaded.error();
}

// The install holds the trainer tree, two binaries and trainopt; nothing about submissions.
TEST(Install, HoldsOnlyTheScoringInputs) {
    TempDir dir;
    const std::string prefix = dir.path + "/prefix";
    install_to(prefix, dir.path + "/install.log");
    for (const std::string& rel : files_under(prefix)) {
        const bool expected = rel == "bin/trainopt" || rel == "libexec/trainopt/trainopt-train" ||
                              rel == "libexec/trainopt/trainopt-sandbox-init" ||
                              rel.rfind("share/trainopt/pristine/", 0) == 0;
        EXPECT_TRUE(expected) << rel;
    }
    EXPECT_FALSE(fs::exists(prefix + "/share/trainopt/pristine/submissions"));
    EXPECT_EQ(answer_key_hits(prefix + "/share/trainopt/pristine"), std::vector<std::string>{});
    Result<TrustedInputs> in = locate_trusted_inputs(prefix + "/bin/trainopt");
    ASSERT_TRUE(in) << in.error();
    EXPECT_TRUE(in->installed);
    EXPECT_EQ(in->pristine_root, prefix + "/share/trainopt/pristine");
    Status verified = verify_trusted_inputs(*in);
    EXPECT_TRUE(verified) << verified.error();
    // installed by root, it is protected; a folder others may write is reported
    if (geteuid() == 0) {
        EXPECT_EQ(in->warnings, std::vector<std::string>{});
    }
    chmod((prefix + "/share/trainopt/pristine/kernels").c_str(), 0777);
    in = locate_trusted_inputs(prefix + "/bin/trainopt");
    ASSERT_TRUE(in) << in.error();
    ASSERT_EQ(in->warnings.size(), 1u);
    EXPECT_NE(in->warnings[0].find("INSTALL NOT PROTECTED: " + prefix +
                                   "/share/trainopt/pristine/kernels is writable"),
              std::string::npos)
        << in->warnings[0];
}

// Each trusted input of an install, changed in turn, makes the installed trainopt refuse to
// score, naming the file; restored, it scores again.
TEST(Install, RefusesAChangedTrustedInputNamingIt) {
    TempDir dir;
    const std::string prefix = dir.path + "/prefix";
    install_to(prefix, dir.path + "/install.log");
    const std::string pristine = prefix + "/share/trainopt/pristine";
    const std::string trainer = prefix + "/libexec/trainopt/trainopt-train";
    const std::string init = prefix + "/libexec/trainopt/trainopt-sandbox-init";
    int n = 0;
    auto expect_refusal = [&](const std::string& file, const std::string& what) {
        SCOPED_TRACE(file);
        const std::string log = dir.path + "/log" + std::to_string(n++);
        auto r = run_installed(prefix, {"verify", "baseline", "--suite", "test"}, log);
        EXPECT_EQ(r.exit_code, 1) << r.output;
        EXPECT_NE(r.output.find(what + file), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("reinstall trainopt"), std::string::npos) << r.output;
        // workspace init copies the same tree: refused too
        auto w = run_installed(prefix, {"workspace", "init", dir.path + "/ws" + std::to_string(n)},
                               log + "w");
        EXPECT_EQ(w.exit_code, 1) << w.output;
        EXPECT_NE(w.output.find(file), std::string::npos) << w.output;
    };
    auto saved = [&](const std::string& path) {
        fs::copy_file(path, dir.path + "/saved", fs::copy_options::overwrite_existing);
    };
    auto restore = [&](const std::string& path) {
        fs::remove(path);
        fs::copy_file(dir.path + "/saved", path);
    };
    const std::string changed = "trusted input changed since the build: ";

    // the measured attack: a loose [tolerances] table appended to a task file
    const std::string task = pristine + "/tasks/test/tiny.toml";
    saved(task);
    std::ofstream(task, std::ios::app)
        << "\n[tolerances]\nloss_abs = 100.0\nheldout_abs = 100.0\nweights_rel = 100.0\n";
    expect_refusal(task, changed);
    restore(task);

    // pristine source: a reference kernel edited, a file added, a file made a symlink
    const std::string kernel = pristine + "/kernels/reference.cpp";
    saved(kernel);
    std::ofstream(kernel, std::ios::app) << "// changed\n";
    expect_refusal(kernel, changed);
    restore(kernel);
    testing::write_text(pristine + "/kernels/extra.cpp", "int x;\n");
    expect_refusal(pristine + "/kernels/extra.cpp", "trusted input added since the build: ");
    fs::remove(pristine + "/kernels/extra.cpp");
    const std::string loop = pristine + "/baseline/train.cpp";
    saved(loop);
    fs::remove(loop);
    fs::create_symlink(dir.path + "/saved", loop);
    expect_refusal(loop, changed);
    restore(loop);

    // the baseline trainer replaced by a slower program; the sandbox init edited
    saved(trainer);
    fs::remove(trainer);
    fs::copy_file("/bin/sleep", trainer);
    expect_refusal(trainer, changed);
    restore(trainer);
    chmod(trainer.c_str(), 0755);
    saved(init);
    std::ofstream(init, std::ios::app | std::ios::binary) << '\0';
    expect_refusal(init, changed);
    restore(init);
    chmod(init.c_str(), 0755);

    // all restored: the install scores again (one repetition of the built-in tiny task)
    auto ok = run_installed(
        prefix, {"verify", "baseline", "--suite", "test", "--json", dir.path + "/v.json"},
        dir.path + "/ok.log");
    EXPECT_EQ(ok.exit_code, 0) << ok.output;
    EXPECT_EQ(testing::read_json(dir.path + "/v.json")["verdict"], "VALID");
}

// A custom suite still scores, but the report says it is not built in.
TEST(Install, CustomSuiteIsMarkedNotBuiltIn) {
    TempDir dir;
    const std::string prefix = dir.path + "/prefix";
    install_to(prefix, dir.path + "/install.log");
    testing::write_text(dir.path + "/mine/tiny.toml",
                        testing::read_text(testing::project_root() + "/tasks/test/tiny.toml"));
    auto r = run_installed(
        prefix,
        {"verify", "baseline", "--suite", dir.path + "/mine", "--json", dir.path + "/r.json"},
        dir.path + "/log");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    nlohmann::json report = testing::read_json(dir.path + "/r.json");
    ASSERT_FALSE(report.is_discarded());
    EXPECT_NE(report["suite"].get<std::string>().find("not built in"), std::string::npos);
    EXPECT_NE(report["warnings"].dump().find("CUSTOM SUITE"), std::string::npos)
        << report["warnings"].dump();
    auto list = run_installed(prefix, {"tasks", "list", "--suite", "default"}, dir.path + "/l");
    EXPECT_EQ(list.exit_code, 0) << list.output;
    EXPECT_NE(list.output.find("built into trainopt"), std::string::npos) << list.output;
}

// A fresh workspace: the trainer tree and the agent-facing documents only; nothing describes
// another submission's techniques or numbers; every file it names is there.
void check_workspace(const std::string& ws) {
    std::set<std::string> top;
    for (auto& e : fs::directory_iterator(ws)) top.insert(e.path().filename().string());
    EXPECT_EQ(top, (std::set<std::string>{"CMakeLists.txt", "baseline", "contract", "kernels",
                                          "tasks", "docs", "TASK.md", kWorkspaceMarker}));
    EXPECT_EQ(
        files_under(ws + "/docs"),
        (std::vector<std::string>{"kernel-api.md", "task-format.md", "writing-a-submission.md"}));
    EXPECT_EQ(answer_key_hits(ws), std::vector<std::string>{}) << "answer key in the workspace";
    EXPECT_EQ(dangling_references(ws), std::vector<std::string>{}) << "references to missing files";
}

TEST(Workspace, HoldsNoAnswerKeyAndNoDanglingReferences) {
    TempDir dir;
    auto r = testing::run_cli({"workspace", "init", dir.path + "/ws"}, dir.path + "/log");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    check_workspace(dir.path + "/ws");
    // the checks do catch both
    testing::write_text(dir.path + "/ws/docs/x.md",
                        "see [perf](performance.md), `submissions/expert/`, security.md and "
                        "`build/tests/bench_kernels`\n");
    EXPECT_EQ(answer_key_hits(dir.path + "/ws").size(), 4u);
    // the link (also as a file name), the submission, security.md, the repository's build tree
    EXPECT_EQ(dangling_references(dir.path + "/ws").size(), 5u)
        << joined(dangling_references(dir.path + "/ws"));
}

TEST(Workspace, FromAnInstallIsTheSame) {
    TempDir dir;
    const std::string prefix = dir.path + "/prefix";
    install_to(prefix, dir.path + "/install.log");
    auto r = run_installed(prefix, {"workspace", "init", dir.path + "/ws"}, dir.path + "/log");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    check_workspace(dir.path + "/ws");
}

}  // namespace
}  // namespace trainopt
