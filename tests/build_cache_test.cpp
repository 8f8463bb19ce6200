// The build cache's parts without a build (harness/build_cache.h, harness/tree_digest.h): the
// tree digest sees every change and refuses links and special files; entries are found, missed,
// distrusted and removed when corrupt or tampered with; unsafe cache directories are refused;
// pruning keeps the most recently used; racing writers and readers never see half an entry.
#include "harness/build_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <thread>

#include "harness/tree_digest.h"
#include "scoring/report.h"
#include "tasks/sha256.h"
#include "test_util.h"

namespace trainopt {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::TempDir;
using testing::write_text;

// A small tree like a scratch tree: nested directories and files.
void make_tree(const std::string& root) {
    write_text(root + "/CMakeLists.txt", "project(x)\n");
    write_text(root + "/kernels/a.cpp", "int a() { return 1; }\n");
    write_text(root + "/kernels/deep/b.h", "#pragma once\n");
    write_text(root + "/baseline/train.cpp", "int main() {}\n");
}

std::string digest(const std::string& root) {
    Result<std::string> d = digest_tree(root);
    EXPECT_TRUE(d) << (d ? "" : d.error());
    return d ? *d : "";
}

TEST(TreeDigest, SameTreeSameDigestAndEveryChangeShows) {
    TempDir dir;
    const std::string a = dir.path + "/a", b = dir.path + "/b";
    make_tree(a);
    make_tree(b);
    const std::string base = digest(a);
    EXPECT_EQ(base.size(), 64u);
    EXPECT_EQ(digest(b), base);  // contents, not inodes, times or creation order

    write_text(b + "/kernels/a.cpp", "int a() { return 2; }\n");
    EXPECT_NE(digest(b), base) << "content";
    write_text(b + "/kernels/a.cpp", "int a() { return 1; }\n");
    EXPECT_EQ(digest(b), base);

    fs::permissions(b + "/kernels/a.cpp", fs::perms::owner_exec, fs::perm_options::add);
    EXPECT_NE(digest(b), base) << "mode";
    fs::permissions(b + "/kernels/a.cpp", fs::perms::owner_exec, fs::perm_options::remove);
    EXPECT_EQ(digest(b), base);

    fs::rename(b + "/kernels/a.cpp", b + "/kernels/c.cpp");
    EXPECT_NE(digest(b), base) << "name";
    fs::rename(b + "/kernels/c.cpp", b + "/kernels/a.cpp");

    fs::create_directory(b + "/kernels/empty");
    EXPECT_NE(digest(b), base) << "an empty directory";
    fs::remove(b + "/kernels/empty");

    // the same bytes split differently between a name and a content are different trees
    write_text(b + "/kernels/x", "");
    const std::string with_x = digest(b);
    fs::remove(b + "/kernels/x");
    write_text(b + "/kernels/x\nf 0644 0", "");
    EXPECT_NE(digest(b), with_x);
    fs::remove(b + "/kernels/x\nf 0644 0");
    EXPECT_EQ(digest(b), base);
}

TEST(TreeDigest, RefusesLinksAndSpecialFilesWithoutFollowingOrBlocking) {
    TempDir dir;
    const std::string root = dir.path + "/t";
    make_tree(root);
    fs::create_symlink("/etc/passwd", root + "/kernels/link.cpp");
    Result<std::string> d = digest_tree(root);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().find("kernels/link.cpp is a link"), std::string::npos) << d.error();
    fs::remove(root + "/kernels/link.cpp");

    fs::create_directory_symlink("/etc", root + "/kernels/dir");
    d = digest_tree(root);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().find("kernels/dir is a link"), std::string::npos) << d.error();
    fs::remove(root + "/kernels/dir");

    ASSERT_EQ(mkfifo((root + "/baseline/fifo").c_str(), 0644), 0);
    d = digest_tree(root);  // a FIFO nobody writes: refused, not waited on
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().find("baseline/fifo is a FIFO"), std::string::npos) << d.error();
    fs::remove(root + "/baseline/fifo");
    EXPECT_TRUE(digest_tree(root));

    // the root itself must not be a link either
    fs::create_directory_symlink(root, dir.path + "/root-link");
    EXPECT_FALSE(digest_tree(dir.path + "/root-link"));
}

