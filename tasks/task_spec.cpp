#include "tasks/task_spec.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace trainopt {

namespace fs = std::filesystem;

namespace {

enum class Presence { required, optional };

// Reads one key of a section into `out`, which keeps its default when an optional key is
// absent. Fails when a required key is missing or the value has the wrong type.
template <typename T>
Status read_key(const toml::table& tbl, const std::string& section, const std::string& key, T& out,
                Presence presence) {
    const toml::node* node = tbl.get(key);
    if (node == nullptr) {
        if (presence == Presence::required) return failure("missing key [" + section + "] " + key);
        return {};
    }
    if constexpr (std::is_same_v<T, std::string>) {
        auto v = node->value<std::string>();
        if (!v) return failure("[" + section + "] " + key + " must be a string");
        out = *v;
    } else if constexpr (std::is_floating_point_v<T>) {
        auto v = node->value<double>();
        if (!v) return failure("[" + section + "] " + key + " must be a number");
        out = static_cast<T>(*v);
    } else {
        auto v = node->value<int64_t>();
        if (!v || !node->is_integer())
            return failure("[" + section + "] " + key + " must be an integer");
        out = static_cast<T>(*v);
    }
    return {};
}

// The first failure of reads done in order, or success: the reads of one section's keys.
Status first_failure(std::initializer_list<Status> reads) {
    for (const Status& read : reads) {
        if (!read) return read;
    }
    return {};
}

// A section of the file; nullptr when an optional one is absent.
Result<const toml::table*> find_section(const toml::table& root, const std::string& name,
                                        Presence presence) {
    const toml::node* node = root.get(name);
    if (node == nullptr) {
        if (presence == Presence::required) return failure("missing section [" + name + "]");
        return nullptr;
    }
    if (!node->is_table()) return failure("[" + name + "] must be a table");
    return node->as_table();
}

constexpr Presence kRequired = Presence::required;
constexpr Presence kOptional = Presence::optional;

Status read_task_section(const toml::table& root, TaskSpec& t) {
    Result<const toml::table*> task = find_section(root, "task", kRequired);
    if (!task) return failure(task.error());
    const toml::table& tbl = **task;
    Status read = first_failure({read_key(tbl, "task", "name", t.name, kRequired),
                                 read_key(tbl, "task", "description", t.description, kOptional),
                                 read_key(tbl, "task", "hot_spot", t.hot_spot, kOptional)});
    if (!read) return read;
    if (t.name.empty()) return failure("[task] name must not be empty");
    return {};
}

Status read_model_section(const toml::table& root, ModelSpec& m) {
    Result<const toml::table*> model = find_section(root, "model", kRequired);
    if (!model) return failure(model.error());
    const toml::table& tbl = **model;
    return first_failure({read_key(tbl, "model", "vocab_size", m.vocab_size, kRequired),
                          read_key(tbl, "model", "context", m.context, kRequired),
                          read_key(tbl, "model", "d_model", m.d_model, kRequired),
                          read_key(tbl, "model", "layers", m.layers, kRequired),
                          read_key(tbl, "model", "heads", m.heads, kRequired)});
}

// A text task's files: `path = "file"` or `paths = ["file", ...]`, exactly one of the two.
Status read_text_paths(const toml::table& tbl, std::vector<std::string>& paths) {
    const toml::node* list = tbl.get("paths");
    if (list == nullptr) {
        if (tbl.get("path") == nullptr)
            return failure("text data needs [data] path = \"FILE\" or paths = [\"FILE\", ...]");
        std::string path;
        if (Status read = read_key(tbl, "data", "path", path, kRequired); !read) return read;
        if (path.empty()) return failure("[data] path must not be empty");
        paths = {path};
        return {};
    }
    if (tbl.get("path") != nullptr) return failure("[data] has both path and paths: give one");
    const toml::array* array = list->as_array();
    if (array == nullptr || array->empty() || array->size() > 256)
        return failure("[data] paths must be an array of 1 to 256 file names");
    for (const toml::node& element : *array) {
        std::optional<std::string> path = element.value<std::string>();
        if (!path || path->empty()) return failure("[data] paths must hold non-empty strings");
        paths.push_back(*path);
    }
    return {};
}

// The optional pin of a text task's data: 64 hex digits, kept in lowercase.
Status read_sha256(const toml::table& tbl, std::string& sha256) {
    if (Status read = read_key(tbl, "data", "sha256", sha256, kOptional); !read) return read;
    if (sha256.empty() && tbl.get("sha256") == nullptr) return {};
    if (sha256.size() != 64 ||
        sha256.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        return failure("[data] sha256 must be 64 hex digits (the SHA-256 of the text)");
    for (char& c : sha256) c = (char)std::tolower((unsigned char)c);
    return {};
}

// A relative text data path is resolved next to the task file (`task_path`).
Status read_data_section(const toml::table& root, const std::string& task_path, DataSpec& d) {
    Result<const toml::table*> data = find_section(root, "data", kRequired);
    if (!data) return failure(data.error());
    const toml::table& tbl = **data;
    Status read =
        first_failure({read_key(tbl, "data", "kind", d.kind, kRequired),
                       read_key(tbl, "data", "heldout_fraction", d.heldout_fraction, kOptional)});
    if (!read) return read;
    if (d.kind == "synthetic") {
        return first_failure({read_key(tbl, "data", "order", d.order, kOptional),
                              read_key(tbl, "data", "branching", d.branching, kOptional),
                              read_key(tbl, "data", "tokens", d.tokens, kRequired),
                              read_key(tbl, "data", "data_seed", d.data_seed, kOptional)});
    }
    if (d.kind == "text") {
        if (Status paths = read_text_paths(tbl, d.paths); !paths) return paths;
        for (std::string& path : d.paths) {
            fs::path p(path);
            if (p.is_relative()) p = fs::path(task_path).parent_path() / p;
            path = p.lexically_normal().string();
        }
        d.path = d.paths.front();
        return read_sha256(tbl, d.sha256);
    }
    return {};  // another kind is refused by check_ranges
}

Status read_train_section(const toml::table& root, TrainSpec& t) {
    Result<const toml::table*> train = find_section(root, "train", kRequired);
    if (!train) return failure(train.error());
    const toml::table& tbl = **train;
    return first_failure({read_key(tbl, "train", "batch", t.batch, kRequired),
                          read_key(tbl, "train", "steps", t.steps, kRequired),
                          read_key(tbl, "train", "lr", t.lr, kOptional),
                          read_key(tbl, "train", "beta1", t.beta1, kOptional),
                          read_key(tbl, "train", "beta2", t.beta2, kOptional),
                          read_key(tbl, "train", "eps", t.eps, kOptional),
                          read_key(tbl, "train", "weight_decay", t.weight_decay, kOptional)});
}

Status read_eval_section(const toml::table& root, int& eval_batches) {
    Result<const toml::table*> eval = find_section(root, "eval", kOptional);
    if (!eval) return failure(eval.error());
    if (*eval == nullptr) return {};
    return read_key(**eval, "eval", "batches", eval_batches, kOptional);
}

Status read_tolerances_section(const toml::table& root, Tolerances& t) {
    Result<const toml::table*> tolerances = find_section(root, "tolerances", kOptional);
    if (!tolerances) return failure(tolerances.error());
    if (*tolerances == nullptr) return {};
    const toml::table& tbl = **tolerances;
    return first_failure(
        {read_key(tbl, "tolerances", "loss_abs", t.loss_abs, kOptional),
         read_key(tbl, "tolerances", "heldout_abs", t.heldout_abs, kOptional),
         read_key(tbl, "tolerances", "weights_rel", t.weights_rel, kOptional),
         read_key(tbl, "tolerances", "step_loss_abs", t.step_loss_abs, kOptional),
         read_key(tbl, "tolerances", "step_state_rel", t.step_state_rel, kOptional),
         read_key(tbl, "tolerances", "heldout_band", t.heldout_band, kOptional)});
}

Status read_verify_section(const toml::table& root, VerifySpec& v) {
    Result<const toml::table*> verify = find_section(root, "verify", kOptional);
    if (!verify) return failure(verify.error());
    if (*verify == nullptr) return {};
    const toml::table& tbl = **verify;
    std::string check = "trajectory";
    Status read =
        first_failure({read_key(tbl, "verify", "check", check, kOptional),
                       read_key(tbl, "verify", "windows", v.windows, kOptional),
                       read_key(tbl, "verify", "window_steps", v.window_steps, kOptional)});
    if (!read) return read;
    if (check == "trajectory") {
        v.check = CheckKind::trajectory;
    } else if (check == "local") {
        v.check = CheckKind::local;
    } else {
        return failure("[verify] check must be \"trajectory\" or \"local\", not \"" + check + "\"");
    }
    return {};
}

Status check_ranges(const TaskSpec& t) {
    const ModelSpec& m = t.model;
    if (m.vocab_size < 2 || m.vocab_size > 65536)
        return failure("model.vocab_size must be in [2, 65536]");
    if (m.context < 2 || m.context > 4096) return failure("model.context must be in [2, 4096]");
    if (m.d_model < 1 || m.d_model > 4096) return failure("model.d_model must be in [1, 4096]");
    if (m.layers < 1 || m.layers > 64) return failure("model.layers must be in [1, 64]");
    if (m.heads < 1 || m.d_model % m.heads != 0)
        return failure("model.heads must divide model.d_model");
    if (t.train.batch < 1 || t.train.batch > 1024)
        return failure("train.batch must be in [1, 1024]");
    if (t.train.steps < 1 || t.train.steps > 1000000)
        return failure("train.steps must be in [1, 1e6]");
    if (!(t.train.lr > 0.0f) || !(t.train.eps > 0.0f))
        return failure("train.lr and train.eps must be > 0");
    if (!(t.train.beta1 >= 0.0f && t.train.beta1 < 1.0f) ||
        !(t.train.beta2 >= 0.0f && t.train.beta2 < 1.0f))
        return failure("train.beta1 and train.beta2 must be in [0, 1)");
    if (!(t.train.weight_decay >= 0.0f)) return failure("train.weight_decay must be >= 0");
    if (t.data.kind != "synthetic" && t.data.kind != "text")
        return failure("data.kind must be \"synthetic\" or \"text\"");
    if (t.data.kind == "synthetic") {
        if (t.data.order != 1 && t.data.order != 2) return failure("data.order must be 1 or 2");
        if (t.data.branching < 1 || t.data.branching > 64)
            return failure("data.branching must be in [1, 64]");
        if (t.data.tokens < 10 * (int64_t)m.context || t.data.tokens > 100000000)
            return failure("data.tokens must be at least 10 * model.context and at most 1e8");
    }
    if (t.data.kind == "text" && m.vocab_size != 256)
        return failure("text data is byte-level: model.vocab_size must be 256");
    if (!(t.data.heldout_fraction > 0.0 && t.data.heldout_fraction < 0.5))
        return failure("data.heldout_fraction must be in (0, 0.5)");
    if (t.eval_batches < 1 || t.eval_batches > 1000)
        return failure("eval.batches must be in [1, 1000]");
    const Tolerances& tol = t.tolerances;
    if (!(tol.loss_abs > 0) || !(tol.heldout_abs > 0) || !(tol.weights_rel > 0) ||
        !(tol.step_loss_abs > 0) || !(tol.step_state_rel > 0) || !(tol.heldout_band > 0))
        return failure("tolerances must all be > 0");
    const VerifySpec& v = t.verify;
    if (v.windows < 1 || v.windows > 64) return failure("verify.windows must be in [1, 64]");
    if (v.window_steps < 1 ||
        (v.check == CheckKind::local && (int64_t)v.windows * v.window_steps > t.train.steps))
        return failure(
            "verify.window_steps must be >= 1, and windows * window_steps at most "
            "train.steps");
    return {};
}

// Every section in the file format's order, then the ranges of what was read.
Status read_sections(const toml::table& root, const std::string& path, TaskSpec& t) {
    if (Status read = read_task_section(root, t); !read) return read;
    if (Status read = read_model_section(root, t.model); !read) return read;
    if (Status read = read_data_section(root, path, t.data); !read) return read;
    if (Status read = read_train_section(root, t.train); !read) return read;
    if (Status read = read_eval_section(root, t.eval_batches); !read) return read;
    if (Status read = read_tolerances_section(root, t.tolerances); !read) return read;
    if (Status read = read_verify_section(root, t.verify); !read) return read;
    return check_ranges(t);
}

// Adds a task to the suite; a second task of the same name is an error naming `suite_label`.
Status add_task(Suite& suite, TaskSpec task, const std::string& suite_label) {
    for (const TaskSpec& other : suite.tasks) {
        if (other.name == task.name)
            return failure("suite " + suite_label + " has two tasks named '" + task.name + "'");
    }
    suite.tasks.push_back(std::move(task));
    return {};
}

}  // namespace

Result<TaskSpec> load_task(const std::string& path) {
    if (!fs::is_regular_file(path))
        return failure("task file " + path + " does not exist or is not a file");
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) return failure("task file " + path + " cannot be read");
    return load_task_text(text.str(), path);
}

