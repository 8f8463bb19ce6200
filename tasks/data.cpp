#include "tasks/data.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "contract/rng.h"
#include "tasks/sha256.h"

namespace trainopt {

namespace fs = std::filesystem;

std::vector<int> generate_markov_corpus(int vocab, int order, int branching, int64_t tokens,
                                        uint64_t data_seed) {
    Rng rng(data_seed * 0xD1B54A32D192ED03ull + 7);
    // order 2 over a large vocabulary would need vocab^2 contexts; hash them into a fixed table
    const uint64_t num_contexts =
        order == 1 ? (uint64_t)vocab : std::min<uint64_t>((uint64_t)vocab * vocab, 1u << 16);
    std::vector<int> successors(num_contexts * branching);
    for (int& s : successors) s = (int)rng.next_below(vocab);

    std::vector<double> cumulative(branching);
    double total = 0.0;
    for (int i = 0; i < branching; i++) {
        total += 1.0 / (i + 1);
        cumulative[i] = total;
    }
    for (double& c : cumulative) c /= total;

    std::vector<int> out(tokens);
    int prev1 = 0, prev2 = 0;
    for (int64_t i = 0; i < tokens; i++) {
        uint64_t context =
            order == 1 ? (uint64_t)prev1 : ((uint64_t)prev2 * vocab + prev1) % num_contexts;
        double u = rng.next_double();
        int pick = 0;
        while (pick < branching - 1 && u >= cumulative[pick]) pick++;
        int token = successors[context * branching + pick];
        out[i] = token;
        prev2 = prev1;
        prev1 = token;
    }
    return out;
}

Result<std::vector<int>> load_text_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return failure("cannot read text data file " + path);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<int> tokens(bytes.size());
    for (size_t i = 0; i < bytes.size(); i++) tokens[i] = (unsigned char)bytes[i];
    return tokens;
}

namespace {

constexpr size_t kMaxTextBytes = 100000000;  // as many tokens as a synthetic corpus may have

// The bytes of one text data file, at most `room` of them.
Result<std::string> read_text_file(const std::string& path, size_t room) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
        return failure("text data file " + path + " is missing or not a regular file");
    const uintmax_t size = fs::file_size(path, ec);
    if (ec || size > room)
        return failure("text data file " + path + " cannot be sized or makes the text too long");
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in && !in.eof()) return failure("cannot read text data file " + path);
    if (bytes.size() > room) return failure("text data file " + path + " makes the text too long");
    return bytes;
}

// "PATH (N bytes, sha256 H)" for each file, so a mismatch can be traced to the file that differs.
std::string describe_files(const std::vector<std::string>& paths,
                           const std::vector<std::string>& contents) {
    std::string out;
    for (size_t i = 0; i < contents.size(); i++) {
        out += (i ? ", " : "") + paths[i] + " (" + std::to_string(contents[i].size()) +
               " bytes, sha256 " + sha256_hex(contents[i]) + ")";
    }
    return out;
}

}  // namespace

Result<std::string> load_text_data(const DataSpec& data) {
    const std::string pin =
        data.sha256.empty()
            ? ""
            : " (the task was calibrated on a text with sha256 " + data.sha256 + ")";
    std::vector<std::string> contents;
    std::string all;
    for (const std::string& path : data.paths) {
        Result<std::string> bytes = read_text_file(path, kMaxTextBytes - all.size());
        if (!bytes) return failure(bytes.error() + pin);
        all += *bytes;
        contents.push_back(std::move(*bytes));
    }
    if (!data.sha256.empty()) {
        const std::string found = sha256_hex(all);
        if (found != data.sha256) {
            return failure("the text data differs from the text the task was calibrated on: its " +
                           std::to_string(data.paths.size()) +
                           " file(s) concatenated have sha256 " + found + ", the task pins " +
                           data.sha256 + "; files read: " + describe_files(data.paths, contents));
        }
    }
    return all;
}