TEST(TreeDigest, RefusesTreesBeyondItsLimits) {
    TempDir dir;
    const std::string root = dir.path + "/t";
    make_tree(root);
    TreeDigestLimits small;
    small.max_file_bytes = 16;
    Result<std::string> d = digest_tree(root, small);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().find("more than the 16 allowed"), std::string::npos) << d.error();

    TreeDigestLimits few;
    few.max_entries = 3;
    EXPECT_FALSE(digest_tree(root, few));

    TreeDigestLimits shallow;
    shallow.max_depth = 1;
    d = digest_tree(root, shallow);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().find("kernels/deep"), std::string::npos) << d.error();
}

TEST(BuildCacheKey, EveryPartChangesTheKey) {
    BuildKeyInputs in{"tree", "recipe", "toolchain", "machine", "trainopt", "trusted"};
    const std::string base = build_cache_key(in);
    EXPECT_EQ(base.size(), 64u);
    EXPECT_EQ(build_cache_key(in), base);
    for (std::string BuildKeyInputs::*part :
         {&BuildKeyInputs::tree_sha256, &BuildKeyInputs::recipe, &BuildKeyInputs::toolchain,
          &BuildKeyInputs::machine, &BuildKeyInputs::trainopt_sha256,
          &BuildKeyInputs::trusted_inputs}) {
        BuildKeyInputs changed = in;
        changed.*part += "x";
        EXPECT_NE(build_cache_key(changed), base);
    }
    // parts are length-prefixed: moving bytes from one part to the next changes the key
    BuildKeyInputs moved = in;
    moved.tree_sha256 = "treer";
    moved.recipe = "ecipe";
    EXPECT_NE(build_cache_key(moved), base);
    // the real identities are not empty and stable within a process
    EXPECT_NE(toolchain_identity().find("cmake "), std::string::npos);
    EXPECT_EQ(toolchain_identity(), toolchain_identity());
    EXPECT_NE(machine_identity().find("arch "), std::string::npos);
}

// A cache in a fresh directory and a "private directory" holding a fake trainer.
struct CacheFixture {
    TempDir dir;
    std::string cache_dir = dir.path + "/cache";
    std::string private_dir = dir.path + "/private";
    std::string binary = private_dir + "/trainopt-train";
    std::string key = sha256_hex("some build");

    CacheFixture() {
        fs::create_directories(private_dir);
        write_text(binary, std::string("\x7f"
                                       "ELF fake trainer\0with a NUL",
                                       27));
    }
    BuildCache open() {
        Result<BuildCache> c = open_build_cache(cache_dir);
        EXPECT_TRUE(c) << (c ? "" : c.error());
        return c ? std::move(*c) : BuildCache{};
    }
    std::string entry() const { return cache_dir + "/" + key; }
    std::string dest(int i) const { return private_dir + "/copy" + std::to_string(i); }
};

mode_t mode_of(const std::string& path) {
    struct stat st;
    EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
}

