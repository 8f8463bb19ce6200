#include "tasks/task_spec.h"

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace trainopt {

namespace fs = std::filesystem;

namespace {

// Reads one key; records a message when it is missing (required) or of the wrong type.
template <typename T>
bool read_key(const toml::table& tbl, const std::string& section, const std::string& key, T& out,
              bool required, std::string& error) {
    const toml::node* node = tbl.get(key);
    if (node == nullptr) {
        if (required) error = "missing key [" + section + "] " + key;
        return !required;
    }
    if constexpr (std::is_same_v<T, std::string>) {
        auto v = node->value<std::string>();
        if (!v) {
            error = "[" + section + "] " + key + " must be a string";
            return false;
        }
        out = *v;
    } else if constexpr (std::is_floating_point_v<T>) {
        auto v = node->value<double>();
        if (!v) {
            error = "[" + section + "] " + key + " must be a number";
            return false;
        }
        out = static_cast<T>(*v);
    } else {
        auto v = node->value<int64_t>();
        if (!v || !node->is_integer()) {
            error = "[" + section + "] " + key + " must be an integer";
            return false;
        }
        out = static_cast<T>(*v);
    }
    return true;
}

const toml::table* section(const toml::table& root, const std::string& name, bool required,
                           std::string& error) {
    const toml::node* node = root.get(name);
    if (node == nullptr) {
        if (required) error = "missing section [" + name + "]";
        return nullptr;
    }
    if (!node->is_table()) {
        error = "[" + name + "] must be a table";
        return nullptr;
    }
    return node->as_table();
}

std::string check_ranges(const TaskSpec& t) {
    const ModelSpec& m = t.model;
    if (m.vocab_size < 2 || m.vocab_size > 65536) return "model.vocab_size must be in [2, 65536]";
    if (m.context < 2 || m.context > 4096) return "model.context must be in [2, 4096]";
    if (m.d_model < 1 || m.d_model > 4096) return "model.d_model must be in [1, 4096]";
    if (m.layers < 1 || m.layers > 64) return "model.layers must be in [1, 64]";
    if (m.heads < 1 || m.d_model % m.heads != 0) return "model.heads must divide model.d_model";
    if (t.train.batch < 1 || t.train.batch > 1024) return "train.batch must be in [1, 1024]";
    if (t.train.steps < 1 || t.train.steps > 1000000) return "train.steps must be in [1, 1e6]";
    if (!(t.train.lr > 0.0f) || !(t.train.eps > 0.0f)) return "train.lr and train.eps must be > 0";
    if (!(t.train.beta1 >= 0.0f && t.train.beta1 < 1.0f) ||
        !(t.train.beta2 >= 0.0f && t.train.beta2 < 1.0f))
        return "train.beta1 and train.beta2 must be in [0, 1)";
    if (!(t.train.weight_decay >= 0.0f)) return "train.weight_decay must be >= 0";
    if (t.data.kind != "synthetic" && t.data.kind != "text")
        return "data.kind must be \"synthetic\" or \"text\"";
    if (t.data.kind == "synthetic") {
        if (t.data.order != 1 && t.data.order != 2) return "data.order must be 1 or 2";
        if (t.data.branching < 1 || t.data.branching > 64)
            return "data.branching must be in [1, 64]";
        if (t.data.tokens < 10 * (int64_t)m.context || t.data.tokens > 100000000)
            return "data.tokens must be at least 10 * model.context and at most 1e8";
    }
    if (t.data.kind == "text" && m.vocab_size != 256)
        return "text data is byte-level: model.vocab_size must be 256";
    if (!(t.data.heldout_fraction > 0.0 && t.data.heldout_fraction < 0.5))
        return "data.heldout_fraction must be in (0, 0.5)";
    if (t.eval_batches < 1 || t.eval_batches > 1000) return "eval.batches must be in [1, 1000]";
    const Tolerances& tol = t.tolerances;
    if (!(tol.loss_abs > 0) || !(tol.heldout_abs > 0) || !(tol.weights_rel > 0))
        return "tolerances must all be > 0";
    return "";
}

}  // namespace

bool load_task(const std::string& path, TaskSpec& out, std::string& error) {
    if (!fs::is_regular_file(path)) {
        error = "task file " + path + " does not exist or is not a file";
        return false;
    }
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) {
        error = "task file " + path + " cannot be read";
        return false;
    }
    return load_task_text(text.str(), path, out, error);
}

