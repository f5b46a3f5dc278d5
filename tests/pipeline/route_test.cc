// Route and MQTT topic matching, against a regular-expression translation of each
// filter written here (an independent reading of MQTT 3.1.1 section 4.7).
#include "edgeferry/pipeline/route.h"

#include <gtest/gtest.h>

#include <regex>

namespace edgeferry::pipeline {
namespace {

// '+' -> one level of anything but '/'; a trailing "/#" -> the parent or anything
// below it; a lone "#" -> everything. Other characters literal.
bool Oracle(const std::string& filter, const std::string& topic) {
  if (!topic.empty() && topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) return false;
  if (filter == "#") return true;
  std::string re;
  std::string body = filter;
  bool tail = false;
  if (body.size() >= 2 && body.substr(body.size() - 2) == "/#") {
    body.resize(body.size() - 2);
    tail = true;
  }
  for (char c : body) {
    if (c == '+') {
      re += "[^/]*";
    } else if (std::string("\\^$.|?*()[]{}").find(c) != std::string::npos) {
      re += std::string("\\") + c;
    } else {
      re += c;
    }
  }
  if (tail) re += "(/.*)?";
  return std::regex_match(topic, std::regex(re));
}

TEST(TopicMatches, AgreesWithARegexReadingOfTheSpecOnEveryPair) {
  const std::vector<std::string> filters = {"#",        "+",          "a",       "a/b",    "a/+",     "a/#",
                                            "+/b",      "+/+",        "a/+/c",   "a/b/#",  "/+",      "+/#",
                                            "/#",       "a//b",       "a/+/+/#", "$SYS/#", "+/alarm", "plant/+/temp"};
  const std::vector<std::string> topics = {"",       "a",        "a/",     "a/b",         "a/b/c",        "a/x/c",
                                           "a/b/c/d", "/a",      "/",      "a//b",        "b",            "b/b",
                                           "$SYS/x", "$SYS",     "x/alarm", "plant/3/temp", "plant/3/temp/x", "/dev/ttyUSB0"};
  int matched = 0;
  for (const auto& f : filters) {
    ASSERT_TRUE(TopicFilterValid(f)) << f;
    for (const auto& t : topics) {
      EXPECT_EQ(TopicMatches(f, t), Oracle(f, t)) << "filter \"" << f << "\" topic \"" << t << "\"";
      matched += TopicMatches(f, t);
    }
  }
  EXPECT_GT(matched, 40);  // the pairs exercise both outcomes
}

TEST(TopicMatches, TheSpecsOwnExamples) {
  // MQTT 3.1.1 section 4.7.1.2 and 4.7.1.3.
  EXPECT_TRUE(TopicMatches("sport/tennis/player1/#", "sport/tennis/player1"));
  EXPECT_TRUE(TopicMatches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
  EXPECT_TRUE(TopicMatches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
  EXPECT_TRUE(TopicMatches("sport/#", "sport"));
  EXPECT_TRUE(TopicMatches("sport/tennis/+", "sport/tennis/player1"));
  EXPECT_FALSE(TopicMatches("sport/tennis/+", "sport/tennis/player1/ranking"));
  EXPECT_FALSE(TopicMatches("sport/+", "sport"));
  EXPECT_TRUE(TopicMatches("sport/+", "sport/"));
  EXPECT_TRUE(TopicMatches("+/+", "/finance"));
  EXPECT_TRUE(TopicMatches("/+", "/finance"));
  EXPECT_FALSE(TopicMatches("+", "/finance"));
  EXPECT_FALSE(TopicMatches("#", "$SYS/uptime"));
  EXPECT_TRUE(TopicMatches("$SYS/#", "$SYS/uptime"));
}

TEST(TopicFilterValid, WildcardsOnlyAsWholeLevels) {
  for (const char* bad : {"", "a#", "a/#/b", "#/a", "a+", "a/+b", "+a/b", "a/b#"}) EXPECT_FALSE(TopicFilterValid(bad)) << bad;
  EXPECT_FALSE(TopicFilterValid(std::string(65536, 'a')));
  for (const char* good : {"#", "+", "a/+/b", "+/+/#", "/", "a//b"}) EXPECT_TRUE(TopicFilterValid(good)) << good;
}

TEST(Route, SelectsBySourceAndChannelTogether) {
  const Route everything;
  EXPECT_TRUE(everything.SelectsAll());
  const Route alarms{{"plant", "line2"}, {"+/alarm/#"}};
  EXPECT_FALSE(alarms.SelectsAll());
  EXPECT_TRUE(alarms.Selects(Record{0, "plant", "press/alarm/high", ContentType::kJson, "{}"}));
  EXPECT_TRUE(alarms.Selects(Record{0, "line2", "oven/alarm", ContentType::kJson, "{}"}));
  EXPECT_FALSE(alarms.Selects(Record{0, "gps", "oven/alarm", ContentType::kJson, "{}"})) << "other source";
  EXPECT_FALSE(alarms.Selects(Record{0, "plant", "press/temp", ContentType::kJson, "{}"})) << "other channel";
  const Route by_source{{"gps"}, {}};
  EXPECT_TRUE(by_source.Selects(Record{0, "gps", "/dev/ttyUSB0", ContentType::kNmea, "$GPRMC"}));
}

TEST(RouteTable, CountsARecordNoRouteSelects) {
  RouteTable t;
  const Record r{0, "plant", "press/temp", ContentType::kJson, "{}"};
  EXPECT_FALSE(t.AnySelects(r)) << "no sinks";
  t.Set({Route{{}, {"+/alarm"}}, Route{{"gps"}, {}}});
  EXPECT_FALSE(t.AnySelects(r));
  t.Set({Route{{}, {"+/alarm"}}, Route{}});
  EXPECT_TRUE(t.AnySelects(r));
}

}  // namespace
}  // namespace edgeferry::pipeline
