// The baseline cache's parts without a run (harness/baseline_cache.h): the key changes with every
// input; a stored reference comes back exactly; damaged or tampered entries are rejected,
// removed, and stored again afterwards; an entry for another task's shape is not used; unsafe
// cache directories (a symbolic link, one others can write) are refused. The CLI's use of it is
// in baseline_cache_e2e_test.cpp.
#include "harness/baseline_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>

#include "contract/model_layout.h"
#include "scoring/report.h"
#include "tasks/sha256.h"
#include "test_util.h"

namespace trainopt {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::TempDir;
using testing::write_text;

TaskSpec tiny_task() {
    Result<TaskSpec> task = load_task(testing::project_root() + "/tasks/test/tiny.toml");
    EXPECT_TRUE(task) << (task ? "" : task.error());
    return task ? *task : TaskSpec{};
}

// Outputs of the task's shape, distinct values everywhere.
RunOutputs outputs_of(const TaskSpec& task, float offset) {
    RunOutputs out;
    for (int s = 0; s < task.train.steps; s++) out.losses.push_back(4.0f - 0.01f * s + offset);
    const GPTConfig config = gpt_config_of(task);
    out.checkpoint.config = config;
    out.checkpoint.steps = task.train.steps;
    for (size_t i = 0; i < num_parameters(config); i++)
        out.checkpoint.params.push_back(std::sin((float)i) + offset);
    return out;
}

BaselineKeyInputs some_inputs() {
    BaselineKeyInputs in;
    in.trusted_inputs = "manifest";
    in.trainopt_sha256 = sha256_hex("trainopt");
    in.machine = "arch x86_64\nflags avx2\n";
    in.task_file_sha256 = sha256_hex("[task]");
    in.train_sha256 = sha256_hex("tokens");
    in.seed = 5;
    in.threads = 2;
    return in;
}

TEST(BaselineCache, KeyChangesWithEveryInput) {
    const BaselineKeyInputs in = some_inputs();
    const std::string base = baseline_cache_key(in);
    EXPECT_EQ(base.size(), 64u);
    EXPECT_EQ(baseline_cache_key(in), base);
    const std::vector<std::function<void(BaselineKeyInputs&)>> changes = {
        [](BaselineKeyInputs& k) { k.trusted_inputs += "x"; },
        [](BaselineKeyInputs& k) { k.trainopt_sha256 = sha256_hex("another trainopt"); },
        [](BaselineKeyInputs& k) { k.machine += "avx512f\n"; },
        [](BaselineKeyInputs& k) { k.task_file_sha256 = sha256_hex("[task] steps = 20"); },
        [](BaselineKeyInputs& k) { k.train_sha256 = sha256_hex("other tokens"); },
        [](BaselineKeyInputs& k) { k.seed = 6; },
        [](BaselineKeyInputs& k) { k.threads = 1; },
    };
    for (size_t i = 0; i < changes.size(); i++) {
        BaselineKeyInputs changed = in;
        changes[i](changed);
        EXPECT_NE(baseline_cache_key(changed), base) << "change " << i;
    }
    // the parts are length-prefixed: text moved from one part to the next is another key
    BaselineKeyInputs moved = in;
    moved.trusted_inputs = "manifes";
    moved.trainopt_sha256 = "t" + moved.trainopt_sha256;
    EXPECT_NE(baseline_cache_key(moved), base);
}

TEST(BaselineCache, KeyInputsFollowTheTaskFileTheTokensTheSeedAndTheThreads) {
    TempDir dir;
    write_text(dir.path + "/task.toml", "[task]\nname = \"a\"\n");
    const std::vector<int> tokens = {1, 2, 3};
    Result<BaselineKeyInputs> a = baseline_key_inputs(dir.path + "/task.toml", tokens, 5, 2);
    ASSERT_TRUE(a) << a.error();
    const std::string key = baseline_cache_key(*a);
    write_text(dir.path + "/task.toml", "[task]\nname = \"b\"\n");
    Result<BaselineKeyInputs> b = baseline_key_inputs(dir.path + "/task.toml", tokens, 5, 2);
    ASSERT_TRUE(b);
    EXPECT_NE(baseline_cache_key(*b), key);
    Result<BaselineKeyInputs> c = baseline_key_inputs(dir.path + "/task.toml", {1, 2, 4}, 5, 2);
    ASSERT_TRUE(c);
    EXPECT_NE(c->train_sha256, b->train_sha256);
    // a task file behind a link is not read
    fs::create_symlink(dir.path + "/task.toml", dir.path + "/link.toml");
    EXPECT_FALSE(baseline_key_inputs(dir.path + "/link.toml", tokens, 5, 2));
}

struct CacheFixture {
    TempDir dir;
    std::string cache_dir = dir.path + "/baselines";
    std::string key = baseline_cache_key(some_inputs());
    TaskSpec task = tiny_task();

