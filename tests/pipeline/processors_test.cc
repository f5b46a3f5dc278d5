// Processors on real recorded data (examples/data: UCI air quality rows, LoRaWAN
// uplinks from the Tour Perret). Every expected output is worked out here by a plain
// loop over the same data, not by the processors.
#include "edgeferry/pipeline/processor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "cloud_servers.h"  // Gunzip
#include "test_support.h"

namespace edgeferry::pipeline {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

// Air quality rows as JSON records {"T":..,"RH":..,"CO_GT":..} on channel "aq/<n % 3>".
std::vector<Record> AirQuality() {
  std::ifstream in(std::string(EDGEFERRY_SOURCE_DIR) + "/examples/data/uci-airquality-2000.csv");
  std::string line;
  std::getline(in, line);  // header
  std::vector<Record> out;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    if (f.size() < 15) continue;
    nlohmann::json j = {{"date", f[0]}, {"time", f[1]}, {"CO_GT", std::stod(f[2])}, {"T", std::stod(f[12])},
                        {"RH", std::stod(f[13])}};
    out.push_back(Record{0, "aq", "aq/" + std::to_string(out.size() % 3), ContentType::kJson, j.dump()});
  }
  return out;
}

std::vector<Record> LoRaWan() {
  std::ifstream in(std::string(EDGEFERRY_SOURCE_DIR) + "/examples/data/lorawan-tourperret-2000.ndjson.gz",
                   std::ios::binary);
  const std::string gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<Record> out;
  std::stringstream ss(edgeferry::testing::Gunzip(gz));
  for (std::string line; std::getline(ss, line);) {
    const auto j = nlohmann::json::parse(line);
    out.push_back(Record{0, "lora", "lora/" + j["dev_eui"].get<std::string>(), ContentType::kJson, line});
  }
  return out;
}

FieldPath Path(const char* p) { return *ParseFieldPath(p); }

TEST(Processors, TheRecordedDataIsThere) {
  EXPECT_EQ(AirQuality().size(), 2000u);
  EXPECT_EQ(LoRaWan().size(), 2000u);
}

TEST(Deadband, AbsoluteBandAndHeartbeatPerChannelOnAirQuality) {
  DeadbandConfig c{Path("T"), 0.5, 0, 10 * kSecond};
  Pipeline p({c});
  const auto records = AirQuality();
  // Reference: per channel, pass the first, then any reading more than 0.5 from the
  // last passed one, or 10 s (10 records, one per second here) after it.
  std::map<std::string, std::pair<double, int64_t>> last;
  std::vector<size_t> expected, got;
  for (size_t i = 0; i < records.size(); ++i) {
    const double t = nlohmann::json::parse(records[i].payload)["T"].get<double>();
    const int64_t now = static_cast<int64_t>(i) * kSecond;
    auto it = last.find(records[i].channel);
    if (it == last.end() || std::fabs(t - it->second.first) > 0.5 || now - it->second.second >= 10 * kSecond) {
      last[records[i].channel] = {t, now};
      expected.push_back(i);
    }
    Record r = records[i];
    if (*p.Run(r, now)) got.push_back(i);
  }
  EXPECT_EQ(got, expected);
  EXPECT_LT(expected.size(), records.size() * 9 / 10) << "the band reduces the stream";
  const auto stats = p.Stats();
  EXPECT_EQ(stats[0].in, records.size());
  EXPECT_EQ(stats[0].out, expected.size());
  EXPECT_EQ(stats[0].dropped, records.size() - expected.size());
}

TEST(Deadband, PercentBandAndItsStateSurvivesARestart) {
  DeadbandConfig c{Path("decoded.payload.humidity"), 0, 5, 0};
  const auto records = LoRaWan();
  std::vector<size_t> expected;
  std::map<std::string, double> last;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto j = nlohmann::json::parse(records[i].payload);
    const auto ptr = "/decoded/payload/humidity"_json_pointer;
    const nlohmann::json* h = j.contains(ptr) ? &j.at(ptr) : nullptr;
    if (h == nullptr || !h->is_number()) {
      expected.push_back(i);  // no reading: passes unchanged
      continue;
    }
    const double v = h->get<double>();
    auto it = last.find(records[i].channel);
    if (it == last.end() || std::fabs(v - it->second) > std::fabs(it->second) * 0.05) {
      last[records[i].channel] = v;
      expected.push_back(i);
    }
  }
  // Half the stream, a restart (state saved and loaded into a new pipeline), the rest.
  std::vector<size_t> got;
  nlohmann::json saved;
  {
    Pipeline p({c});
    for (size_t i = 0; i < 1000; ++i) {
      Record r = records[i];
      if (*p.Run(r, 0)) got.push_back(i);
    }
    saved = nlohmann::json::parse(p.SaveState().dump());  // as it goes to disk
  }
  Pipeline p({c});
  p.LoadState(saved, 0);
  for (size_t i = 1000; i < records.size(); ++i) {
    Record r = records[i];
    if (*p.Run(r, 0)) got.push_back(i);
  }
  EXPECT_EQ(got, expected);
  EXPECT_LT(expected.size(), 1000u);
}

TEST(Filter, KeepsByFieldComparisonAndDropsByChannel) {
  FilterConfig hot;
  hot.field = Path("T");
  hot.op = FilterConfig::Op::kGe;
  hot.value = 20;
  FilterConfig not_aq2;
  not_aq2.drop = true;
  not_aq2.channels = {"aq/2"};
  Pipeline p({hot, not_aq2});
  const auto records = AirQuality();
  size_t kept = 0, expected = 0;
  for (const auto& rec : records) {
    const double t = nlohmann::json::parse(rec.payload)["T"].get<double>();
    if (t >= 20 && rec.channel != "aq/2") ++expected;
    Record r = rec;
    kept += *p.Run(r, 0);
  }
  EXPECT_EQ(kept, expected);
  EXPECT_GT(expected, 50u);
  EXPECT_EQ(p.Stats()[1].in, p.Stats()[0].out) << "the second sees what the first handed on";
}