bool load_task(const std::string& path, TaskSpec& out, std::string& error) {
    Result<TaskSpec> task = load_task(path);
    if (!task) {
        error = task.error();
        return false;
    }
    out = std::move(*task);
    return true;
}

Result<TaskSpec> load_task_text(const std::string& text, const std::string& path) {
    toml::table root;
    try {
        root = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        std::ostringstream msg;
        msg << "task file " << path << ": TOML parse error at line " << e.source().begin.line
            << ": " << e.description();
        return failure(msg.str());
    }
    TaskSpec t;
    // absolute, so that a suite given as a relative directory still resolves inside a sandbox
    // whose working directory is elsewhere
    t.file = fs::absolute(path).lexically_normal().string();
    if (Status read = read_sections(root, path, t); !read)
        return failure("task file " + path + ": " + read.error());
    return t;
}

Result<Suite> load_suite(const std::string& name_or_dir, const std::string& tasks_root) {
    fs::path dir(name_or_dir);
    if (!fs::is_directory(dir)) dir = fs::path(tasks_root) / name_or_dir;
    if (!fs::is_directory(dir)) {
        return failure("suite '" + name_or_dir + "' is neither a directory nor a suite under " +
                       tasks_root);
    }
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.is_regular_file() && entry.path().extension() == ".toml")
            files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty())
        return failure("suite directory " + dir.string() + " holds no *.toml task files");
    Suite suite;
    suite.name = dir.filename().string();
    for (const fs::path& f : files) {
        Result<TaskSpec> task = load_task(f.string());
        if (!task) return failure(task.error());
        if (Status added = add_task(suite, std::move(*task), dir.string()); !added)
            return failure(added.error());
    }
    return suite;
}

Result<Suite> load_suite_texts(const std::string& name, const std::vector<TaskText>& files) {
    if (files.empty()) return failure("suite " + name + " holds no task files");
    Suite suite;
    suite.name = name;
    for (const TaskText& f : files) {
        Result<TaskSpec> task = load_task_text(f.text, f.file);
        if (!task) return failure(task.error());
        if (Status added = add_task(suite, std::move(*task), name); !added)
            return failure(added.error());
    }
    return suite;
}

double training_step_flops(const TaskSpec& task) {
    const double B = task.train.batch, T = task.model.context, C = task.model.d_model;
    const double L = task.model.layers, V = task.model.vocab_size;
    const double matmul_params = L * 12.0 * C * C + V * C;  // block weights + tied LM head
    const double tokens = B * T;
    // causal attention: q.k and att.v each T*T/2 * C multiply-adds per sequence and layer (the
    // T*(T+1)/2 query-key pairs there are, rounded down: a lower bound, see the header)
    const double attention_fwd = L * B * 2.0 * (T * T / 2.0) * C * 2.0;
    return 6.0 * matmul_params * tokens + 3.0 * attention_fwd;
}

}  // namespace trainopt
