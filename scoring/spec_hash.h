// Fingerprints of what a speedup was measured on: a task's canonical spec and a suite's set of
// tasks, as SHA-256. Two reports are comparable (trainopt compare, ci --against, the history's
// series) only when these agree: a speedup on another model, schedule, data or verification is
// another measurement. docs/scoring.md, "Task spec and suite hashes", describes the canonical
// form.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tasks/task_spec.h"

namespace trainopt {

// A hash (or a machine) that a report does not record: reports written before the field.
constexpr const char* kUnknownHash = "unknown";

// The canonical serialisation of everything in a task spec that affects training and
// verification: the model, the data (synthetic: its generator's parameters; text: the pinned
// SHA-256 of the text, or the file names when it is unpinned), the training schedule, the
// evaluation batches, the tolerances and the [verify] section, as compact JSON with sorted keys
// under a format tag. Left out: the name, description and hot spot (labels) and where the file
// was read from (an install and a build tree hold the same task in different places).
std::string canonical_task_spec(const TaskSpec& task);

// SHA-256 of canonical_task_spec(task), 64 lowercase hex digits.
std::string task_spec_hash(const TaskSpec& task);

// SHA-256 of a suite: of its tasks' (name, spec hash) pairs sorted by name, so the order the
// tasks ran in does not matter. kUnknownHash when any task's hash is unknown.
std::string suite_hash(std::vector<std::pair<std::string, std::string>> named_task_hashes);
std::string suite_hash(const Suite& suite);

// True for 64 lowercase hex digits (a hash written by this trainopt).
bool is_sha256_hex(const std::string& text);

}  // namespace trainopt