TEST(BuildCache, StoredBuildIsFoundAndCopiedOtherKeysMiss) {
    CacheFixture f;
    BuildCache cache = f.open();
    EXPECT_EQ(mode_of(f.cache_dir), 0700u);  // created private
    Result<CacheLookup> miss = lookup_build(cache, f.key, f.dest(0));
    ASSERT_TRUE(miss);
    EXPECT_FALSE(miss->hit);
    EXPECT_TRUE(miss->distrusted.empty());
    EXPECT_FALSE(fs::exists(f.dest(0)));

    ASSERT_TRUE(store_build(cache, f.key, f.binary, 12.5));
    EXPECT_EQ(mode_of(f.entry()), 0700u);
    EXPECT_EQ(mode_of(f.entry() + "/trainopt-train"), 0600u);  // not a program in the cache
    EXPECT_EQ(mode_of(f.entry() + "/manifest.json"), 0600u);
    nlohmann::json manifest = testing::read_json(f.entry() + "/manifest.json");
    EXPECT_EQ(manifest["key"], f.key);
    EXPECT_EQ(manifest["binary_sha256"], sha256_hex(read_text(f.binary)));
    EXPECT_EQ(manifest["binary_bytes"], 27);
    EXPECT_EQ(manifest["build_seconds"], 12.5);

    Result<CacheLookup> hit = lookup_build(cache, f.key, f.dest(1));
    ASSERT_TRUE(hit);
    ASSERT_TRUE(hit->hit);
    EXPECT_EQ(hit->hit->build_seconds, 12.5);
    EXPECT_EQ(read_text(f.dest(1)), read_text(f.binary));
    EXPECT_EQ(mode_of(f.dest(1)), 0755u);

    Result<CacheLookup> other = lookup_build(cache, sha256_hex("another build"), f.dest(2));
    ASSERT_TRUE(other);
    EXPECT_FALSE(other->hit);
    EXPECT_FALSE(fs::exists(f.dest(2)));
    // nothing but the entry is left in the cache (no temporary directories)
    size_t names = 0;
    for (const auto& e : fs::directory_iterator(f.cache_dir)) names += (void(e), 1);
    EXPECT_EQ(names, 1u);
}

// Each way an entry can be damaged or tampered with: never trusted, removed, and no copy made.
TEST(BuildCache, CorruptOrTamperedEntriesAreRemovedNotTrusted) {
    struct Damage {
        const char* what;
        std::function<void(const std::string& entry)> apply;
        const char* reason;
    };
    const std::vector<Damage> damages = {
        {"a flipped byte",
         [](const std::string& e) {
             std::string b = read_text(e + "/trainopt-train");
             b[5] ^= 1;
             write_text(e + "/trainopt-train", b);
         },
         "SHA-256"},
        {"a truncated binary",
         [](const std::string& e) { fs::resize_file(e + "/trainopt-train", 3); },
         "bytes, its manifest says"},
        {"a binary and manifest swapped for another binary's, the key kept",
         [](const std::string& e) {
             std::string evil = "evil trainer";
             write_text(e + "/trainopt-train", evil);
             nlohmann::json m = testing::read_json(e + "/manifest.json");
             m["binary_sha256"] = sha256_hex(evil);
             m["binary_bytes"] = evil.size();
             write_text(e + "/manifest.json", m.dump());
         },
         nullptr},  // consistent: what only this user can do (docs/security.md)
        {"a manifest for another key",
         [](const std::string& e) {
             nlohmann::json m = testing::read_json(e + "/manifest.json");
             m["key"] = sha256_hex("other");
             write_text(e + "/manifest.json", m.dump());
         },
         "another key"},
        {"a date holding an escape sequence",
         [](const std::string& e) {
             nlohmann::json m = testing::read_json(e + "/manifest.json");
             m["created_at"] = "2026\x1b[2J";
             write_text(e + "/manifest.json", m.dump());
         },
         "impossible date"},
        {"a garbled manifest", [](const std::string& e) { write_text(e + "/manifest.json", "{"); },
         "not JSON"},
        {"a missing binary", [](const std::string& e) { fs::remove(e + "/trainopt-train"); },
         "trainopt-train is missing"},
        {"the binary a link to another file",
         [](const std::string& e) {
             std::string copy = e + "/../elsewhere";
             fs::copy_file(e + "/trainopt-train", copy);
             fs::remove(e + "/trainopt-train");
             fs::create_symlink(copy, e + "/trainopt-train");
         },
         "trainopt-train is a link"},
        {"the binary a FIFO",
         [](const std::string& e) {
             fs::remove(e + "/trainopt-train");
             mkfifo((e + "/trainopt-train").c_str(), 0600);
         },
         "not a regular file"},
        {"a group-writable binary",
         [](const std::string& e) { chmod((e + "/trainopt-train").c_str(), 0660); },
         "writable by its group"},
        {"a world-writable entry", [](const std::string& e) { chmod(e.c_str(), 0777); },
         "writable by its group"},
        {"the entry a link to a copy of itself",
         [](const std::string& e) {
             fs::rename(e, e + ".real");
             fs::create_directory_symlink(e + ".real", e);
         },
         "link or a file"},
    };
    for (const Damage& d : damages) {
        SCOPED_TRACE(d.what);
        CacheFixture f;
        BuildCache cache = f.open();
        ASSERT_TRUE(store_build(cache, f.key, f.binary, 1));
        d.apply(f.entry());
        Result<CacheLookup> found = lookup_build(cache, f.key, f.dest(0));
        ASSERT_TRUE(found);
        if (d.reason == nullptr) {
            // consistent tampering by this user passes the checks: the entry is what it says
            EXPECT_TRUE(found->hit);
            continue;
        }
        EXPECT_FALSE(found->hit);
        EXPECT_NE(found->distrusted.find(d.reason), std::string::npos) << found->distrusted;
        EXPECT_FALSE(fs::exists(fs::symlink_status(f.entry()))) << "the entry was not removed";
        EXPECT_FALSE(fs::exists(f.dest(0))) << "a distrusted binary was copied";
        if (fs::exists(f.entry() + ".real")) {  // a link is removed, never what it points to
            EXPECT_TRUE(fs::exists(f.entry() + ".real/trainopt-train"));
        }
        // a fresh build can be stored again and is found
        ASSERT_TRUE(store_build(cache, f.key, f.binary, 1));
        Result<CacheLookup> again = lookup_build(cache, f.key, f.dest(1));
        ASSERT_TRUE(again);
        EXPECT_TRUE(again->hit);
    }
}

