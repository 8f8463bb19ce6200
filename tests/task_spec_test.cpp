// Bad task files and bad trainer input give clear errors and non-zero exits.
#include "tasks/task_spec.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tasks/data.h"
#include "tasks/sha256.h"
#include "test_util.h"

namespace trainopt {
namespace {

using testing::TempDir;
using testing::write_text;

const char* kValidTask = R"(
[task]
name = "t"
[model]
vocab_size = 32
context = 8
d_model = 8
layers = 1
heads = 2
[data]
kind = "synthetic"
tokens = 5000
[train]
batch = 2
steps = 3
)";

std::string load_error(const std::string& text) {
    TempDir dir;
    write_text(dir.path + "/t.toml", text);
    Result<TaskSpec> task = load_task(dir.path + "/t.toml");
    EXPECT_FALSE(task);
    return task ? "" : task.error();
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
    s.replace(s.find(from), from.size(), to);
    return s;
}

TEST(TaskSpec, LoadsAValidFileWithDefaults) {
    TempDir dir;
    write_text(dir.path + "/t.toml", kValidTask);
    Result<TaskSpec> task = load_task(dir.path + "/t.toml");
    ASSERT_TRUE(task) << task.error();
    EXPECT_EQ(task->name, "t");
    EXPECT_EQ(task->model.heads, 2);
    EXPECT_FLOAT_EQ(task->train.beta2, 0.999f);
    EXPECT_GT(task->tolerances.loss_abs, 0);
}

TEST(TaskSpec, RecordsAnAbsolutePathForARelativeFile) {
    TempDir dir;
    write_text(dir.path + "/t.toml", kValidTask);
    const std::filesystem::path cwd = std::filesystem::current_path();
    std::filesystem::current_path(dir.path);
    Result<TaskSpec> task = load_task("./t.toml");
    std::filesystem::current_path(cwd);
    ASSERT_TRUE(task) << task.error();
    EXPECT_TRUE(std::filesystem::path(task->file).is_absolute()) << task->file;
    EXPECT_EQ(task->file, (std::filesystem::path(dir.path) / "t.toml").lexically_normal().string());
}

TEST(TaskSpec, EveryShippedSuiteLoads) {
    for (const char* suite_name : {"default", "test"}) {
        Result<Suite> suite = load_suite(suite_name, testing::project_root() + "/tasks");
        ASSERT_TRUE(suite) << suite.error();
        for (const TaskSpec& t : suite->tasks) {
            Result<TokenSplit> split = make_task_data(t);
            EXPECT_TRUE(split) << split.error();
        }
    }
}

TEST(TaskSpec, ReportsWhatIsWrong) {
    EXPECT_NE(load_error("[task\nname=").find("TOML parse error at line 1"), std::string::npos);
    EXPECT_NE(load_error(replace(kValidTask, "[train]\nbatch = 2", "[train]\n"))
                  .find("missing key [train] batch"),
              std::string::npos);
    EXPECT_NE(load_error(replace(kValidTask, "heads = 2", "heads = 3")).find("heads must divide"),
              std::string::npos);
    EXPECT_NE(
        load_error(replace(kValidTask, "steps = 3", "steps = \"3\"")).find("must be an integer"),
        std::string::npos);
    EXPECT_NE(
        load_error(replace(kValidTask, "kind = \"synthetic\"", "kind = \"web\"")).find("data.kind"),
        std::string::npos);
    EXPECT_NE(load_error(replace(kValidTask, "[model]", "[modle]")).find("missing section [model]"),
              std::string::npos);
    EXPECT_NE(load_error(replace(kValidTask, "tokens = 5000", "tokens = 20")).find("data.tokens"),
              std::string::npos);
    Result<TaskSpec> missing = load_task("/nonexistent/task.toml");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().find("does not exist"), std::string::npos);
}

TEST(TaskSpec, TextDataIsByteLevelAndResolvedNextToTheTask) {
    TempDir dir;
    std::string text;
    for (int i = 0; i < 400; i++) text += "the quick brown fox jumps over the lazy dog. ";
    write_text(dir.path + "/corpus.txt", text);
    std::string task_text =
        replace(replace(kValidTask, "vocab_size = 32", "vocab_size = 256"),
                "kind = \"synthetic\"\ntokens = 5000", "kind = \"text\"\npath = \"corpus.txt\"");
    write_text(dir.path + "/t.toml", task_text);
    Result<TaskSpec> task = load_task(dir.path + "/t.toml");
    ASSERT_TRUE(task) << task.error();
    Result<TokenSplit> split = make_task_data(*task);
    ASSERT_TRUE(split) << split.error();
    EXPECT_EQ(split->train.size() + split->heldout.size(), text.size());
    EXPECT_EQ(split->train[0], 't');
}