bool load_task_text(const std::string& text, const std::string& path, TaskSpec& out,
                    std::string& error) {
    toml::table root;
    try {
        root = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        std::ostringstream msg;
        msg << "task file " << path << ": TOML parse error at line " << e.source().begin.line
            << ": " << e.description();
        error = msg.str();
        return false;
    }
    TaskSpec t;
    // absolute, so that a suite given as a relative directory still resolves inside a sandbox
    // whose working directory is elsewhere
    t.file = fs::absolute(path).lexically_normal().string();
    std::string err;
    auto fail = [&](const std::string& why) {
        error = "task file " + path + ": " + why;
        return false;
    };
    const toml::table* meta = section(root, "task", true, err);
    if (!meta) return fail(err);
    if (!read_key(*meta, "task", "name", t.name, true, err) ||
        !read_key(*meta, "task", "description", t.description, false, err) ||
        !read_key(*meta, "task", "hot_spot", t.hot_spot, false, err))
        return fail(err);
    if (t.name.empty()) return fail("[task] name must not be empty");

    const toml::table* model = section(root, "model", true, err);
    if (!model) return fail(err);
    if (!read_key(*model, "model", "vocab_size", t.model.vocab_size, true, err) ||
        !read_key(*model, "model", "context", t.model.context, true, err) ||
        !read_key(*model, "model", "d_model", t.model.d_model, true, err) ||
        !read_key(*model, "model", "layers", t.model.layers, true, err) ||
        !read_key(*model, "model", "heads", t.model.heads, true, err))
        return fail(err);

    const toml::table* data = section(root, "data", true, err);
    if (!data) return fail(err);
    if (!read_key(*data, "data", "kind", t.data.kind, true, err) ||
        !read_key(*data, "data", "heldout_fraction", t.data.heldout_fraction, false, err))
        return fail(err);
    if (t.data.kind == "synthetic") {
        if (!read_key(*data, "data", "order", t.data.order, false, err) ||
            !read_key(*data, "data", "branching", t.data.branching, false, err) ||
            !read_key(*data, "data", "tokens", t.data.tokens, true, err) ||
            !read_key(*data, "data", "data_seed", t.data.data_seed, false, err))
            return fail(err);
    } else if (t.data.kind == "text") {
        if (!read_key(*data, "data", "path", t.data.path, true, err)) return fail(err);
        fs::path p(t.data.path);
        if (p.is_relative()) p = fs::path(path).parent_path() / p;
        t.data.path = p.lexically_normal().string();
    }

    const toml::table* train = section(root, "train", true, err);
    if (!train) return fail(err);
    if (!read_key(*train, "train", "batch", t.train.batch, true, err) ||
        !read_key(*train, "train", "steps", t.train.steps, true, err) ||
        !read_key(*train, "train", "lr", t.train.lr, false, err) ||
        !read_key(*train, "train", "beta1", t.train.beta1, false, err) ||
        !read_key(*train, "train", "beta2", t.train.beta2, false, err) ||
        !read_key(*train, "train", "eps", t.train.eps, false, err) ||
        !read_key(*train, "train", "weight_decay", t.train.weight_decay, false, err))
        return fail(err);

    if (const toml::table* eval = section(root, "eval", false, err)) {
        if (!read_key(*eval, "eval", "batches", t.eval_batches, false, err)) return fail(err);
    } else if (!err.empty()) {
        return fail(err);
    }
    if (const toml::table* tol = section(root, "tolerances", false, err)) {
        if (!read_key(*tol, "tolerances", "loss_abs", t.tolerances.loss_abs, false, err) ||
            !read_key(*tol, "tolerances", "heldout_abs", t.tolerances.heldout_abs, false, err) ||
            !read_key(*tol, "tolerances", "weights_rel", t.tolerances.weights_rel, false, err))
            return fail(err);
    } else if (!err.empty()) {
        return fail(err);
    }
    std::string range_error = check_ranges(t);
    if (!range_error.empty()) return fail(range_error);
    out = std::move(t);
    return true;
}

bool load_suite(const std::string& name_or_dir, const std::string& tasks_root, Suite& out,
                std::string& error) {
    fs::path dir(name_or_dir);
    if (!fs::is_directory(dir)) dir = fs::path(tasks_root) / name_or_dir;
    if (!fs::is_directory(dir)) {
        error =
            "suite '" + name_or_dir + "' is neither a directory nor a suite under " + tasks_root;
        return false;
    }
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.is_regular_file() && entry.path().extension() == ".toml")
            files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
        error = "suite directory " + dir.string() + " holds no *.toml task files";
        return false;
    }
    Suite suite;
    suite.name = dir.filename().string();
    for (const fs::path& f : files) {
        TaskSpec task;
        if (!load_task(f.string(), task, error)) return false;
        for (const TaskSpec& other : suite.tasks) {
            if (other.name == task.name) {
                error = "suite " + dir.string() + " has two tasks named '" + task.name + "'";
                return false;
            }
        }
        suite.tasks.push_back(std::move(task));
    }
    out = std::move(suite);
    return true;
}

bool load_suite_texts(const std::string& name, const std::vector<TaskText>& files, Suite& out,
                      std::string& error) {
    if (files.empty()) {
        error = "suite " + name + " holds no task files";
        return false;
    }
    Suite suite;
    suite.name = name;
    for (const TaskText& f : files) {
        TaskSpec task;
        if (!load_task_text(f.text, f.file, task, error)) return false;
        for (const TaskSpec& other : suite.tasks) {
            if (other.name == task.name) {
                error = "suite " + name + " has two tasks named '" + task.name + "'";
                return false;
            }
        }
        suite.tasks.push_back(std::move(task));
    }
    out = std::move(suite);
    return true;
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
