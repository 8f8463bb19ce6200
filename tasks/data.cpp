#include "tasks/data.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "contract/rng.h"

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

bool load_text_bytes(const std::string& path, std::vector<int>& out, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = "cannot read text data file " + path;
        return false;
    }
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    out.resize(bytes.size());
    for (size_t i = 0; i < bytes.size(); i++) out[i] = (unsigned char)bytes[i];
    return true;
}

bool make_task_data(const TaskSpec& task, TokenSplit& out, std::string& error) {
    std::vector<int> all;
    if (task.data.kind == "synthetic") {
        all = generate_markov_corpus(task.model.vocab_size, task.data.order, task.data.branching,
                                     task.data.tokens, task.data.data_seed);
    } else if (!load_text_bytes(task.data.path, all, error)) {
        error = "task " + task.name + ": " + error;
        return false;
    }
    const size_t T = task.model.context;
    const size_t heldout = (size_t)(all.size() * task.data.heldout_fraction);
    const size_t needed_heldout = (size_t)task.eval_batches * task.train.batch * T + 1;
    if (heldout < needed_heldout || all.size() - heldout < 2 * (T + 1)) {
        error = "task " + task.name + ": corpus of " + std::to_string(all.size()) +
                " tokens is too small for context " + std::to_string(T) + ", batch " +
                std::to_string(task.train.batch) + " and " + std::to_string(task.eval_batches) +
                " held-out batches";
        return false;
    }
    out.train.assign(all.begin(), all.end() - heldout);
    out.heldout.assign(all.end() - heldout, all.end());
    return true;
}

bool write_tokens(const std::string& path, const std::vector<int>& tokens, int vocab,
                  std::string& error) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) {
        error = "cannot write token file " + path;
        return false;
    }
    int32_t header[2] = {kTokenMagic, vocab};
    int64_t count = (int64_t)tokens.size();
    f.write(reinterpret_cast<const char*>(header), sizeof(header));
    f.write(reinterpret_cast<const char*>(&count), sizeof(count));
    std::vector<uint16_t> packed(tokens.begin(), tokens.end());
    f.write(reinterpret_cast<const char*>(packed.data()), packed.size() * sizeof(uint16_t));
    if (!f) {
        error = "short write to token file " + path;
        return false;
    }
    return true;
}

bool read_tokens(const std::string& path, int expected_vocab, std::vector<int>& out,
                 std::string& error) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        error = "cannot read token file " + path;
        return false;
    }
    int32_t header[2];
    int64_t count = 0;
    f.read(reinterpret_cast<char*>(header), sizeof(header));
    f.read(reinterpret_cast<char*>(&count), sizeof(count));
    if (!f || header[0] != kTokenMagic) {
        error = "token file " + path + " has no valid header";
        return false;
    }
    if (header[1] != expected_vocab) {
        error = "token file " + path + " has vocab " + std::to_string(header[1]) + ", task wants " +
                std::to_string(expected_vocab);
        return false;
    }
    if (count < 0 || count > 1000000000) {
        error = "token file " + path + " has an implausible token count";
        return false;
    }
    std::vector<uint16_t> packed(count);
    f.read(reinterpret_cast<char*>(packed.data()), count * sizeof(uint16_t));
    if (!f) {
        error = "token file " + path + " is truncated";
        return false;
    }
    out.assign(packed.begin(), packed.end());
    for (int t : out) {
        if (t >= expected_vocab) {
            error = "token file " + path + " holds token id " + std::to_string(t) + " >= vocab";
            return false;
        }
    }
    return true;
}

bool prepare_task_data(const TaskSpec& task, const std::string& dir, std::string& error) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
        error = "cannot create data directory " + dir + ": " + ec.message();
        return false;
    }
    TokenSplit split;
    if (!make_task_data(task, split, error)) return false;
    return write_tokens(dir + "/train.bin", split.train, task.model.vocab_size, error) &&
           write_tokens(dir + "/val.bin", split.heldout, task.model.vocab_size, error);
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
