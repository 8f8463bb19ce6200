#include "scoring/compare.h"

#include <map>
#include <set>

namespace trainopt {

namespace {

// The first 12 hex digits: enough to tell two hashes apart in a message.
std::string short_hash(const std::string& hash) {
    return hash.size() > 12 ? hash.substr(0, 12) : hash;
}

// Names each task's spec hash; reports a name given twice.
std::map<std::string, std::string> hashes_by_task(const LabelledReport& r,
                                                  std::vector<std::string>& problems) {
    std::map<std::string, std::string> out;
    for (const TaskReport& t : r.report->tasks) {
        if (!out.emplace(t.name, t.spec_hash).second)
            problems.push_back(r.label + " holds task " + t.name + " twice");
    }
    return out;
}

// The suites' differences, task by task.
void compare_tasks(const LabelledReport& a, const LabelledReport& b,
                   std::vector<std::string>& problems) {
    const std::map<std::string, std::string> in_a = hashes_by_task(a, problems);
    const std::map<std::string, std::string> in_b = hashes_by_task(b, problems);
    std::set<std::string> names;
    for (const auto& [name, hash] : in_a) names.insert(name);
    for (const auto& [name, hash] : in_b) names.insert(name);
    for (const std::string& name : names) {
        const auto ia = in_a.find(name), ib = in_b.find(name);
        if (ib == in_b.end()) {
            problems.push_back("task " + name + " is in " + a.label + " but missing from " +
                               b.label);
        } else if (ia == in_a.end()) {
            problems.push_back("task " + name + " is in " + b.label + " but missing from " +
                               a.label);
        } else if (ia->second != ib->second) {
            problems.push_back("task " + name + " has another spec: hash " +
                               short_hash(ia->second) + " in " + a.label + ", " +
                               short_hash(ib->second) + " in " + b.label);
        }
    }
}

}  // namespace

std::vector<std::string> comparability_problems(const LabelledReport& previous,
                                                const LabelledReport& current) {
    std::vector<std::string> problems;
    for (const LabelledReport* r : {&previous, &current}) {
        if (r->report->verdict != Verdict::valid || !r->report->complete)
            problems.push_back(r->label + " is " + to_string(r->report->verdict) +
                               ": only complete VALID reports are compared");
    }
    const bool unknown =
        previous.report->suite_hash == kUnknownHash || current.report->suite_hash == kUnknownHash;
    for (const LabelledReport* r : {&previous, &current}) {
        if (r->report->suite_hash == kUnknownHash)
            problems.push_back(r->label +
                               " records no suite hash (written before spec hashes, or "
                               "incomplete): its task specs cannot be checked; score it again");
    }
    if (!unknown && previous.report->suite_hash != current.report->suite_hash) {
        problems.push_back("the suites differ: " + previous.label + " scored " +
                           previous.report->suite + " (suite hash " +
                           short_hash(previous.report->suite_hash) + "), " + current.label +
                           " scored " + current.report->suite + " (suite hash " +
                           short_hash(current.report->suite_hash) + ")");
        compare_tasks(previous, current, problems);
    } else if (!unknown) {
        // equal suite hashes imply equal tasks; this still catches a task named twice
        std::vector<std::string> duplicates;
        hashes_by_task(previous, duplicates);
        hashes_by_task(current, duplicates);
        problems.insert(problems.end(), duplicates.begin(), duplicates.end());
    }
    return problems;
}

std::string comparability_message(const LabelledReport& previous, const LabelledReport& current,
                                  const std::vector<std::string>& problems) {
    std::string message = previous.label + " and " + current.label + " cannot be compared:";
    for (const std::string& p : problems) message += "\n  - " + p;
    return message;
}

}  // namespace trainopt
