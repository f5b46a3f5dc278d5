// Small files the agent keeps beside its buffer (processor state, fleet records).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "edgeferry/status.h"

namespace edgeferry {

// Replaces `path` with `content` so that a crash or power cut leaves the old file or the
// new one, never a mix: written to "<path>.tmp" (mode `mode`, not following a symlink),
// fsynced, renamed over `path`, and the directory fsynced. The directory must exist.
// Errors: IOError naming the file and the system's reason.
Status WriteFileAtomically(const std::string& path, std::string_view content, mode_t mode = 0600);

}  // namespace edgeferry
