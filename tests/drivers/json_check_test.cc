// ValidateJson: the one validator for JSON from outside (issue 12, "JSON means JSON").
#include "edgeferry/drivers/json_check.h"
#include "edgeferry/drivers/envelope.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace edgeferry::drivers {
namespace {

using namespace std::string_literals;

std::string Nested(size_t depth, const std::string& inner = "1") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

TEST(JsonCheck, AcceptsEveryKindOfJsonText) {
  for (const std::string& p : {"{\"t\": 21.50, \"k\":[1,2 ,3]}"s, " [1.0e3] "s, "\"s\""s, "17"s, "-0.5"s, "null"s,
                              "true"s, "{\"u\":\"\\u00e9\\n\\ud83c\\udf21\"}"s, "\"Zeus\xc2\xb2 \xe2\x82\xac\""s,
                              "{\"a\":1}\n"s}) {
    const JsonCheck c = ValidateJson(p);
    EXPECT_TRUE(c.ok()) << p << ": " << c.reason;
    EXPECT_TRUE(c.reason.empty());
  }
}

// Issue 12 item 6: nlohmann's lexer took '\0' for the end of input.
TEST(JsonCheck, ANulByteAnywhereIsInvalidAndNamed) {
  const std::string injected = "{\"a\":1}\0,\"injected\":true,\"x\":\""s;
  const JsonCheck c = ValidateJson(injected);
  EXPECT_EQ(c.verdict, JsonVerdict::kInvalid);
  EXPECT_EQ(c.offset, 7u);
  EXPECT_EQ(c.reason, "NUL byte at 7");
  EXPECT_FALSE(ValidateJson("\"a\0b\""s).ok());
  EXPECT_FALSE(ValidateJson("\0"s).ok());
}

TEST(JsonCheck, TrailingBytesEmptyAndWhitespaceOnlyAreInvalid) {
  for (const std::string& p : {"{\"a\":1} x"s, "{\"a\":1}{}"s, "1 2"s, ""s, "   "s, " \t\r\n"s, "{\"a\":"s, "[1,]"s,
                              "{'a':1}"s, "NaN"s}) {
    const JsonCheck c = ValidateJson(p);
    EXPECT_EQ(c.verdict, JsonVerdict::kInvalid) << p;
    EXPECT_TRUE(c.reason.starts_with("invalid JSON at byte ")) << p << ": " << c.reason;
  }
  EXPECT_EQ(ValidateJson("{\"a\":1} x").offset, 8u);
}

TEST(JsonCheck, StringsMustBeUtf8AndSurrogatesPaired) {
  EXPECT_FALSE(ValidateJson("\"\xc0\xaf\"").ok());          // overlong
  EXPECT_FALSE(ValidateJson("\"\xed\xa0\x80\"").ok());      // encoded surrogate
  EXPECT_FALSE(ValidateJson("\"\\ud800\"").ok());           // lone surrogate escape
  EXPECT_FALSE(ValidateJson("\"\xff\"").ok());
  EXPECT_FALSE(ValidateJson("\"tab\tinside\"").ok());       // raw control character in a string
}

TEST(JsonCheck, NestingIsBoundedAndTheBoundIsInclusive) {
  EXPECT_TRUE(ValidateJson(Nested(64)).ok());
  const JsonCheck c = ValidateJson(Nested(65));
  EXPECT_EQ(c.verdict, JsonVerdict::kTooDeep);
  EXPECT_EQ(c.reason, "nesting depth > 64");
  EXPECT_TRUE(ValidateJson(Nested(3), 3).ok());
  EXPECT_EQ(ValidateJson("{\"a\":{\"b\":{\"c\":{}}}}", 3).verdict, JsonVerdict::kTooDeep);
  EXPECT_TRUE(ValidateJson("7", 0).ok());
  EXPECT_EQ(ValidateJson("[]", 0).verdict, JsonVerdict::kTooDeep);
}

// Issue 12 item 7: no recursion on attacker depth (a recursive parser overflows the stack here).
TEST(JsonCheck, AHundredThousandLevelsAreRefusedWithoutRecursion) {
  EXPECT_EQ(ValidateJson(Nested(100'000)).verdict, JsonVerdict::kTooDeep);
  EXPECT_EQ(ValidateJson(std::string(1'000'000, '[')).verdict, JsonVerdict::kTooDeep);
  // Unbounded: the parse itself is iterative, so even that completes.
  EXPECT_TRUE(ValidateJson(Nested(100'000), SIZE_MAX).ok());
}

TEST(JsonCheck, ReasonsArePrintableAndShort) {
  const JsonCheck c = ValidateJson("{\"k\":\"\x01\xff\xfe" + std::string(10'000, 'x'));
  ASSERT_FALSE(c.ok());
  EXPECT_LT(c.reason.size(), 300u);
  for (const char ch : c.reason) EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << c.reason;
}

// Found by a review: nlohmann skips a UTF-8 BOM, so a BOM-prefixed object was inlined
// and the envelope line was not JSON to Python's json module.
TEST(JsonCheck, ALeadingByteOrderMarkIsNotJson) {
  const JsonCheck c = ValidateJson("\xEF\xBB\xBF{\"a\":1}");
  EXPECT_FALSE(c.ok());
  EXPECT_NE(c.reason.find("byte order mark"), std::string::npos) << c.reason;
  std::string line;
  AppendEnvelope("gw", StoredRecord{1, Record{0, "s", "t", ContentType::kJson, "\xEF\xBB\xBF{\"a\":1}"}}, &line);
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j.value("payload_encoding", ""), "text");
}

}  // namespace
}  // namespace edgeferry::drivers