TEST(BuildCache, UnsafeCacheDirectoriesAreRefused) {
    TempDir dir;
    const std::string real = dir.path + "/real";
    fs::create_directories(real);
    chmod(real.c_str(), 0700);
    ASSERT_TRUE(open_build_cache(real));

    fs::create_directory_symlink(real, dir.path + "/link");
    Result<BuildCache> c = open_build_cache(dir.path + "/link");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().find("is a symbolic link"), std::string::npos) << c.error();
    // a trailing slash does not make the link followed
    EXPECT_FALSE(open_build_cache(dir.path + "/link/"));

    chmod(real.c_str(), 0770);
    c = open_build_cache(real);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().find("writable by its group or by everyone"), std::string::npos)
        << c.error();
    chmod(real.c_str(), 0700);

    // a parent others can write (no sticky bit) lets them swap the cache for their own
    const std::string open_parent = dir.path + "/shared";
    fs::create_directories(open_parent + "/cache");
    chmod(open_parent.c_str(), 0777);
    c = open_build_cache(open_parent + "/cache");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().find("which others can write"), std::string::npos) << c.error();
    chmod(open_parent.c_str(), 01777);  // sticky, like /tmp: fine
    EXPECT_TRUE(open_build_cache(open_parent + "/cache"));

    write_text(dir.path + "/file", "x");
    c = open_build_cache(dir.path + "/file");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().find("not a directory"), std::string::npos) << c.error();

    // missing parents are created, private
    ASSERT_TRUE(open_build_cache(dir.path + "/new/a/b"));
    EXPECT_EQ(mode_of(dir.path + "/new/a/b"), 0700u);
    EXPECT_EQ(mode_of(dir.path + "/new"), 0700u);

    if (geteuid() != 0) GTEST_SKIP() << "changing owners needs root";
    const std::string theirs = dir.path + "/theirs";
    fs::create_directories(theirs);
    chmod(theirs.c_str(), 0700);
    ASSERT_EQ(chown(theirs.c_str(), 65534, 65534), 0);
    c = open_build_cache(theirs);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().find("is owned by uid 65534"), std::string::npos) << c.error();
    // ... and a cache of ours inside a directory of theirs
    fs::create_directories(theirs + "/mine");
    chmod((theirs + "/mine").c_str(), 0700);
    c = open_build_cache(theirs + "/mine");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().find("which is owned by uid 65534"), std::string::npos) << c.error();
    // a path through someone else's directory, by a link of theirs or ours, to a safe place: the
    // link's owner could point it anywhere (root with HOME in an agent's home directory)
    const std::string safe = dir.path + "/safe";
    fs::create_directories(safe);
    chmod(safe.c_str(), 0700);
    fs::create_directory_symlink(safe, theirs + "/link");
    c = open_build_cache(theirs + "/link/cache");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().find("which is owned by uid 65534"), std::string::npos) << c.error();
    EXPECT_FALSE(fs::exists(safe + "/cache")) << "created before it was refused";
    fs::create_directory_symlink(safe, dir.path + "/their-link");
    ASSERT_EQ(lchown((dir.path + "/their-link").c_str(), 65534, 65534), 0);
    c = open_build_cache(dir.path + "/their-link/cache");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().find("their-link, which is owned by uid 65534"), std::string::npos)
        << c.error();
    EXPECT_FALSE(fs::exists(safe + "/cache"));
    // the same link, ours: fine (a home directory on another disk)
    fs::create_directory_symlink(safe, dir.path + "/our-link");
    EXPECT_TRUE(open_build_cache(dir.path + "/our-link/cache"));
    // a link of ours into someone else's directory: where it leads is checked too
    fs::create_directory_symlink(theirs, dir.path + "/into-theirs");
    c = open_build_cache(dir.path + "/into-theirs/cache");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().find("which is owned by uid 65534"), std::string::npos) << c.error();
}