    CacheDir open() {
        Result<CacheDir> c = open_baseline_cache(cache_dir);
        EXPECT_TRUE(c) << (c ? "" : c.error());
        return c ? std::move(*c) : CacheDir{};
    }
    std::string entry() const { return cache_dir + "/" + key; }
};

mode_t mode_of(const std::string& path) {
    struct stat st;
    EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
}

TEST(BaselineCache, StoredReferenceComesBackExactlyOtherKeysMiss) {
    CacheFixture f;
    CacheDir cache = f.open();
    EXPECT_EQ(mode_of(f.cache_dir), 0700u);
    BaselineLookup miss = lookup_baseline(cache, f.key, f.task);
    EXPECT_FALSE(miss.hit);
    EXPECT_TRUE(miss.distrusted.empty());

    const RunOutputs stored = outputs_of(f.task, 0.5f);
    Result<bool> put = store_baseline(cache, f.key, f.task, 5, stored);
    ASSERT_TRUE(put) << put.error();
    EXPECT_TRUE(*put);
    EXPECT_EQ(mode_of(f.entry()), 0700u);
    EXPECT_EQ(mode_of(f.entry() + "/reference.bin"), 0600u);
    const nlohmann::json manifest = testing::read_json(f.entry() + "/manifest.json");
    EXPECT_EQ(manifest["key"], f.key);
    EXPECT_EQ(manifest["task"], "tiny");
    EXPECT_EQ(manifest["seed"], 5);
    EXPECT_EQ(manifest["reference_sha256"], sha256_hex(read_text(f.entry() + "/reference.bin")));

    BaselineLookup hit = lookup_baseline(cache, f.key, f.task);
    ASSERT_TRUE(hit.hit) << hit.distrusted;
    EXPECT_EQ(hit.hit->losses, stored.losses);  // bit for bit
    EXPECT_EQ(hit.hit->checkpoint.params, stored.checkpoint.params);
    EXPECT_EQ(hit.hit->checkpoint.steps, f.task.train.steps);
    EXPECT_FALSE(hit.created_at.empty());

    EXPECT_FALSE(lookup_baseline(cache, baseline_cache_key(BaselineKeyInputs{}), f.task).hit);
    // a second store of the same key keeps the first entry
    Result<bool> again = store_baseline(cache, f.key, f.task, 5, outputs_of(f.task, 1.0f));
    ASSERT_TRUE(again);
    EXPECT_FALSE(*again);
    EXPECT_EQ(lookup_baseline(cache, f.key, f.task).hit->losses, stored.losses);
}

// Each way an entry can be damaged or tampered with: rejected, removed, and the next store of the
// recomputed reference is found again.
TEST(BaselineCache, CorruptedEntriesAreRejectedRemovedAndRecomputed) {
    struct Damage {
        const char* what;
        std::function<void(const std::string& entry)> apply;
        const char* reason;
    };
    const std::vector<Damage> damages = {
        {"a flipped byte in the weights",
         [](const std::string& e) {
             std::string b = read_text(e + "/reference.bin");
             b[300] ^= 1;
             write_text(e + "/reference.bin", b);
         },
         "SHA-256"},
        {"a truncated reference",
         [](const std::string& e) { fs::resize_file(e + "/reference.bin", 1000); },
         "reference.bin"},
        {"a reference and manifest rewritten with a NaN loss",
         [](const std::string& e) {
             std::string b = read_text(e + "/reference.bin");
             const float nan = std::nanf("");
             memcpy(&b[b.size() - sizeof(float)], &nan, sizeof(float));
             write_text(e + "/reference.bin", b);
             nlohmann::json m = testing::read_json(e + "/manifest.json");
             m["reference_sha256"] = sha256_hex(b);
             write_text(e + "/manifest.json", m.dump());
         },
         "NaN"},
        {"a manifest of another key",
         [](const std::string& e) {
             nlohmann::json m = testing::read_json(e + "/manifest.json");
             m["key"] = sha256_hex("another");
             write_text(e + "/manifest.json", m.dump());
         },
         "another key"},
        {"a manifest that is not JSON",
         [](const std::string& e) { write_text(e + "/manifest.json", "{not json"); }, "not JSON"},
        {"the reference replaced by a link",
         [](const std::string& e) {
             fs::rename(e + "/reference.bin", e + "/../elsewhere.bin");
             fs::create_symlink(e + "/../elsewhere.bin", e + "/reference.bin");
         },
         "link"},
        {"the entry replaced by a link to a copy",
         [](const std::string& e) {
             fs::rename(e, e + ".copy");
             fs::create_symlink(e + ".copy", e);
         },
         "link"},
        {"a reference made writable by everyone",
         [](const std::string& e) { chmod((e + "/reference.bin").c_str(), 0666); }, "writable"},
    };
    for (const Damage& d : damages) {
        SCOPED_TRACE(d.what);
        CacheFixture f;
        CacheDir cache = f.open();
        const RunOutputs stored = outputs_of(f.task, 0.25f);
        ASSERT_TRUE(store_baseline(cache, f.key, f.task, 5, stored));
        d.apply(f.entry());
        BaselineLookup found = lookup_baseline(cache, f.key, f.task);
        EXPECT_FALSE(found.hit);
        EXPECT_NE(found.distrusted.find(d.reason), std::string::npos) << found.distrusted;
        EXPECT_FALSE(fs::exists(fs::symlink_status(f.entry()))) << "the entry was removed";
        // the baseline runs again and its outputs are stored and found again
        Result<bool> restored = store_baseline(cache, f.key, f.task, 5, stored);
        ASSERT_TRUE(restored) << restored.error();
        EXPECT_TRUE(*restored);
        BaselineLookup again = lookup_baseline(cache, f.key, f.task);
        ASSERT_TRUE(again.hit) << again.distrusted;
        EXPECT_EQ(again.hit->losses, stored.losses);
    }
}

TEST(BaselineCache, AnEntryOfAnotherShapeIsNotUsed) {
    CacheFixture f;
    CacheDir cache = f.open();
    ASSERT_TRUE(store_baseline(cache, f.key, f.task, 5, outputs_of(f.task, 0)));
    TaskSpec longer = f.task;
    longer.train.steps += 1;
    BaselineLookup found = lookup_baseline(cache, f.key, longer);
    EXPECT_FALSE(found.hit);
    EXPECT_NE(found.distrusted.find("size"), std::string::npos) << found.distrusted;
    // outputs that are not of the task's shape are never stored
    EXPECT_FALSE(store_baseline(cache, f.key, longer, 5, outputs_of(f.task, 0)));
}

TEST(BaselineCache, UnsafeCacheDirectoriesAreRefused) {
    TempDir dir;
    const std::string real = dir.path + "/real";
    ASSERT_TRUE(open_baseline_cache(real));
    fs::create_symlink(real, dir.path + "/link");
    Result<CacheDir> linked = open_baseline_cache(dir.path + "/link");
    ASSERT_FALSE(linked);
    EXPECT_NE(linked.error().find("the baseline cache"), std::string::npos) << linked.error();
    EXPECT_NE(linked.error().find("symbolic link"), std::string::npos) << linked.error();

    chmod(real.c_str(), 0770);
    Result<CacheDir> shared = open_baseline_cache(real);
    ASSERT_FALSE(shared);
    EXPECT_NE(shared.error().find("writable by its group"), std::string::npos) << shared.error();

    const std::string open_parent = dir.path + "/open";
    fs::create_directories(open_parent);
    chmod(open_parent.c_str(), 0777);
    Result<CacheDir> below_open = open_baseline_cache(open_parent + "/cache");
    ASSERT_FALSE(below_open);
    EXPECT_NE(below_open.error().find("others can write"), std::string::npos) << below_open.error();
    EXPECT_FALSE(fs::exists(open_parent + "/cache")) << "nothing is created there";
}

// A verify report whose baseline outputs came from the cache: no baseline time, no speedup, and
// every rendering says why; it reads back as it was written.
TEST(BaselineCache, AReportOfACachedReferenceShowsNoSpeedupAndRoundTrips) {
    ScoreReport r;
    r.command = "verify";
    r.complete = true;
    r.reps = 1;
    TaskReport t;
    t.name = "tiny";
    t.seeds = {42};
    t.baseline_cached = true;
    t.submission_seconds = {0.5};
    t.baseline_final_loss = {2.0};
    t.submission_final_loss = {2.0};
    t.baseline_heldout_loss = {2.1};
    t.submission_heldout_loss = {2.1};
    r.tasks.push_back(t);
    finalize_report(r);
    EXPECT_EQ(r.verdict, Verdict::valid);
    EXPECT_EQ(r.tasks[0].speedup, 0);
    for (const std::string& text : {report_to_text(r), report_to_markdown(r)}) {
        EXPECT_NE(text.find("No speedup: the baseline's reference outputs were reused"),
                  std::string::npos)
            << text;
        EXPECT_NE(text.find("cached"), std::string::npos) << text;
        EXPECT_EQ(text.find("arithmetic mean"), std::string::npos) << text;
    }
    EXPECT_NE(report_to_html(r).find("No speedup"), std::string::npos);
    Result<ScoreReport> back = report_from_json(report_to_json(r));
    ASSERT_TRUE(back) << back.error();
    EXPECT_TRUE(back->tasks[0].baseline_cached);
    EXPECT_TRUE(back->tasks[0].baseline_seconds.empty());
    EXPECT_EQ(back->tasks[0].baseline_heldout_loss, std::vector<double>{2.1});
    // a report from before the field reads as a baseline that ran
    nlohmann::json old = report_to_json(r);
    old["tasks"][0].erase("baseline_cached");
    old["tasks"][0]["baseline_seconds"] = {1.0};
    Result<ScoreReport> earlier = report_from_json(old);
    ASSERT_TRUE(earlier) << earlier.error();
    EXPECT_FALSE(earlier->tasks[0].baseline_cached);
}

TEST(BaselineCache, DefaultsToASiblingOfTheBuildCache) {
    Result<std::string> dir = default_baseline_cache_dir();
    ASSERT_TRUE(dir) << dir.error();
    EXPECT_TRUE(dir->ends_with("/trainopt/baselines")) << *dir;
}

}  // namespace
}  // namespace trainopt