// A text task over `files` (written into dir), pinned to `sha256` when it is not empty.
std::string multi_file_task(const std::vector<std::string>& files, const std::string& sha256) {
    std::string paths;
    for (const std::string& f : files) paths += (paths.empty() ? "\"" : ", \"") + f + "\"";
    std::string data = "kind = \"text\"\npaths = [" + paths + "]";
    if (!sha256.empty()) data += "\nsha256 = \"" + sha256 + "\"";
    return replace(replace(kValidTask, "vocab_size = 32", "vocab_size = 256"),
                   "kind = \"synthetic\"\ntokens = 5000", data);
}

TEST(TaskSpec, TextDataConcatenatesSeveralFilesPinnedByTheirSha256) {
    TempDir dir;
    std::string a, b;
    for (int i = 0; i < 300; i++) a += "the quick brown fox jumps over the lazy dog. ";
    for (int i = 0; i < 300; i++) b += "pack my box with five dozen liquor jugs. ";
    write_text(dir.path + "/a.txt", a);
    write_text(dir.path + "/sub/b.txt", b);
    const std::string pin = sha256_hex(a + b);
    write_text(dir.path + "/t.toml", multi_file_task({"a.txt", "sub/b.txt"}, pin));
    Result<TaskSpec> task = load_task(dir.path + "/t.toml");
    ASSERT_TRUE(task) << task.error();
    ASSERT_EQ(task->data.paths.size(), 2u);
    EXPECT_EQ(task->data.paths[1], dir.path + "/sub/b.txt");  // resolved next to the task file
    EXPECT_EQ(task->data.path, dir.path + "/a.txt");
    EXPECT_EQ(task->data.sha256, pin);
    Result<TokenSplit> split = make_task_data(*task);
    ASSERT_TRUE(split) << split.error();
    ASSERT_EQ(split->train.size() + split->heldout.size(), a.size() + b.size());
    EXPECT_EQ(split->train[a.size()], 'p');  // b follows a byte for byte
    EXPECT_EQ(split->heldout.back(), ' ');   // the held-out part is the tail of the last file

    // an uppercase pin is the same pin
    std::string upper = pin;
    for (char& c : upper) c = (char)toupper((unsigned char)c);
    write_text(dir.path + "/u.toml", multi_file_task({"a.txt", "sub/b.txt"}, upper));
    ASSERT_TRUE(load_task(dir.path + "/u.toml"));
}

TEST(TaskSpec, TextDataThatDiffersFromThePinIsRefusedNamingTheFiles) {
    TempDir dir;
    std::string a, b;
    for (int i = 0; i < 300; i++) a += "the quick brown fox jumps over the lazy dog. ";
    for (int i = 0; i < 300; i++) b += "pack my box with five dozen liquor jugs. ";
    write_text(dir.path + "/a.txt", a);
    write_text(dir.path + "/b.txt", b);
    const std::string pin = sha256_hex(a + b);
    write_text(dir.path + "/t.toml", multi_file_task({"a.txt", "b.txt"}, pin));
    Result<TaskSpec> task = load_task(dir.path + "/t.toml");
    ASSERT_TRUE(task) << task.error();
    ASSERT_TRUE(make_task_data(*task));

    // one byte changed
    write_text(dir.path + "/b.txt", b.substr(0, b.size() - 1) + "!");
    Result<TokenSplit> split = make_task_data(*task);
    ASSERT_FALSE(split);
    EXPECT_NE(split.error().find("differs from the text the task was calibrated on"),
              std::string::npos)
        << split.error();
    EXPECT_NE(split.error().find(dir.path + "/b.txt (" + std::to_string(b.size()) + " bytes"),
              std::string::npos)
        << split.error();
    EXPECT_NE(split.error().find(pin), std::string::npos);

    // a file missing
    std::filesystem::remove(dir.path + "/b.txt");
    split = make_task_data(*task);
    ASSERT_FALSE(split);
    EXPECT_NE(split.error().find(dir.path + "/b.txt is missing"), std::string::npos)
        << split.error();
    EXPECT_NE(split.error().find("calibrated on a text with sha256 " + pin), std::string::npos);

    // the same files in another order are another text
    write_text(dir.path + "/b.txt", b);
    write_text(dir.path + "/r.toml", multi_file_task({"b.txt", "a.txt"}, pin));
    Result<TaskSpec> reversed = load_task(dir.path + "/r.toml");
    ASSERT_TRUE(reversed) << reversed.error();
    EXPECT_FALSE(make_task_data(*reversed));
}