// An entry whose owner is someone else (root's cache holding a file another user made).
TEST(BuildCache, EntriesOfOtherUsersAreNotTrusted) {
    if (geteuid() != 0) GTEST_SKIP() << "changing owners needs root";
    CacheFixture f;
    BuildCache cache = f.open();
    ASSERT_TRUE(store_build(cache, f.key, f.binary, 1));
    ASSERT_EQ(chown((f.entry() + "/trainopt-train").c_str(), 65534, 65534), 0);
    Result<CacheLookup> found = lookup_build(cache, f.key, f.dest(0));
    ASSERT_TRUE(found);
    EXPECT_FALSE(found->hit);
    EXPECT_NE(found->distrusted.find("owned by uid 65534"), std::string::npos) << found->distrusted;
}

void set_mtime(const std::string& path, time_t t) {
    timespec times[2] = {{t, 0}, {t, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

TEST(BuildCache, PruningKeepsTheMostRecentlyUsedAndRemovesLeftovers) {
    CacheFixture f;
    BuildCache cache = f.open();
    std::vector<std::string> keys;
    const time_t now = time(nullptr);
    for (int i = 0; i < 5; i++) {
        keys.push_back(sha256_hex("build " + std::to_string(i)));
        ASSERT_TRUE(store_build(cache, keys.back(), f.binary, 1));
        set_mtime(f.cache_dir + "/" + keys.back(), now - 1000 + i);  // 4 is the newest
    }
    // using the oldest makes it the newest
    Result<CacheLookup> used = lookup_build(cache, keys[0], f.dest(0));
    ASSERT_TRUE(used && used->hit);
    // a killed writer's temporary directory, an old one and a fresh one (a writer at work)
    fs::create_directories(f.cache_dir + "/.tmp-old/x");
    set_mtime(f.cache_dir + "/.tmp-old", now - 7200);
    fs::create_directories(f.cache_dir + "/.tmp-fresh");
    write_text(f.cache_dir + "/README", "not the cache's: left alone\n");
    write_text(f.cache_dir + "/" + sha256_hex("a file"), "named like an entry, not one\n");
    fs::create_directories(f.cache_dir + "/" + sha256_hex("a directory") + "/x");

    prune_build_cache(cache, 3, (size_t)1 << 30);
    auto present = [&](const std::string& name) {
        return fs::exists(fs::symlink_status(f.cache_dir + "/" + name));
    };
    EXPECT_TRUE(present(keys[0]));
    EXPECT_FALSE(present(keys[1]));
    EXPECT_FALSE(present(keys[2]));
    EXPECT_TRUE(present(keys[3]));
    EXPECT_TRUE(present(keys[4]));
    EXPECT_FALSE(present(".tmp-old"));
    EXPECT_TRUE(present(".tmp-fresh"));
    EXPECT_TRUE(present("README"));
    EXPECT_TRUE(present(sha256_hex("a file")));
    EXPECT_TRUE(present(sha256_hex("a directory")));

    // the byte bound: room for two entries' files
    const size_t entry_bytes = fs::file_size(f.cache_dir + "/" + keys[4] + "/trainopt-train") +
                               fs::file_size(f.cache_dir + "/" + keys[4] + "/manifest.json");
    prune_build_cache(cache, 10, 2 * entry_bytes + 1);
    EXPECT_TRUE(present(keys[0]));
    EXPECT_FALSE(present(keys[3]));
    EXPECT_TRUE(present(keys[4]));
}

// Writers storing the same and different keys and readers looking them up, all at once: every
// hit is whole and holds the binary of its own key.
TEST(BuildCache, RacingWritersAndReadersNeverSeeHalfAnEntry) {
    CacheFixture f;
    constexpr int kKeys = 3, kThreads = 4, kRounds = 15;
    std::vector<std::string> keys, binaries;
    for (int k = 0; k < kKeys; k++) {
        keys.push_back(sha256_hex("race " + std::to_string(k)));
        binaries.push_back(f.private_dir + "/bin" + std::to_string(k));
        write_text(binaries.back(), std::string(100000 + k, (char)('a' + k)));
    }
    std::atomic<int> bad{0}, hits{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
        threads.emplace_back([&, t] {
            Result<BuildCache> cache = open_build_cache(f.cache_dir);
            if (!cache) {
                bad++;
                return;
            }
            for (int r = 0; r < kRounds; r++) {
                const int k = (t + r) % kKeys;
                if (!store_build(*cache, keys[k], binaries[k], 1)) bad++;
                const std::string dest =
                    f.private_dir + "/t" + std::to_string(t) + "-" + std::to_string(r);
                Result<CacheLookup> found = lookup_build(*cache, keys[(k + 1) % kKeys], dest);
                if (!found || !found->distrusted.empty()) bad++;
                if (found && found->hit) {
                    hits++;
                    if (read_text(dest) != read_text(binaries[(k + 1) % kKeys])) bad++;
                }
                // two entries at most: pruning races with the writers
                prune_build_cache(*cache, 2, (size_t)1 << 30);
            }
        });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(bad, 0);
    EXPECT_GT(hits, 0);
    for (const auto& e : fs::directory_iterator(f.cache_dir)) {
        const std::string name = e.path().filename().string();
        EXPECT_NE(name.rfind(".tmp-", 0), 0u) << "a temporary directory was left: " << name;
    }
}

TEST(BuildCacheReport, BuildInfoIsWrittenAndOldReportsReadAsBuiltOnTheSpot) {
    ScoreReport r;
    r.submission = "s.patch";
    r.submission_kind = "patch";
    r.build.from_cache = true;
    r.build.cache_key = sha256_hex("k");
    r.build.seconds = 88.5;
    r.build.built_at = "2026-01-02T03:04:05Z";
    nlohmann::json j = report_to_json(r);
    EXPECT_EQ(j["submission"]["build"]["from_cache"], true);
    Result<ScoreReport> back = report_from_json(j);
    ASSERT_TRUE(back) << back.error();
    EXPECT_TRUE(back->build.from_cache);
    EXPECT_EQ(back->build.cache_key, r.build.cache_key);
    EXPECT_EQ(back->build.seconds, 88.5);
    EXPECT_EQ(back->build.built_at, r.build.built_at);

    j["submission"].erase("build");  // a report from before the cache
    back = report_from_json(j);
    ASSERT_TRUE(back) << back.error();
    EXPECT_FALSE(back->build.from_cache);
    EXPECT_EQ(back->build.cache_key, "");
}

}  // namespace
}  // namespace trainopt
