// A SQLite VFS for modelling power cuts. It forwards everything to the default VFS
// and, each time SQLite syncs a file (xSync), saves an image of that file as it is
// then ("<file>.synced", written atomically). SimulatePowerCut() replaces the database
// and its WAL with their last synced images (or removes them if never synced) and
// drops the shared-memory index: what a machine that loses power keeps. It can also
// fail writes with SQLITE_FULL on demand (FailWritesWithFull).
#pragma once

#include <string>

namespace edgeferry::testing {

inline constexpr const char* kPowerCutVfs = "edgeferry-powercut";

// Registers the VFS (once per process). Use StoreOptions::sqlite_vfs = kPowerCutVfs.
void RegisterPowerCutVfs();

// Call while no process has the store open.
void SimulatePowerCut(const std::string& db_path);

// While on, every write through the VFS fails with SQLITE_FULL (a full file system, on
// demand; this process only). Thread-safe.
void FailWritesWithFull(bool on);

}  // namespace edgeferry::testing