Result<TokenSplit> make_task_data(const TaskSpec& task) {
    std::vector<int> all;
    if (task.data.kind == "synthetic") {
        all = generate_markov_corpus(task.model.vocab_size, task.data.order, task.data.branching,
                                     task.data.tokens, task.data.data_seed);
    } else {
        Result<std::string> text = load_text_data(task.data);
        if (!text) return failure("task " + task.name + ": " + text.error());
        all.assign(text->size(), 0);
        for (size_t i = 0; i < text->size(); i++) all[i] = (unsigned char)(*text)[i];
    }
    const size_t T = task.model.context;
    const size_t heldout = (size_t)(all.size() * task.data.heldout_fraction);
    const size_t needed_heldout = (size_t)task.eval_batches * task.train.batch * T + 1;
    if (heldout < needed_heldout || all.size() - heldout < 2 * (T + 1)) {
        return failure("task " + task.name + ": corpus of " + std::to_string(all.size()) +
                       " tokens is too small for context " + std::to_string(T) + ", batch " +
                       std::to_string(task.train.batch) + " and " +
                       std::to_string(task.eval_batches) + " held-out batches");
    }
    TokenSplit split;
    split.train.assign(all.begin(), all.end() - heldout);
    split.heldout.assign(all.end() - heldout, all.end());
    return split;
}

Status write_tokens(const std::string& path, const std::vector<int>& tokens, int vocab) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) return failure("cannot write token file " + path);
    int32_t header[2] = {kTokenMagic, vocab};
    int64_t count = (int64_t)tokens.size();
    f.write(reinterpret_cast<const char*>(header), sizeof(header));
    f.write(reinterpret_cast<const char*>(&count), sizeof(count));
    std::vector<uint16_t> packed(tokens.begin(), tokens.end());
    f.write(reinterpret_cast<const char*>(packed.data()), packed.size() * sizeof(uint16_t));
    if (!f) return failure("short write to token file " + path);
    return {};
}

Result<std::vector<int>> read_tokens(const std::string& path, int expected_vocab) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return failure("cannot read token file " + path);
    int32_t header[2];
    int64_t count = 0;
    f.read(reinterpret_cast<char*>(header), sizeof(header));
    f.read(reinterpret_cast<char*>(&count), sizeof(count));
    if (!f || header[0] != kTokenMagic)
        return failure("token file " + path + " has no valid header");
    if (header[1] != expected_vocab) {
        return failure("token file " + path + " has vocab " + std::to_string(header[1]) +
                       ", task wants " + std::to_string(expected_vocab));
    }
    if (count < 0 || count > 1000000000)
        return failure("token file " + path + " has an implausible token count");
    std::vector<uint16_t> packed(count);
    f.read(reinterpret_cast<char*>(packed.data()), count * sizeof(uint16_t));
    if (!f) return failure("token file " + path + " is truncated");
    std::vector<int> tokens(packed.begin(), packed.end());
    for (int t : tokens) {
        if (t >= expected_vocab) {
            return failure("token file " + path + " holds token id " + std::to_string(t) +
                           " >= vocab");
        }
    }
    return tokens;
}

bool read_tokens(const std::string& path, int expected_vocab, std::vector<int>& out,
                 std::string& error) {
    Result<std::vector<int>> tokens = read_tokens(path, expected_vocab);
    if (!tokens) {
        error = tokens.error();
        return false;
    }
    out = std::move(*tokens);
    return true;
}

Status prepare_task_data(const TaskSpec& task, const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return failure("cannot create data directory " + dir + ": " + ec.message());
    Result<TokenSplit> split = make_task_data(task);
    if (!split) return failure(split.error());
    if (Status written = write_tokens(dir + "/train.bin", split->train, task.model.vocab_size);
        !written)
        return written;
    return write_tokens(dir + "/val.bin", split->heldout, task.model.vocab_size);
}

double unigram_entropy(const std::vector<int>& tokens, int vocab) {
    std::vector<double> counts(vocab, 0.0);
    for (int t : tokens) counts[t] += 1.0;
    double h = 0.0;
    for (double c : counts) {
        if (c > 0) {
            double p = c / tokens.size();
            h -= p * std::log(p);
        }
    }
    return h;
}

}  // namespace trainopt
