// Training data: a deterministic synthetic corpus with learnable structure, byte-level text files,
// and the token files (train.bin, val.bin) handed to trainers.
//
// Token file format: int32 magic kTokenMagic, int32 vocab_size, int64 count, then `count`
// little-endian uint16 token ids.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "contract/result.h"
#include "tasks/task_spec.h"

namespace trainopt {

constexpr int32_t kTokenMagic = 0x314B4F54;  // "TOK1"

struct TokenSplit {
    std::vector<int> train;
    std::vector<int> heldout;
};

// A Markov chain over `vocab` tokens: each context (the previous `order` tokens) has `branching`
// successors with Zipf weights 1, 1/2, 1/3, ... Everything follows from data_seed, so the corpus is
// identical on every machine. Its conditional entropy is far below the unigram entropy, so a model
// that learns the transitions drives the loss well below the unigram baseline.
std::vector<int> generate_markov_corpus(int vocab, int order, int branching, int64_t tokens,
                                        uint64_t data_seed);

// Every byte of the file is one token (vocab 256).
Result<std::vector<int>> load_text_bytes(const std::string& path);

// A text task's corpus: its files' bytes concatenated in order. Fails naming the file when one
// is missing or unreadable, and when the task pins a sha256 the concatenation does not have
// (naming every file with its size and own sha256).
Result<std::string> load_text_data(const DataSpec& data);

// Builds the task's corpus and splits off the last heldout_fraction as held-out data.
Result<TokenSplit> make_task_data(const TaskSpec& task);

Status write_tokens(const std::string& path, const std::vector<int>& tokens, int vocab);
Result<std::vector<int>> read_tokens(const std::string& path, int expected_vocab);

// read_tokens in the form trainers written before the Result form call it: existing submissions
// build against this tree and must keep compiling. Everything here uses the Result form.
bool read_tokens(const std::string& path, int expected_vocab, std::vector<int>& out,
                 std::string& error);

// Writes DIR/train.bin and DIR/val.bin for the task (creating DIR).
Status prepare_task_data(const TaskSpec& task, const std::string& dir);

// Entropy in nats of the empirical unigram distribution.
double unigram_entropy(const std::vector<int>& tokens, int vocab);

}  // namespace trainopt
