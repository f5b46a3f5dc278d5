#include "edgeferry/drivers/envelope.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <random>

#include "edgeferry/units.h"
#include "test_support.h"

namespace edgeferry::drivers {
namespace {

using namespace std::string_literals;

StoredRecord Rec(std::string payload, ContentType ct = ContentType::kJson) {
  // 2026-11-21T08:47:37.000000042Z
  return StoredRecord{42, Record{1'795'250'857'000'000'042, "plant", "sensors/t1", ct, std::move(payload)}};
}

std::string Line(const StoredRecord& r) {
  std::string out;
  AppendEnvelope("gw-01", r, &out);
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(out.find('\n'), out.size() - 1) << "exactly one line";
  return out;
}

// The payload's text as a consumer slices it: between "payload": and the final }.
std::string PayloadSlice(const std::string& line) {
  const auto at = line.find("\"payload\":") + 10;
  return line.substr(at, line.size() - 2 - at);
}

TEST(Envelope, CarriesEveryFieldAndParsesAsJson) {
  const auto j = nlohmann::json::parse(Line(Rec("{\"t\": 21.5}")));
  EXPECT_EQ(j["gateway_id"], "gw-01");
  EXPECT_EQ(j["seq"], 42);
  EXPECT_EQ(j["ts"], "2026-11-21T08:47:37.000000042Z");
  EXPECT_EQ(j["source"], "plant");
  EXPECT_EQ(j["channel"], "sensors/t1");
  EXPECT_EQ(j["content_type"], "json");
  EXPECT_EQ(j["payload"]["t"], 21.5);
  EXPECT_FALSE(j.contains("payload_encoding"));
}

// docs/envelope.md "Time": ts is always the receive time, ts_source says how far to
// trust it, an event time the payload carried is a member of its own.
TEST(Envelope, SaysWhereItsTimeComesFrom) {
  auto clock = nlohmann::json::parse(Line(Rec("{}")));
  EXPECT_EQ(clock["ts_source"], "clock");
  EXPECT_FALSE(clock.contains("event_ts"));
  EXPECT_FALSE(clock.contains("boot_id"));

  StoredRecord gps = Rec("$GPRMC,...", ContentType::kNmea);
  gps.record.event_ts_ns = 1'430'000'000'500'000'000;  // a receiver's 2015 clock
  auto g = nlohmann::json::parse(Line(gps));
  EXPECT_EQ(g["ts"], "2026-11-21T08:47:37.000000042Z");
  EXPECT_EQ(g["event_ts"], "2015-04-25T22:13:20.500000000Z");

  StoredRecord early = Rec("{}");
  early.record.ts_ns = 12'000'000'000;
  early.record.ts_source = TsSource::kUnsynced;
  early.record.boot_id = "11111111-1111-1111-1111-111111111111";
  early.record.boot_ns = 5'000'000'123;
  const std::string line = Line(early);
  auto u = nlohmann::json::parse(line);
  EXPECT_EQ(u["ts"], "1970-01-01T00:00:12.000000000Z");
  EXPECT_EQ(u["ts_source"], "unsynced");
  EXPECT_EQ(u["boot_id"], "11111111-1111-1111-1111-111111111111");
  EXPECT_EQ(u["boot_ns"], 5'000'000'123);
  EXPECT_LE(line.size(), EnvelopeSizeBound("gw-01", early));

  // The bound's worst case: every string all control bytes (6 bytes each escaped), the
  // extreme times, a payload that is too deep (note) and binary (base64).
  StoredRecord worst{UINT64_MAX, Record{INT64_MIN, std::string(64, '\x01'), std::string(300, '\x1f'),
                                        ContentType::kJson, std::string(70, '[') + '\xff'}};
  worst.record.event_ts_ns = INT64_MAX;
  worst.record.ts_source = TsSource::kUnsynced;
  worst.record.boot_ns = INT64_MAX;
  worst.record.boot_id = std::string(200, '\x02');
  const std::string gw(64, '\x03');
  std::string big;
  AppendEnvelope(gw, worst, &big);
  EXPECT_LE(big.size(), EnvelopeSizeBound(gw, worst));
  for (auto& c : worst.record.payload) c = '\x05';
  big.clear();
  AppendEnvelope(gw, worst, &big);
  EXPECT_LE(big.size(), EnvelopeSizeBound(gw, worst)) << "as text: every byte escaped";

  StoredRecord rebased = Rec("{}");
  rebased.record.ts_source = TsSource::kRebased;
  EXPECT_EQ(nlohmann::json::parse(Line(rebased))["ts_source"], "rebased");
}

TEST(Envelope, InlineJsonKeepsTheOriginalBytesVerbatim) {
  for (std::string p : {"{\"t\": 21.50, \"k\":[1,2 ,3]}", "  [1.0e3]  ", "\"just a string\"", "17", "null",
                        "{\"u\":\"\\u00e9\\n\"}"}) {
    const std::string line = Line(Rec(p));
    EXPECT_EQ(PayloadSlice(line), p);
    EXPECT_TRUE(nlohmann::json::accept(line)) << line;
  }
}

TEST(Envelope, TextAndBinaryAreMarked) {
  auto text = nlohmann::json::parse(Line(Rec("$GPGGA,1,2*5A\r\nline \"two\"\t\x01", ContentType::kNmea)));
  EXPECT_EQ(text["payload_encoding"], "text");
  EXPECT_EQ(text["payload"], "$GPGGA,1,2*5A\r\nline \"two\"\t\x01");
  EXPECT_EQ(text["content_type"], "nmea");
  // Pretty-printed JSON holds newlines: carried as text so NDJSON stays one line.
  auto pretty = nlohmann::json::parse(Line(Rec("{\n  \"a\": 1\n}")));
  EXPECT_EQ(pretty["payload_encoding"], "text");
  EXPECT_EQ(pretty["payload"], "{\n  \"a\": 1\n}");
  const std::string bin("\x00\xff\xfe\x80 ok", 7);
  auto b = nlohmann::json::parse(Line(Rec(bin, ContentType::kBinary)));
  EXPECT_EQ(b["payload_encoding"], "base64");
  EXPECT_EQ(b["payload"], "AP/+gCBvaw==");
  auto empty = nlohmann::json::parse(Line(Rec("", ContentType::kBinary)));
  EXPECT_EQ(empty["payload_encoding"], "text");
  EXPECT_EQ(empty["payload"], "");
}

TEST(Envelope, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("Zeus\xc2\xb2 \xe2\x82\xac \xf0\x9f\x8c\xa1"));  // ², €, 🌡
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation
}

TEST(Envelope, TimestampsBeforeAndAfterTheEpochFormatCorrectly) {
  StoredRecord r = Rec("1");
  r.record.ts_ns = 0;
  EXPECT_EQ(nlohmann::json::parse(Line(r))["ts"], "1970-01-01T00:00:00.000000000Z");
  r.record.ts_ns = 951'782'400'123'456'789;  // leap day 2000
  EXPECT_EQ(nlohmann::json::parse(Line(r))["ts"], "2000-02-29T00:00:00.123456789Z");
  r.record.ts_ns = -1;
  EXPECT_EQ(nlohmann::json::parse(Line(r))["ts"], "1969-12-31T23:59:59.999999999Z");
}

// Python's json module checks each line (independent of nlohmann and of our code).
nlohmann::json PythonCheck(const std::string& line, const std::string& payload) {
  const std::string out = edgeferry::testing::PythonEnvelopeCheck(line, payload);
  const auto j = nlohmann::json::parse(out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << out;
  return j;
}

// Issue 12 item 6: a JSON value, a NUL, then bytes that would inject members.
TEST(Envelope, AJsonValueFollowedByNulIsCarriedAsTextWhateverTheContentType) {
  EDGEFERRY_REQUIRE_TOOL("python3");
  const std::string injected = "{\"a\":1}\0,\"injected\":true,\"x\":\""s;  // printf's bytes, NUL included
  for (const auto ct : {ContentType::kJson, ContentType::kText, ContentType::kBinary}) {
    const std::string line = Line(Rec(injected, ct));
    const auto j = PythonCheck(line, injected);
    EXPECT_EQ(j["parses"], true) << line;
    EXPECT_EQ(j["raw_controls"], false) << line;
    EXPECT_EQ(j["encoding"], "text");
    EXPECT_EQ(j["payload_matches"], true);
    EXPECT_EQ(line.find("\"injected\":true,"), std::string::npos) << "not inlined: " << line;
  }
}

// Issue 12 item 7: beyond the nesting bound the payload is text with a payload_note.
TEST(Envelope, JsonDeeperThanTheBoundIsTextWithANote) {
  EDGEFERRY_REQUIRE_TOOL("python3");
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  const std::string line = Line(Rec(deep));
  const auto j = PythonCheck(line, deep);
  EXPECT_EQ(j["parses"], true);
  EXPECT_EQ(j["encoding"], "text");
  EXPECT_EQ(j["note"], "nesting depth > 64");
  EXPECT_EQ(j["payload_matches"], true);
  // At the bound it is still inline; the bound is a parameter.
  const std::string at64 = std::string(64, '[') + std::string(64, ']');
  EXPECT_EQ(PayloadSlice(Line(Rec(at64))), at64);
  std::string out;
  AppendEnvelope("gw", Rec(at64), &out, 10);
  EXPECT_NE(out.find("\"payload_note\":\"nesting depth > 10\",\"payload_encoding\":\"text\""), std::string::npos);
}

// Tab, CR and LF are JSON whitespace but must not reach the line raw.
TEST(Envelope, JsonWithTabsOrLineBreaksIsTextAndTheLineHasNoControlBytes) {
  for (const std::string p : {"{\"a\":\t1}", "[1,\r2]", "{\n}"}) {
    const std::string line = Line(Rec(p));
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["payload_encoding"], "text");
    EXPECT_EQ(j["payload"], p);
    EXPECT_FALSE(j.contains("payload_note"));
    for (size_t i = 0; i + 1 < line.size(); ++i) EXPECT_GE(static_cast<unsigned char>(line[i]), 0x20u) << line;
  }
}

TEST(Envelope, IllFormedUtf8InGatewaySourceOrChannelBecomesReplacementCharacters) {
  EDGEFERRY_REQUIRE_TOOL("python3");
  StoredRecord r = Rec("1");
  r.record.channel = "site/\xff\xfe/t\xc3";  // a topic a broker should have refused
  r.record.source = "s\x80\x01";
  std::string line;
  AppendEnvelope("gw\xed\xa0\x80", r, &line);
  const auto j = PythonCheck(line, "1");
  EXPECT_EQ(j["parses"], true) << line;
  EXPECT_EQ(j["raw_controls"], false);
  EXPECT_EQ(j["channel"], "site/\xef\xbf\xbd\xef\xbf\xbd/t\xef\xbf\xbd");  // U+FFFD per ill-formed byte
  EXPECT_EQ(j["source"], "s\xef\xbf\xbd\x01");
  EXPECT_EQ(j["gateway_id"], "gw\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(j["payload_matches"], true);
}

// The property a fuzzer checks, on random and JSON-like bytes: always one valid JSON line.
TEST(Envelope, AnyBytesGiveOneValidJsonLine) {
  std::mt19937 rng(12);
  const std::string pieces[] = {"{", "}", "[", "]", "\"", ":", ",", "1", "\\", "\\u", "d800", "\0"s, "\n", "\t",
                                "\xff", "\xc3\xa9", "\xed\xa0\x80", "true", "e5", " "};
  std::string all_lines;
  for (int i = 0; i < 3000; ++i) {
    std::string payload;
    const int n = static_cast<int>(rng() % 24);
    for (int k = 0; k < n; ++k) {
      if (i % 3 == 0) {
        payload.push_back(static_cast<char>(rng() % 256));
      } else {
        payload += pieces[rng() % std::size(pieces)];
      }
    }
    StoredRecord r = Rec(payload, static_cast<ContentType>(rng() % 5));
    r.record.channel = payload;
    const std::string line = Line(r);
    ASSERT_TRUE(nlohmann::json::accept(line)) << line;
    for (size_t k = 0; k + 1 < line.size(); ++k) ASSERT_GE(static_cast<unsigned char>(line[k]), 0x20u) << line;
    all_lines += line;
  }
  if (edgeferry::testing::FindTool("python3").empty()) return;
  const std::string out = edgeferry::testing::PythonEnvelopeCheck(all_lines);
  EXPECT_EQ(out.find("\"parses\": false"), std::string::npos) << out.substr(0, 2000);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3000);
}

// A record's time is whatever a device said: the whole int64 range prints without
// overflow. Expected strings are the well-known limits of int64 nanoseconds.
TEST(Envelope, TimesAtTheEdgesOfInt64PrintAsRfc3339) {
  const auto text = [](int64_t ns) {
    std::string s;
    AppendRfc3339Ns(ns, &s);
    return s;
  };
  EXPECT_EQ(text(0), "1970-01-01T00:00:00.000000000Z");
  EXPECT_EQ(text(-1), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(text(1'700'000'000'000'000'000), "2023-11-14T22:13:20.000000000Z");
  EXPECT_EQ(text(INT64_MAX), "2262-04-11T23:47:16.854775807Z");
  EXPECT_EQ(text(INT64_MIN), "1677-09-21T00:12:43.145224192Z");
}

// Sinks compare the bound with their limits instead of encoding: it must never be
// below the real line, whatever the bytes (worst cases: control bytes, invalid UTF-8,
// base64, a long seq and ts, a too-deep payload's note).
TEST(Envelope, SizeBoundIsNeverBelowTheLine) {
  std::mt19937 rng(34);
  for (int i = 0; i < 3000; ++i) {
    std::string payload;
    const int n = static_cast<int>(rng() % 64);
    for (int k = 0; k < n; ++k) payload.push_back(static_cast<char>(i % 2 ? rng() % 0x20 : rng() % 256));
    if (i % 7 == 0) payload = std::string(70, '[') + std::string(70, ']');
    StoredRecord r = Rec(payload, static_cast<ContentType>(rng() % 5));
    r.seq = UINT64_MAX - static_cast<uint64_t>(i);
    r.record.ts_ns = i % 2 ? INT64_MAX : INT64_MIN;
    r.record.channel = std::string(static_cast<size_t>(rng() % 8), '\x01');
    const std::string gateway(static_cast<size_t>(rng() % 4), '\xff');
    std::string line;
    AppendEnvelope(gateway, r, &line);
    ASSERT_GE(EnvelopeSizeBound(gateway, r), line.size() - 1) << line;
  }
}

}  // namespace
}  // namespace edgeferry::drivers
