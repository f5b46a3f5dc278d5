// The serial framer on an arbitrary byte stream cut into arbitrary read() chunks.
// Invariants: the chunking never changes what comes out; frames respect the mode's
// rules and max_frame_bytes; in line and delimiter mode the frames and discards are
// exactly what an independent split of the stream gives (no byte lost or invented).
#include <vector>

#include "edgeferry/drivers/serial/framer.h"
#include "fuzz_check.h"

namespace serial = edgeferry::drivers::serial;
using edgeferry::fuzz::Excerpt;
using edgeferry::fuzz::Input;

namespace {

struct Event {
  bool frame;  // false: a discard
  std::string bytes;
  bool operator==(const Event&) const = default;
};

struct Run {
  std::vector<Event> events;
  std::string partial;
};

Run Feed(const serial::FramingConfig& cfg, std::string_view stream, const std::vector<size_t>& cuts) {
  Run run;
  serial::Framer framer(
      cfg, [&](std::string_view f) { run.events.push_back({true, std::string(f)}); },
      [&](std::string_view head, const std::string& reason) {
        FUZZ_CHECK(!reason.empty(), "a discard without a reason");
        run.events.push_back({false, std::string(head)});
      });
  size_t at = 0;
  for (size_t cut : cuts) {
    const size_t n = std::min(cut, stream.size() - at);
    framer.Feed(stream.substr(at, n));
    at += n;
  }
  framer.Feed(stream.substr(at));
  run.partial = framer.TakePartial();
  return run;
}

// What the stream should give: the non-empty pieces between terminators (adjacent
// terminators make no frame, in line and delimiter mode alike), an overlong piece
// reported by its first max_frame_bytes. `is_end(stream, i)` returns the terminator's
// length at i.
template <class IsEnd>
std::vector<Event> Expected(std::string_view stream, size_t max, IsEnd is_end) {
  std::vector<Event> out;
  std::string piece;
  for (size_t i = 0; i < stream.size();) {
    if (const size_t n = is_end(stream, i)) {
      if (piece.size() > max) out.push_back({false, piece.substr(0, max)});
      else if (!piece.empty()) out.push_back({true, piece});
      piece.clear();
      i += n;
    } else {
      piece.push_back(stream[i++]);
    }
  }
  if (piece.size() > max) out.push_back({false, piece.substr(0, max)});
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  serial::FramingConfig cfg;
  const uint8_t mode = in.Byte() % 3;
  cfg.max_frame_bytes = 1 + in.Byte() % 64;
  std::vector<size_t> cuts;
  for (int i = in.Byte() % 8; i > 0; --i) cuts.push_back(in.Byte() % 32);
  if (mode == 0) {
    cfg.mode = serial::FramingConfig::Mode::kLine;
  } else if (mode == 1) {
    cfg.mode = serial::FramingConfig::Mode::kDelimiter;
    cfg.delimiter = std::string(in.Take(1 + in.Byte() % 4));
    if (cfg.delimiter.empty()) return 0;
    // Room for the delimiter: config.cc does not check it yet (a delimiter as long as
    // max_frame_bytes can never end a frame).
    cfg.max_frame_bytes = std::max(cfg.max_frame_bytes, cfg.delimiter.size() + 1);
  } else {
    cfg.mode = serial::FramingConfig::Mode::kFixed;
    cfg.frame_bytes = 1 + in.Byte() % 32;
    cfg.frame_start = std::string(in.Take(in.Byte() % 4));
    if (cfg.frame_start.size() > cfg.frame_bytes) cfg.frame_start.resize(cfg.frame_bytes);
    cfg.max_frame_bytes = std::max(cfg.max_frame_bytes, cfg.frame_bytes);
  }
  const std::string_view stream = in.Rest();

  const Run whole = Feed(cfg, stream, {});
  const Run chunked = Feed(cfg, stream, cuts);
  FUZZ_CHECK(whole.events == chunked.events && whole.partial == chunked.partial,
             "read() chunking changed the frames (%zu vs %zu events)", whole.events.size(), chunked.events.size());

  size_t out_bytes = 0;
  for (const Event& e : whole.events) {
    out_bytes += e.bytes.size();
    if (!e.frame) continue;
    FUZZ_CHECK(e.bytes.size() <= cfg.max_frame_bytes, "a frame of %zu bytes exceeds max_frame_bytes %zu",
               e.bytes.size(), cfg.max_frame_bytes);
    if (cfg.mode == serial::FramingConfig::Mode::kLine) {
      FUZZ_CHECK(!e.bytes.empty() && e.bytes.find_first_of("\r\n") == std::string::npos,
                 "a line frame is empty or holds a line break: %s", Excerpt(e.bytes).c_str());
    } else if (cfg.mode == serial::FramingConfig::Mode::kDelimiter) {
      FUZZ_CHECK(e.bytes.find(cfg.delimiter) == std::string::npos, "a frame holds the delimiter");
    } else {
      FUZZ_CHECK(e.bytes.size() == cfg.frame_bytes && e.bytes.starts_with(cfg.frame_start),
                 "a fixed frame has %zu bytes or lacks its start marker", e.bytes.size());
    }
  }
  FUZZ_CHECK(out_bytes + whole.partial.size() <= stream.size(), "the framer emitted more bytes than it read");

  if (cfg.mode == serial::FramingConfig::Mode::kFixed) return 0;
  // Exact oracle up to the last terminator (what follows it is a partial frame).
  std::vector<Event> expected;
  size_t end = 0;
  if (cfg.mode == serial::FramingConfig::Mode::kLine) {
    end = stream.find_last_of("\r\n");
    end = end == std::string_view::npos ? 0 : end + 1;
    expected = Expected(stream.substr(0, end), cfg.max_frame_bytes,
                        [](std::string_view s, size_t i) -> size_t { return s[i] == '\r' || s[i] == '\n'; });
  } else {
    const std::string& d = cfg.delimiter;
    for (size_t at = 0; (at = stream.find(d, at)) != std::string_view::npos; at += d.size()) end = at + d.size();
    expected = Expected(stream.substr(0, end), cfg.max_frame_bytes,
                        [&](std::string_view s, size_t i) -> size_t { return s.substr(i).starts_with(d) ? d.size() : 0; });
  }
  const Run upto = Feed(cfg, stream.substr(0, end), cuts);
  FUZZ_CHECK(upto.partial.empty(), "bytes left over after a terminator: %s", Excerpt(upto.partial).c_str());
  FUZZ_CHECK(upto.events.size() == expected.size(), "%zu events, expected %zu, for %s", upto.events.size(),
             expected.size(), Excerpt(stream.substr(0, end)).c_str());
  for (size_t i = 0; i < expected.size(); ++i) {
    FUZZ_CHECK(upto.events[i] == expected[i], "event %zu is %s \"%s\", expected %s \"%s\"", i,
               upto.events[i].frame ? "frame" : "discard", Excerpt(upto.events[i].bytes).c_str(),
               expected[i].frame ? "frame" : "discard", Excerpt(expected[i].bytes).c_str());
  }
  return 0;
}
