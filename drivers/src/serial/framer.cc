#include "edgeferry/drivers/serial/framer.h"

#include <fmt/format.h>

namespace edgeferry::drivers::serial {

Framer::Framer(FramingConfig config, FrameFn on_frame, DiscardFn on_discard)
    : cfg_(std::move(config)), on_frame_(std::move(on_frame)), on_discard_(std::move(on_discard)) {}

void Framer::Feed(std::string_view bytes) {
  switch (cfg_.mode) {
    case FramingConfig::Mode::kLine: FeedLines(bytes); break;
    case FramingConfig::Mode::kDelimiter: FeedDelimited(bytes); break;
    case FramingConfig::Mode::kFixed: FeedFixed(bytes); break;
  }
}

std::string Framer::TakePartial() {
  std::string partial;
  if (!skipping_) partial.swap(frame_);
  junk_.clear();
  frame_.clear();
  skipping_ = false;
  skipped_ = 0;
  return partial;
}

void Framer::Append(char c) {
  if (skipping_) {
    ++skipped_;
    return;
  }
  if (frame_.size() >= cfg_.max_frame_bytes) {
    on_discard_(frame_, fmt::format("frame longer than max_frame_bytes {}; skipped to the next delimiter",
                                    cfg_.max_frame_bytes));
    frame_.clear();
    skipping_ = true;
    skipped_ = 1;
    return;
  }
  frame_.push_back(c);
}

void Framer::EndFrame() {
  if (skipping_) {
    skipping_ = false;
    skipped_ = 0;
  } else if (!frame_.empty()) {
    // Adjacent delimiters (a start escape right after an end escape, a doubled
    // terminator) delimit nothing: no empty record.
    on_frame_(frame_);
  }
  frame_.clear();
}

void Framer::FeedLines(std::string_view bytes) {
  for (char c : bytes) {
    if (c == '\n' || c == '\r') {
      // CRLF ends the frame at CR; the LF then ends an empty frame, which is skipped.
      if (!frame_.empty() || skipping_) EndFrame();
    } else {
      Append(c);
    }
  }
}

void Framer::FeedDelimited(std::string_view bytes) {
  const std::string& d = cfg_.delimiter;
  for (char c : bytes) {
    frame_.push_back(c);
    if (skipping_) {
      // Only the delimiter's length of tail is kept while skipping.
      ++skipped_;
      if (frame_.size() > d.size()) frame_.erase(0, frame_.size() - d.size());
      if (frame_ == d) {
        frame_.clear();
        skipping_ = false;
        skipped_ = 0;
      }
    } else if (frame_.size() >= d.size() && frame_.compare(frame_.size() - d.size(), d.size(), d) == 0) {
      frame_.resize(frame_.size() - d.size());
      EndFrame();
    } else if (frame_.size() >= cfg_.max_frame_bytes + d.size()) {
      // Past max_frame_bytes even if a delimiter completes now: overlong. (Counting the
      // delimiter's bytes against the frame lost a frame of max_frame_bytes - 1 and the
      // one after it.) Keep the tail a delimiter may have started in.
      on_discard_(std::string_view(frame_).substr(0, cfg_.max_frame_bytes),
                  fmt::format("frame longer than max_frame_bytes {}; skipped to the next delimiter",
                              cfg_.max_frame_bytes));
      frame_.erase(0, frame_.size() - (d.size() - 1));
      skipping_ = true;
      skipped_ = 1;
    }
  }
}

void Framer::FeedFixed(std::string_view bytes) {
  const std::string& start = cfg_.frame_start;
  auto flush_junk = [&] {
    if (!junk_.empty()) on_discard_(junk_, fmt::format("{} bytes before a frame start marker", junk_.size()));
    junk_.clear();
  };
  for (char c : bytes) {
    frame_.push_back(c);
    if (!start.empty() && frame_.size() <= start.size()) {
      // Matching the start marker: on a mismatch, move bytes to junk until a prefix matches.
      size_t drop = 0;
      while (drop < frame_.size() && start.compare(0, frame_.size() - drop, frame_, drop, std::string::npos) != 0) {
        ++drop;
      }
      junk_.append(frame_, 0, drop);
      frame_.erase(0, drop);
      if (junk_.size() >= cfg_.max_frame_bytes) flush_junk();
    }
    if (frame_.size() == cfg_.frame_bytes) {
      flush_junk();
      on_frame_(frame_);
      frame_.clear();
    }
  }
}

}  // namespace edgeferry::drivers::serial
