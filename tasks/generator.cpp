#include "tasks/generator.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "contract/rng.h"

namespace trainopt {

namespace {

constexpr const char* kPrefix = "generated:";

// Uniform in [low, high] on a log scale, rounded to an integer.
int log_uniform(Rng& rng, IntRange r) {
    const double lo = std::log((double)r.low), hi = std::log((double)r.high + 1.0);
    const int v = (int)std::floor(std::exp(lo + (hi - lo) * rng.next_double()));
    return std::clamp(v, r.low, r.high);
}

int uniform(Rng& rng, IntRange r) {
    return r.low + (int)rng.next_below((uint64_t)(r.high - r.low + 1));
}

// The stream of one draw: independent for every (seed, task, attempt).
uint64_t draw_seed(uint64_t seed, int index, int attempt) {
    Rng mix(seed ^ 0x6A09E667F3BCC909ull);
    uint64_t s = mix.next_u64();
    s ^= (uint64_t)index * 0x9E3779B97F4A7C15ull;
    s ^= (uint64_t)attempt * 0xC2B2AE3D27D4EB4Full;
    return Rng(s).next_u64();
}

Status read_range(const toml::table& tbl, const std::string& key, IntRange& out) {
    const toml::node* node = tbl.get(key);
    if (node == nullptr) return {};
    const toml::array* array = node->as_array();
    if (array == nullptr || array->size() != 2 || !(*array)[0].is_integer() ||
        !(*array)[1].is_integer())
        return failure("[generator] " + key + " must be [low, high], two integers");
    out.low = (int)*(*array)[0].value<int64_t>();
    out.high = (int)*(*array)[1].value<int64_t>();
    if (out.low < 1 || out.high < out.low)
        return failure("[generator] " + key + " must have 1 <= low <= high");
    return {};
}

Status read_number(const toml::table& tbl, const std::string& key, double& out) {
    const toml::node* node = tbl.get(key);
    if (node == nullptr) return {};
    auto v = node->value<double>();
    if (!v || !(*v > 0)) return failure("[generator] " + key + " must be a number > 0");
    out = *v;
    return {};
}

std::string format_float(double v) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%.6g", v);
    return buf;
}

}  // namespace

