#include "edgeferry/drivers/serial/framer.h"

#include <gtest/gtest.h>

namespace edgeferry::drivers::serial {
namespace {

struct Collected {
  std::vector<std::string> frames;
  std::vector<std::pair<std::string, std::string>> discarded;
};

Framer Make(FramingConfig cfg, Collected* c) {
  return Framer(
      std::move(cfg), [c](std::string_view f) { c->frames.emplace_back(f); },
      [c](std::string_view head, const std::string& why) { c->discarded.emplace_back(std::string(head), why); });
}

TEST(Framer, LinesEndAtLfCrOrCrlfAndEmptyLinesAreSkipped) {
  Collected c;
  auto f = Make({}, &c);
  f.Feed("a\nb\r\nc\rd\n\n\r\ne");
  EXPECT_EQ(c.frames, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(f.TakePartial(), "e");
  EXPECT_EQ(f.TakePartial(), "");
}

TEST(Framer, ByteAtATimeGivesTheSameFrames) {
  const std::string input = "$GPGGA,1*00\r\n$GPRMC,2*00\r\nxx\n";
  Collected whole, bytes;
  auto a = Make({}, &whole);
  a.Feed(input);
  auto b = Make({}, &bytes);
  for (char ch : input) b.Feed(std::string_view(&ch, 1));
  EXPECT_EQ(whole.frames, bytes.frames);
  EXPECT_EQ(whole.frames.size(), 3u);
}

TEST(Framer, OverlongFrameIsReportedOnceAndTheStreamResyncsAtTheNextDelimiter) {
  Collected c;
  FramingConfig cfg;
  cfg.max_frame_bytes = 8;
  auto f = Make(cfg, &c);
  f.Feed("short\n" + std::string(100, 'x') + "\nnext\n");
  EXPECT_EQ(c.frames, (std::vector<std::string>{"short", "next"}));
  ASSERT_EQ(c.discarded.size(), 1u);
  EXPECT_EQ(c.discarded[0].first, "xxxxxxxx");
  EXPECT_EQ(c.discarded[0].second, "frame longer than max_frame_bytes 8; skipped to the next delimiter");
  // Garbage without any delimiter is bounded too: nothing piles up in memory.
  f.Feed(std::string(100000, '\x01'));
  EXPECT_EQ(c.discarded.size(), 2u);
  EXPECT_EQ(f.TakePartial(), "") << "a skipped frame is not a partial frame";
}

TEST(Framer, CustomDelimiter) {
  Collected c;
  FramingConfig cfg;
  cfg.mode = FramingConfig::Mode::kDelimiter;
  cfg.delimiter = "||";
  cfg.max_frame_bytes = 10;
  auto f = Make(cfg, &c);
  f.Feed("a|b||c||");
  f.Feed(std::string(30, 'z') + "||d||");
  EXPECT_EQ(c.frames, (std::vector<std::string>{"a|b", "c", "d"}));
  EXPECT_EQ(c.discarded.size(), 1u);
}

TEST(Framer, AdjacentDelimitersMakeNoEmptyFrames) {
  Collected c;
  FramingConfig cfg;
  cfg.mode = FramingConfig::Mode::kDelimiter;
  cfg.delimiter = "\x1b\x1b\x1b\x1b";  // an SML escape: end and start escapes meet
  auto f = Make(cfg, &c);
  f.Feed("\x1b\x1b\x1b\x1b" "one" "\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b" "two" "\x1b\x1b\x1b\x1b");
  EXPECT_EQ(c.frames, (std::vector<std::string>{"one", "two"}));
  EXPECT_TRUE(c.discarded.empty());
  EXPECT_TRUE(f.TakePartial().empty());
}

TEST(Framer, ADelimitedFrameUpToMaxFrameBytesIsKeptWhateverTheDelimitersLength) {
  // Found by fuzz/serial_framer_fuzz: the delimiter's bytes counted against the frame,
  // so "abc" (3 of 4 bytes) was discarded and "xyz" after it was skipped with it.
  Collected c;
  FramingConfig cfg;
  cfg.mode = FramingConfig::Mode::kDelimiter;
  cfg.delimiter = "\r\n";
  cfg.max_frame_bytes = 4;
  auto f = Make(cfg, &c);
  f.Feed("abc\r\nxyz\r\nabcd\r\nabcde\r\nq\r\n");
  EXPECT_EQ(c.frames, (std::vector<std::string>{"abc", "xyz", "abcd", "q"}));
  ASSERT_EQ(c.discarded.size(), 1u);
  EXPECT_EQ(c.discarded[0].first, "abcd");
}

TEST(Framer, FixedFramesAfterAStartMarkerSkipJunk) {
  Collected c;
  FramingConfig cfg;
  cfg.mode = FramingConfig::Mode::kFixed;
  cfg.frame_bytes = 4;
  cfg.frame_start = "\xaa\x55";
  auto f = Make(cfg, &c);
  f.Feed(std::string("\x01\x02\xaa\x55\x10\x20\xaa\xaa\x55\x30\x40", 11));
  ASSERT_EQ(c.frames.size(), 2u);
  EXPECT_EQ(c.frames[0], std::string("\xaa\x55\x10\x20", 4));
  EXPECT_EQ(c.frames[1], std::string("\xaa\x55\x30\x40", 4));
  ASSERT_EQ(c.discarded.size(), 2u);
  EXPECT_EQ(c.discarded[0].first, std::string("\x01\x02", 2));
  EXPECT_EQ(c.discarded[0].second, "2 bytes before a frame start marker");
  EXPECT_EQ(c.discarded[1].first, std::string("\xaa", 1));
}

TEST(Framer, FixedFramesWithoutMarker) {
  Collected c;
  FramingConfig cfg;
  cfg.mode = FramingConfig::Mode::kFixed;
  cfg.frame_bytes = 3;
  auto f = Make(cfg, &c);
  f.Feed("abcdefg");
  EXPECT_EQ(c.frames, (std::vector<std::string>{"abc", "def"}));
  EXPECT_EQ(f.TakePartial(), "g");
}

}  // namespace
}  // namespace edgeferry::drivers::serial
