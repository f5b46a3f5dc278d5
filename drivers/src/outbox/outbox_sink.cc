#include "edgeferry/drivers/outbox/outbox_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "edgeferry/drivers/envelope.h"

namespace edgeferry::drivers {

namespace fs = std::filesystem;

namespace {

std::string Extension(int level) { return level > 0 ? ".ndjson.zst" : ".ndjson"; }

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Unavailable(fmt::format("write {}: {}", path, std::strerror(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::Unavailable(fmt::format("open {}: {}", dir, std::strerror(errno)));
  const int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : Status::Unavailable(fmt::format("fsync {}: {}", dir, std::strerror(errno)));
}

}  // namespace

OutboxSink::OutboxSink(OutboxSinkConfig config) : config_(std::move(config)) {}

ProbeResult OutboxSink::Probe(int64_t) {
  std::error_code ec;
  fs::path p = fs::absolute(config_.dir, ec);
  if (ec) return ProbeResult::Failed(fmt::format("{}: {}", config_.dir, ec.message()));
  // The nearest existing ancestor: where Start() would create what is missing.
  while (!fs::exists(p, ec) && p.has_parent_path() && p != p.parent_path()) p = p.parent_path();
  if (!fs::is_directory(p, ec)) return ProbeResult::Failed(fmt::format("{}: not a directory", p.string()));
  if (::access(p.c_str(), W_OK | X_OK) != 0) {
    return ProbeResult::Failed(fmt::format("{}: not writable: {}", p.string(), std::strerror(errno)));
  }
  return ProbeResult::Ok(p == fs::path(config_.dir) || p == fs::absolute(config_.dir, ec)
                             ? fmt::format("{} is writable", config_.dir)
                             : fmt::format("{} does not exist yet, created at start in {}, which is writable",
                                           config_.dir, p.string()));
}

std::string OutboxSink::FileName(uint64_t first_seq, uint64_t last_seq) const {
  return fmt::format("{}-{:020}-{:020}{}", config_.gateway_id, first_seq, last_seq,
                     Extension(config_.zstd_level));
}

Status OutboxSink::Start() {
  std::error_code ec;
  // A directory we create is 0750 whatever the umask; one that exists keeps its mode
  // (the operator may have shared it with a consumer's group).
  if (fs::create_directories(config_.dir, ec) && !ec) {
    fs::permissions(config_.dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec, ec);
  }
  if (ec) return Status::IOError(fmt::format("create {}: {}", config_.dir, ec.message()));
  for (const auto& e : fs::directory_iterator(config_.dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.starts_with(".") && n.ends_with(".tmp")) fs::remove(e.path(), ec);
  }
  return Status::Ok();
}

uint64_t OutboxSink::RecoverDeliveredSeq() {
  // Names are "<gateway_id>-<20 digits>-<20 digits><ext>".
  const std::string prefix = config_.gateway_id + "-";
  const std::string ext = Extension(config_.zstd_level);
  uint64_t newest = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(config_.dir, ec)) {
    const std::string n = e.path().filename().string();
    if (!n.starts_with(prefix) || !n.ends_with(ext) || n.size() != prefix.size() + 41 + ext.size()) continue;
    // A name is outside input (anyone can drop a file here): parse without throwing;
    // 20 digits can exceed uint64_t, and such a file is ignored.
    const std::string_view last = std::string_view(n).substr(prefix.size() + 21, 20);
    uint64_t seq = 0;
    const auto [end, err] = std::from_chars(last.data(), last.data() + last.size(), seq);
    if (err != std::errc() || end != last.data() + last.size()) continue;
    newest = std::max<uint64_t>(newest, seq);
  }
  return newest;
}

Delivery OutboxSink::Deliver(std::span<const StoredRecord> batch) {
  Delivery d;
  std::string text;
  for (const auto& r : batch) AppendEnvelope(config_.gateway_id, r, &text);
  std::string body;
  if (config_.zstd_level > 0) {
    body.resize(ZSTD_compressBound(text.size()));
    const size_t n = ZSTD_compress(body.data(), body.size(), text.data(), text.size(), config_.zstd_level);
    if (ZSTD_isError(n)) {
      d.error = Status::Unavailable(fmt::format("zstd: {}", ZSTD_getErrorName(n)));
      return d;
    }
    body.resize(n);
  } else {
    body = std::move(text);
  }
  const std::string name = FileName(batch.front().seq, batch.back().seq);
  const std::string final_path = config_.dir + "/" + name;
  const std::string tmp_path = config_.dir + "/." + name + ".tmp";
  // Data: 0600 whatever the umask. The fchmod covers a temp file left by an older
  // version (O_CREAT's mode applies only to a new file).
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    d.error = Status::Unavailable(fmt::format("open {}: {}", tmp_path, std::strerror(errno)));
    return d;
  }
  d.wire_bytes = body.size();
  Status st = ::fchmod(fd, 0600) == 0 ? WriteAll(fd, body, tmp_path)
                                      : Status::Unavailable(fmt::format("chmod {}: {}", tmp_path, std::strerror(errno)));
  if (st.ok() && ::fsync(fd) != 0) {
    st = Status::Unavailable(fmt::format("fsync {}: {}", tmp_path, std::strerror(errno)));
  }
  ::close(fd);
  if (st.ok() && ::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    st = Status::Unavailable(fmt::format("rename {}: {}", final_path, std::strerror(errno)));
  }
  if (st.ok()) st = SyncDir(config_.dir);
  if (!st.ok()) {
    ::unlink(tmp_path.c_str());
    d.error = st;
    return d;
  }
  d.acked_through = batch.back().seq;
  return d;
}

}  // namespace edgeferry::drivers
