// Framer: splits a serial byte stream into frames. Pure and single-threaded.
//
// Line mode ends a frame at LF, CR or CRLF (empty lines are skipped); delimiter mode
// at a configured byte string (adjacent delimiters make no empty frame); fixed mode cuts frames of frame_bytes, optionally only
// after a start marker, skipping junk before it. A frame longer than max_frame_bytes is
// reported once with its first bytes and the rest is skipped up to the next
// delimiter, so binary junk never stalls the stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace edgeferry::drivers::serial {

struct FramingConfig {
  enum class Mode { kLine, kDelimiter, kFixed };
  Mode mode = Mode::kLine;
  std::string delimiter;        // kDelimiter: bytes that end a frame (not part of it)
  size_t frame_bytes = 0;       // kFixed: length of every frame, bytes (including start marker)
  std::string frame_start;      // kFixed: optional marker each frame begins with
  size_t max_frame_bytes = 4096;
};

class Framer {
 public:
  // Receives complete frames (without delimiter), valid until the callback returns.
  using FrameFn = std::function<void(std::string_view frame)>;
  // Receives the first max_frame_bytes of an overlong frame and why it was cut,
  // or bytes skipped while looking for a fixed frame's start marker.
  using DiscardFn = std::function<void(std::string_view head, const std::string& reason)>;

  Framer(FramingConfig config, FrameFn on_frame, DiscardFn on_discard);
  // Feeds received bytes; calls the callbacks for what completes.
  void Feed(std::string_view bytes);
  // Bytes of an unfinished frame (e.g. when the device goes away), and clears them.
  std::string TakePartial();

 private:
  void FeedLines(std::string_view bytes);
  void FeedDelimited(std::string_view bytes);
  void FeedFixed(std::string_view bytes);
  void Append(char c);  // adds to the current frame, switching to skip mode when too long
  void EndFrame();

  FramingConfig cfg_;
  FrameFn on_frame_;
  DiscardFn on_discard_;
  std::string frame_;
  bool skipping_ = false;     // an overlong frame is being skipped to its delimiter
  uint64_t skipped_ = 0;      // bytes skipped of it
  std::string junk_;          // kFixed: bytes skipped looking for the start marker
};

}  // namespace edgeferry::drivers::serial
