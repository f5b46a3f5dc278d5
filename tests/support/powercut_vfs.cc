#include "powercut_vfs.h"

#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>

namespace edgeferry::testing {

namespace fs = std::filesystem;

namespace {

sqlite3_vfs* g_real = nullptr;
std::atomic<bool> g_fail_writes{false};

struct File {
  sqlite3_file base;
  sqlite3_file* real;  // follows this struct in the same allocation
  char path[1024];
};

sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<File*>(f)->real; }

void SaveImage(const char* path) {
  std::error_code ec;
  const std::string tmp = std::string(path) + ".synced.tmp";
  fs::copy_file(path, tmp, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::rename(tmp, std::string(path) + ".synced", ec);
}

int Close(sqlite3_file* f) {
  const int rc = Real(f)->pMethods->xClose(Real(f));
  return rc;
}
int Read(sqlite3_file* f, void* b, int n, sqlite3_int64 o) { return Real(f)->pMethods->xRead(Real(f), b, n, o); }
int Write(sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
  if (g_fail_writes) return SQLITE_FULL;
  return Real(f)->pMethods->xWrite(Real(f), b, n, o);
}
int Truncate(sqlite3_file* f, sqlite3_int64 s) { return Real(f)->pMethods->xTruncate(Real(f), s); }
int Sync(sqlite3_file* f, int flags) {
  const int rc = Real(f)->pMethods->xSync(Real(f), flags);
  if (rc == SQLITE_OK) SaveImage(reinterpret_cast<File*>(f)->path);
  return rc;
}
int FileSize(sqlite3_file* f, sqlite3_int64* s) { return Real(f)->pMethods->xFileSize(Real(f), s); }
int Lock(sqlite3_file* f, int l) { return Real(f)->pMethods->xLock(Real(f), l); }
int Unlock(sqlite3_file* f, int l) { return Real(f)->pMethods->xUnlock(Real(f), l); }
int CheckReservedLock(sqlite3_file* f, int* r) { return Real(f)->pMethods->xCheckReservedLock(Real(f), r); }
int FileControl(sqlite3_file* f, int op, void* a) { return Real(f)->pMethods->xFileControl(Real(f), op, a); }
int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) { return Real(f)->pMethods->xDeviceCharacteristics(Real(f)); }
int ShmMap(sqlite3_file* f, int i, int sz, int ext, void volatile** p) {
  return Real(f)->pMethods->xShmMap(Real(f), i, sz, ext, p);
}
int ShmLock(sqlite3_file* f, int o, int n, int fl) { return Real(f)->pMethods->xShmLock(Real(f), o, n, fl); }
void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
int ShmUnmap(sqlite3_file* f, int d) { return Real(f)->pMethods->xShmUnmap(Real(f), d); }
int Fetch(sqlite3_file* f, sqlite3_int64 o, int n, void** p) { return Real(f)->pMethods->xFetch(Real(f), o, n, p); }
int Unfetch(sqlite3_file* f, sqlite3_int64 o, void* p) { return Real(f)->pMethods->xUnfetch(Real(f), o, p); }

const sqlite3_io_methods kMethods = {3,         Close,         Read,        Write,       Truncate,
                                     Sync,      FileSize,      Lock,        Unlock,      CheckReservedLock,
                                     FileControl, SectorSize,  DeviceCharacteristics, ShmMap, ShmLock,
                                     ShmBarrier, ShmUnmap,     Fetch,       Unfetch};

int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  File* pf = reinterpret_cast<File*>(f);
  pf->real = reinterpret_cast<sqlite3_file*>(pf + 1);
  std::snprintf(pf->path, sizeof(pf->path), "%s", name ? name : "");
  const int rc = g_real->xOpen(g_real, name, pf->real, flags, out_flags);
  pf->base.pMethods = rc == SQLITE_OK && pf->real->pMethods ? &kMethods : nullptr;
  return rc;
}

int Delete(sqlite3_vfs*, const char* n, int s) { return g_real->xDelete(g_real, n, s); }
int Access(sqlite3_vfs*, const char* n, int f, int* o) { return g_real->xAccess(g_real, n, f, o); }
int FullPathname(sqlite3_vfs*, const char* n, int l, char* o) { return g_real->xFullPathname(g_real, n, l, o); }
int Randomness(sqlite3_vfs*, int n, char* o) { return g_real->xRandomness(g_real, n, o); }
int Sleep(sqlite3_vfs*, int us) { return g_real->xSleep(g_real, us); }
int CurrentTime(sqlite3_vfs*, double* t) { return g_real->xCurrentTime(g_real, t); }
int GetLastError(sqlite3_vfs*, int n, char* b) { return g_real->xGetLastError(g_real, n, b); }
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* t) { return g_real->xCurrentTimeInt64(g_real, t); }

sqlite3_vfs g_vfs;

}  // namespace

void RegisterPowerCutVfs() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_real = sqlite3_vfs_find(nullptr);
    std::memset(&g_vfs, 0, sizeof(g_vfs));
    g_vfs.iVersion = 2;
    g_vfs.szOsFile = static_cast<int>(sizeof(File)) + g_real->szOsFile;
    g_vfs.mxPathname = g_real->mxPathname;
    g_vfs.zName = kPowerCutVfs;
    g_vfs.xOpen = Open;
    g_vfs.xDelete = Delete;
    g_vfs.xAccess = Access;
    g_vfs.xFullPathname = FullPathname;
    g_vfs.xRandomness = Randomness;
    g_vfs.xSleep = Sleep;
    g_vfs.xCurrentTime = CurrentTime;
    g_vfs.xGetLastError = GetLastError;
    g_vfs.xCurrentTimeInt64 = CurrentTimeInt64;
    sqlite3_vfs_register(&g_vfs, 0);
  });
}

void SimulatePowerCut(const std::string& db_path) {
  std::error_code ec;
  for (const std::string& f : {db_path, db_path + "-wal"}) {
    if (fs::exists(f + ".synced")) {
      fs::rename(f + ".synced", f, ec);
    } else {
      fs::remove(f, ec);
    }
    fs::remove(f + ".synced.tmp", ec);
  }
  fs::remove(db_path + "-shm", ec);
}

void FailWritesWithFull(bool on) { g_fail_writes = on; }

}  // namespace edgeferry::testing
