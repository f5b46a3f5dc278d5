#include "edgeferry/drivers/envelope.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace edgeferry::drivers {
namespace {

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

}  // namespace
}  // namespace edgeferry::drivers