TEST(TaskSpec, BadTextDataKeys) {
    auto text_task = [](const std::string& data_keys) {
        return replace(replace(kValidTask, "vocab_size = 32", "vocab_size = 256"),
                       "kind = \"synthetic\"\ntokens = 5000", "kind = \"text\"\n" + data_keys);
    };
    auto error_of = [&](const std::string& data_keys) { return load_error(text_task(data_keys)); };
    const std::string bad_hex = "path = \"a\"\nsha256 = \"" + std::string(64, 'g') + "\"";
    EXPECT_NE(error_of("").find("needs [data] path"), std::string::npos);
    EXPECT_NE(error_of("path = \"a\"\npaths = [\"b\"]").find("both path and paths"),
              std::string::npos);
    EXPECT_NE(error_of("paths = []").find("array of 1 to 256"), std::string::npos);
    EXPECT_NE(error_of("paths = \"a\"").find("array of 1 to 256"), std::string::npos);
    EXPECT_NE(error_of("paths = [\"a\", 3]").find("non-empty strings"), std::string::npos);
    EXPECT_NE(error_of("path = 3").find("path must be a string"), std::string::npos);
    EXPECT_NE(error_of("path = \"a\"\nsha256 = \"abc\"").find("64 hex digits"), std::string::npos);
    EXPECT_NE(error_of(bad_hex).find("64 hex digits"), std::string::npos);
}

// The real-text suites read license texts every Debian system has (package base-files): the
// files are there and are the text the tasks were calibrated on.
TEST(TaskSpec, LicenseTasksFindTheirPinnedText) {
    for (const std::string file : {"text/licenses.toml", "text-test/licenses-tiny.toml"}) {
        Result<TaskSpec> task = load_task(testing::project_root() + "/tasks/" + file);
        ASSERT_TRUE(task) << task.error();
        EXPECT_EQ(task->data.paths.size(), 7u);
        EXPECT_FALSE(task->data.sha256.empty());
        Result<TokenSplit> split = make_task_data(*task);
        ASSERT_TRUE(split) << split.error();
        EXPECT_GE(split->train.size() + split->heldout.size(), 130000u);
        // the held-out tail lies inside the last file (MPL-2.0), not across a file boundary
        const auto last_size = std::filesystem::file_size(task->data.paths.back());
        EXPECT_LT(split->heldout.size(), last_size);
    }
}

TEST(TaskSpec, SuiteErrors) {
    Result<Suite> suite = load_suite("no-such-suite", testing::project_root() + "/tasks");
    ASSERT_FALSE(suite);
    EXPECT_NE(suite.error().find("no-such-suite"), std::string::npos);
    TempDir empty;
    suite = load_suite(empty.path, "/nonexistent");
    ASSERT_FALSE(suite);
    EXPECT_NE(suite.error().find("no *.toml"), std::string::npos);
}

TEST(Trainer, BadInputFailsWithAClearMessage) {
    TempDir dir;
    const std::string task = testing::project_root() + "/tasks/test/tiny.toml";
    auto train = [&](std::vector<std::string> args) {
        args.insert(args.begin(), TRAINOPT_TRAINER);
        return testing::run_command(args, dir.path + "/log");
    };
    auto r = train({"--task", task, "--data", dir.path + "/nodata", "--seed", "1", "--out",
                    dir.path + "/o", "--nonce", "x"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("cannot read token file"), std::string::npos) << r.output;

    r = train({"--task", dir.path + "/missing.toml", "--data", dir.path, "--seed", "1", "--out",
               dir.path + "/o", "--nonce", "x"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("does not exist"), std::string::npos) << r.output;

    r = train({"--task", task});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("required"), std::string::npos) << r.output;

    // a token file for another vocabulary
    std::filesystem::create_directories(dir.path + "/d");
    Status written = write_tokens(dir.path + "/d/train.bin", std::vector<int>(500, 3), 128);
    ASSERT_TRUE(written) << written.error();
    r = train({"--task", task, "--data", dir.path + "/d", "--seed", "1", "--out", dir.path + "/o",
               "--nonce", "x"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("vocab 128"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace trainopt
