// Intake: turn a submission (unified diff, overlay directory or workspace directory) into a
// patched scratch copy of the pristine tree, refusing anything outside the editable surface.
#pragma once

#include <string>
#include <vector>

#include "contract/result.h"
#include "harness/sandbox.h"

namespace trainopt {

enum class SubmissionKind { patch, overlay, workspace };
std::string to_string(SubmissionKind kind);

struct Submission {
    std::string path;
    SubmissionKind kind = SubmissionKind::overlay;
};

// The two folders a submission may change; everything else is trusted and must stay pristine.
extern const char* const kEditableRoots[2];

// The folders and files copied from the pristine tree into a scratch copy and a workspace.
extern const char* const kTrainerTreeEntries[5];

// Marker file that `trainopt workspace init` writes into a workspace.
extern const char* const kWorkspaceMarker;

// Works out what kind of submission `path` is. Fails when it is none of them.
Result<Submission> classify_submission(const std::string& path);

// Checks one relative path against the allow-list: no absolute paths, no "..", no empty or
// "." components, and inside baseline/ or kernels/. Fails with the reason it is not allowed.
Status check_editable_path(const std::string& relative_path);

// Copies the pristine trainer tree (CMakeLists.txt, baseline/, kernels/, tasks/) into `dest`.
Status copy_pristine_tree(const std::string& pristine_root, const std::string& dest);

// Applies the submission onto the scratch copy at `scratch`, which must hold a fresh copy of
// the pristine tree, then audits the result (audit_scratch_tree). Returns every problem that
// refuses the submission, one line each, so a user can fix them at once; none when it is
// accepted. Patches are applied by git in the sandbox (mode) as the untrusted user. A
// submission that leaves baseline/ and kernels/ byte for byte as the pristine tree has them (an
// empty patch or overlay, an unedited workspace) is refused: "the submission changes nothing:
// ...".
std::vector<std::string> apply_submission(const Submission& submission,
                                          const std::string& pristine_root,
                                          const std::string& scratch, SandboxMode mode);

// Final defence for every kind: compares the scratch tree with the pristine one and reports any
// difference outside the editable roots, any symlink or special file, any executable bit.
std::vector<std::string> audit_scratch_tree(const std::string& pristine_root,
                                            const std::string& scratch);

}  // namespace trainopt