TEST(Filter, ComparesLikeWithLikeAndMissingFieldsDoNotMatch) {
  const auto run = [](FilterConfig c, const std::string& payload, ContentType ct = ContentType::kJson) {
    Pipeline p({c});
    Record r{0, "s", "c", ct, payload};
    return *p.Run(r, 0);
  };
  FilterConfig eq;
  eq.field = Path("status");
  eq.op = FilterConfig::Op::kEq;
  eq.value = "success";
  EXPECT_TRUE(run(eq, R"({"status":"success"})"));
  EXPECT_FALSE(run(eq, R"({"status":"fail"})"));
  EXPECT_FALSE(run(eq, R"({"status":1})")) << "a number is never equal to a string";
  EXPECT_FALSE(run(eq, R"({"other":1})"));
  EXPECT_FALSE(run(eq, "status=success", ContentType::kText));
  FilterConfig ne = eq;
  ne.op = FilterConfig::Op::kNe;
  EXPECT_TRUE(run(ne, R"({"status":1})"));
  FilterConfig exists;
  exists.field = Path("a.b");
  EXPECT_TRUE(run(exists, R"({"a":{"b":null}})"));
  EXPECT_FALSE(run(exists, R"({"a":[{"b":1}]})"));
  FilterConfig nmea;
  nmea.content_type = ContentType::kNmea;
  EXPECT_TRUE(run(nmea, "$GPRMC,1", ContentType::kNmea));
  EXPECT_FALSE(run(nmea, "{}"));
}

TEST(Fields, SetRenameDropAndSelectOnLoRaWanUplinks) {
  FieldsConfig select{FieldsConfig::Kind::kSelect, {}, {}, {"dev_eui", "fcnt", "decoded", "nope"}};
  FieldsConfig rename{FieldsConfig::Kind::kRename, {}, {{"fcnt", "frame_counter"}}, {}};
  FieldsConfig set{FieldsConfig::Kind::kSet, {{"site", "tour-perret"}, {"floor", 3}}, {}, {}};
  FieldsConfig drop{FieldsConfig::Kind::kDrop, {}, {}, {"decoded"}};
  Pipeline p({select, rename, set, drop});
  const auto records = LoRaWan();
  uint64_t in_bytes = 0, out_bytes = 0;
  for (const auto& rec : records) {
    const auto src = nlohmann::json::parse(rec.payload);
    Record r = rec;
    ASSERT_TRUE(*p.Run(r, 0));
    const nlohmann::json want = {{"dev_eui", src["dev_eui"]}, {"frame_counter", src["fcnt"]},
                                 {"site", "tour-perret"},      {"floor", 3}};
    ASSERT_EQ(nlohmann::json::parse(r.payload), want);
    in_bytes += rec.payload.size();
    out_bytes += r.payload.size();
  }
  EXPECT_LT(out_bytes * 10, in_bytes) << "reshaping cut the bytes by more than 10x";
}

TEST(Fields, APayloadThatIsNotAJsonObjectIsAnErrorNamingTheProcessor) {
  Pipeline p({FieldsConfig{FieldsConfig::Kind::kSet, {{"site", "x"}}, {}, {}}});
  Record r{0, "s", "c", ContentType::kCsv, "1,2,3"};
  const auto out = p.Run(r, 0);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().message(), "processor 0 (set): payload is not a JSON object (content type csv)");
  Record arr{0, "s", "c", ContentType::kJson, "[1,2]"};
  EXPECT_FALSE(p.Run(arr, 0).ok());
  EXPECT_EQ(p.Stats()[0].failed, 2u);
}

TEST(Sample, OneInNAndOnePerIntervalPerChannel) {
  const auto records = AirQuality();
  Pipeline every({SampleConfig{4, 0}});
  Pipeline interval({SampleConfig{0, 10 * kSecond}});
  std::map<std::string, int> seen;
  std::map<std::string, int64_t> passed_at;
  size_t every_expected = 0, every_got = 0, interval_expected = 0, interval_got = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& ch = records[i].channel;
    if (seen[ch]++ % 4 == 0) ++every_expected;  // the 1st, 5th, 9th ... of each channel
    const int64_t now = static_cast<int64_t>(i) * kSecond;
    if (!passed_at.count(ch) || now - passed_at[ch] >= 10 * kSecond) {
      passed_at[ch] = now;
      ++interval_expected;
    }
    Record a = records[i], b = records[i];
    every_got += *every.Run(a, now);
    interval_got += *interval.Run(b, now);
  }
  EXPECT_EQ(every_got, every_expected);
  EXPECT_EQ(interval_got, interval_expected);
}

TEST(FieldPath, ParsesDottedNamesWithBounds) {
  EXPECT_EQ(ParseFieldPath("a.b.c")->parts, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE(ParseFieldPath(""));
  EXPECT_FALSE(ParseFieldPath("a..b"));
  EXPECT_FALSE(ParseFieldPath("a."));
  std::string deep = "a";
  for (int i = 0; i < 16; ++i) deep += ".a";
  EXPECT_FALSE(ParseFieldPath(deep)) << "17 levels";
}

}  // namespace
}  // namespace edgeferry::pipeline