Result<GeneratorRanges> load_generator_ranges(const std::string& path) {
    toml::table root;
    try {
        root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        return failure("generator ranges " + path + ": TOML parse error at line " +
                       std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
    }
    const toml::table* tbl = root["generator"].as_table();
    if (tbl == nullptr) return failure("generator ranges " + path + ": no [generator] section");
    GeneratorRanges r;
    for (auto& [key, range] :
         std::initializer_list<std::pair<const char*, IntRange*>>{{"vocab_size", &r.vocab_size},
                                                                  {"context", &r.context},
                                                                  {"heads", &r.heads},
                                                                  {"d_model", &r.d_model},
                                                                  {"layers", &r.layers},
                                                                  {"batch", &r.batch},
                                                                  {"steps", &r.steps}}) {
        if (Status read = read_range(*tbl, key, *range); !read)
            return failure("generator ranges " + path + ": " + read.error());
    }
    if (const toml::node* node = tbl->get("head_sizes")) {
        const toml::array* array = node->as_array();
        if (array == nullptr || array->empty())
            return failure("generator ranges " + path +
                           ": [generator] head_sizes must be a "
                           "non-empty list of integers");
        r.head_sizes.clear();
        for (const toml::node& h : *array) {
            auto v = h.value<int64_t>();
            if (!h.is_integer() || !v || *v < 1 || *v > 256)
                return failure("generator ranges " + path + ": head sizes must be in [1, 256]");
            r.head_sizes.push_back((int)*v);
        }
    }
    double lr = r.lr;
    for (auto& [key, value] : std::initializer_list<std::pair<const char*, double*>>{
             {"target_seconds", &r.target_seconds},
             {"max_step_gflop", &r.max_step_gflop},
             {"lr", &lr}}) {
        if (Status read = read_number(*tbl, key, *value); !read)
            return failure("generator ranges " + path + ": " + read.error());
    }
    r.lr = (float)lr;
    if (r.vocab_size.low < 2 || r.vocab_size.high > 65536 || r.context.low < 2 ||
        r.context.high > 4096 || r.layers.high > 64 || r.batch.high > 1024 ||
        r.steps.high > 1000000 || r.d_model.high > 4096)
        return failure("generator ranges " + path +
                       ": a range exceeds what a task file allows (docs/task-format.md)");
    return r;
}

bool is_generated_suite_name(const std::string& name) {
    return name.rfind(kPrefix, 0) == 0;
}

Result<GeneratedSuiteName> parse_generated_suite_name(const std::string& name) {
    const std::string usage =
        "a generated suite is named generated:SEED or generated:SEED:N "
        "(SEED an unsigned integer, N tasks from 1 to 64), not '" +
        name + "'";
    if (!is_generated_suite_name(name)) return failure(usage);
    const std::string rest = name.substr(std::string(kPrefix).size());
    const size_t colon = rest.find(':');
    const std::string seed_text = rest.substr(0, colon);
    GeneratedSuiteName out;
    char* end = nullptr;
    if (seed_text.empty() || seed_text[0] == '-') return failure(usage);
    errno = 0;
    out.seed = strtoull(seed_text.c_str(), &end, 10);
    if (*end != '\0' || errno != 0) return failure(usage);
    if (colon != std::string::npos) {
        const std::string count_text = rest.substr(colon + 1);
        const long count = strtol(count_text.c_str(), &end, 10);
        if (count_text.empty() || *end != '\0' || count < 1 || count > 64) return failure(usage);
        out.tasks = (int)count;
    }
    return out;
}

std::string generated_suite_name(const GeneratedSuiteName& name) {
    return std::string(kPrefix) + std::to_string(name.seed) + ":" + std::to_string(name.tasks);
}

DrawnTask draw_task(uint64_t seed, int index, int attempt, const GeneratorRanges& ranges) {
    Rng rng(draw_seed(seed, index, attempt));
    DrawnTask t;
    t.name = "gen-" + std::to_string(index);
    t.attempt = attempt;
    t.model.vocab_size = log_uniform(rng, ranges.vocab_size);
    t.model.context = log_uniform(rng, ranges.context);
    // heads x head size within the width range: redraw the pair until it fits (bounded; the
    // narrowest pair is taken when none fits)
    t.model.heads = ranges.heads.low;
    t.model.d_model = ranges.heads.low * ranges.head_sizes.front();
    for (int tries = 0; tries < 64; tries++) {
        const int heads = uniform(rng, ranges.heads);
        const int head_size = ranges.head_sizes[rng.next_below(ranges.head_sizes.size())];
        if (heads * head_size >= ranges.d_model.low && heads * head_size <= ranges.d_model.high) {
            t.model.heads = heads;
            t.model.d_model = heads * head_size;
            break;
        }
    }
    t.model.layers = uniform(rng, ranges.layers);
    t.batch = uniform(rng, ranges.batch);
    t.lr = ranges.lr;
    t.data.kind = "synthetic";
    t.data.order = 1 + (int)rng.next_below(2);
    t.data.branching = 2 + (int)rng.next_below(7);
    t.data.tokens = std::max<int64_t>(200000, 20LL * t.model.context * t.batch);
    t.data.data_seed = rng.next_u64() >> 12;
    return t;
}

std::string generated_task_toml(const DrawnTask& t, int steps, const VerifySpec& verify,
                                const Tolerances& tol, const std::string& provenance) {
    std::ostringstream out;
    out << "# " << provenance << "\n"
        << "[task]\n"
        << "name = \"" << t.name << "\"\n"
        << "description = \"A generated task (V=" << t.model.vocab_size << " T=" << t.model.context
        << " C=" << t.model.d_model << " L=" << t.model.layers << " NH=" << t.model.heads
        << " B=" << t.batch << ").\"\n"
        << "hot_spot = \"generated\"\n\n"
        << "[model]\n"
        << "vocab_size = " << t.model.vocab_size << "\n"
        << "context = " << t.model.context << "\n"
        << "d_model = " << t.model.d_model << "\n"
        << "layers = " << t.model.layers << "\n"
        << "heads = " << t.model.heads << "\n\n"
        << "[data]\n"
        << "kind = \"synthetic\"\n"
        << "order = " << t.data.order << "\n"
        << "branching = " << t.data.branching << "\n"
        << "tokens = " << t.data.tokens << "\n"
        << "data_seed = " << t.data.data_seed << "\n\n"
        << "[train]\n"
        << "batch = " << t.batch << "\n"
        << "steps = " << steps << "\n"
        << "lr = " << format_float(t.lr) << "\n\n"
        << "[eval]\n"
        << "batches = 2\n\n"
        << "[verify]\n"
        << "check = \"" << (verify.check == CheckKind::local ? "local" : "trajectory") << "\"\n"
        << "windows = " << verify.windows << "\n"
        << "window_steps = " << verify.window_steps << "\n\n"
        << "[tolerances]\n"
        << "loss_abs = " << format_float(tol.loss_abs) << "\n"
        << "heldout_abs = " << format_float(tol.heldout_abs) << "\n"
        << "weights_rel = " << format_float(tol.weights_rel) << "\n"
        << "step_loss_abs = " << format_float(tol.step_loss_abs) << "\n"
        << "step_state_rel = " << format_float(tol.step_state_rel) << "\n"
        << "heldout_band = " << format_float(tol.heldout_band) << "\n";
    return out.str();
}

}  // namespace trainopt
