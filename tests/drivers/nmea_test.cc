#include "edgeferry/formats/nmea.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>

#include "edgeferry/drivers/serial/frame_parser.h"
#include "edgeferry/units.h"
#include "test_support.h"

namespace edgeferry::drivers::serial {
namespace {
using namespace edgeferry::formats;

TEST(Nmea, ChecksumIsValidatedAndProblemsAreNamed) {
  EXPECT_TRUE(ValidateNmeaSentence("$GPGSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5*33").ok());
  EXPECT_TRUE(ValidateNmeaSentence("!AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0*26").ok());
  EXPECT_EQ(ValidateNmeaSentence("$GPGSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5*34").message(),
            "bad checksum: computed 33, sentence says 34");
  EXPECT_EQ(ValidateNmeaSentence("$GPBOD,,T,,M,,*").message(), "checksum field \"\" is not two hex digits");
  EXPECT_EQ(ValidateNmeaSentence("$GPRMC,030719.000,A,3747.08").message(), "no checksum (missing *hh): truncated?");
  EXPECT_EQ(ValidateNmeaSentence("$GP\x01GA*00").message(), "non-printable byte 0x01 in sentence");
  EXPECT_FALSE(ValidateNmeaSentence("GPGGA*00").ok());
}

// Found by fuzz/nmea_fuzz: a sentence glued into another passed with the outer checksum.
TEST(Nmea, TwoChecksumDelimitersAreRejected) {
  uint8_t sum = 0;
  for (char c : std::string("GPRMC,094738,A,5C*12,N")) sum ^= static_cast<uint8_t>(c);
  const std::string glued = "$GPRMC,094738,A,5C*12,N*" + fmt::format("{:02X}", sum);
  EXPECT_FALSE(ValidateNmeaSentence(glued).ok()) << glued;
}

TEST(Nmea, AddressAndEventTime) {
  EXPECT_EQ(NmeaAddress("$GPRMC,1,2*00"), "GPRMC");
  EXPECT_EQ(NmeaAddress("$PGRME,15.0,M*1C"), "PGRME");
  // 2014-12-31T03:07:19Z
  EXPECT_EQ(NmeaEventTimeNs("$GPRMC,030719.000,A,3747.0873,S,17518.8938,E,0.69,181.39,311214,,,A*7D"),
            1419995239'000'000'000);
  // ZDA with fractions: 2015-04-13T20:27:09.250Z
  EXPECT_EQ(NmeaEventTimeNs("$GPZDA,202709.250,13,04,2015,,*5A"), 1428956829'250'000'000);
  // No fix yet, but time and date: still dated.
  EXPECT_EQ(NmeaEventTimeNs("$GPRMC,000001,V,,,,,,,010199,,*00"), 915148801'000'000'000);
  EXPECT_FALSE(NmeaEventTimeNs("$GPRMC,,V,,,,,,,,,*00").has_value());
  EXPECT_FALSE(NmeaEventTimeNs("$GPGGA,030719.000,3747.0873,S*00").has_value());
  EXPECT_FALSE(NmeaEventTimeNs("$GPRMC,250000,A,,,,,,,311214,,*00").has_value()) << "hour 25";
  EXPECT_FALSE(NmeaEventTimeNs("$GPRMC,030719,A,,,,,,,310214,,*00").has_value()) << "31 February";
  // Found by fuzz/nmea_fuzz: a year outside int64 ns (1678-2262) overflowed; a receiver
  // without a fix says 0000. Only 1900-2199 date a sentence.
  EXPECT_FALSE(NmeaEventTimeNs("$GPZDA,094737,20,08,0000,,*00").has_value());
  EXPECT_FALSE(NmeaEventTimeNs("$GPZDA,094737,20,08,9999,,*00").has_value());
  // ... and a latitude past 90 or a longitude past 180 is no position.
  EXPECT_FALSE(DecodeRmc("$GPRMC,030719,A,9530.0,N,17518.8938,E,0.69,181.39,311214,,,A*00").has_value());
  EXPECT_FALSE(DecodeRmc("$GPRMC,030719,A,3747.0873,S,18118.8938,E,0.69,181.39,311214,,,A*00").has_value());
  EXPECT_TRUE(DecodeRmc("$GPRMC,030719,A,3747.0873,S,17518.8938,E,0.69,181.39,311214,,,A*00").has_value());
}

// edgeferry's decoding of every RMC sentence against gpsd's TPV report that follows it.
class RmcVsGpsd : public ::testing::TestWithParam<std::string> {};

TEST_P(RmcVsGpsd, TimeAndPositionMatchGpsd) {
  std::ifstream in(edgeferry::testing::SourceDir() + "/tests/data/nmea/expected/" + GetParam() + ".chk");
  ASSERT_TRUE(in) << GetParam();
  std::string line, rmc;
  int compared = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (std::regex_search(line, std::regex("^\\$..RMC,"))) {
      rmc = line;
      continue;
    }
    if (rmc.empty() || !line.starts_with("{\"class\":\"TPV\"")) continue;
    const auto tpv = nlohmann::json::parse(line);
    const auto fix = DecodeRmc(rmc);
    rmc.clear();
    if (!tpv.contains("time") || !tpv.contains("lat")) continue;
    ASSERT_TRUE(fix.has_value()) << line;
    std::string ts;
    AppendRfc3339Ns(fix->ts_ns, &ts);
    EXPECT_EQ(ts.substr(0, 23), tpv["time"].get<std::string>().substr(0, 23)) << rmc;
    EXPECT_NEAR(fix->lat, tpv["lat"].get<double>(), 1e-6);
    EXPECT_NEAR(fix->lon, tpv["lon"].get<double>(), 1e-6);
    if (tpv.contains("speed") && fix->speed_knots) {
      EXPECT_NEAR(*fix->speed_knots * 1852.0 / 3600.0, tpv["speed"].get<double>(), 1e-3) << "m/s";
    }
    ++compared;
  }
  EXPECT_GT(compared, 50) << "RMC/TPV pairs compared";
}

INSTANTIATE_TEST_SUITE_P(Receivers, RmcVsGpsd, ::testing::Values("sirfstarv-nmea.log", "ublox-8.log"),
                         [](const auto& p) { return std::regex_replace(p.param, std::regex("[^A-Za-z0-9]"), "_"); });

// edgeferry's decoding of every GGA sentence against the gpsd TPV report (with an
// altitude) that follows it: time of day, position and altitude above mean sea level.
class GgaVsGpsd : public ::testing::TestWithParam<std::string> {};

TEST_P(GgaVsGpsd, TimeOfDayPositionAndAltitudeMatchGpsd) {
  std::ifstream in(edgeferry::testing::SourceDir() + "/tests/data/nmea/expected/" + GetParam() + ".chk");
  ASSERT_TRUE(in) << GetParam();
  std::string line, gga;
  int compared = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (std::regex_search(line, std::regex("^\\$..GGA,"))) {
      gga = line;
      continue;
    }
    if (gga.empty() || !line.starts_with("{\"class\":\"TPV\"")) continue;
    const auto tpv = nlohmann::json::parse(line);
    if (!tpv.contains("lat") || !tpv.contains("time") || !(tpv.contains("altMSL") || tpv.contains("alt"))) continue;
    const auto fix = DecodeGga(gga);
    ASSERT_TRUE(fix.has_value()) << gga;
    // "2017-01-10T00:09:41.000Z": the time of day, as gpsd dates it.
    const std::string t = tpv["time"].get<std::string>();
    const int64_t tod_ms = ((std::stoll(t.substr(11, 2)) * 60 + std::stoll(t.substr(14, 2))) * 60 + std::stoll(t.substr(17, 2))) * 1000 +
                           std::stoll(t.substr(20, 3));
    EXPECT_EQ(fix->time_of_day_ns / 1'000'000, tod_ms) << gga;
    EXPECT_NEAR(fix->lat, tpv["lat"].get<double>(), 1e-6) << gga;
    EXPECT_NEAR(fix->lon, tpv["lon"].get<double>(), 1e-6) << gga;
    ASSERT_TRUE(fix->altitude_m.has_value()) << gga;
    EXPECT_NEAR(*fix->altitude_m, tpv.value("altMSL", tpv.value("alt", 0.0)), 1e-3) << gga;
    EXPECT_GE(fix->quality, 1) << gga;
    gga.clear();
    ++compared;
  }
  EXPECT_GT(compared, 50) << "GGA/TPV pairs compared";
}

INSTANTIATE_TEST_SUITE_P(Receivers, GgaVsGpsd, ::testing::Values("sirfstarv-nmea.log", "ublox-8.log"),
                         [](const auto& p) { return std::regex_replace(p.param, std::regex("[^A-Za-z0-9]"), "_"); });

TEST(Gga, FieldsAndRefusals) {
  const auto g = DecodeGga("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47");
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->time_of_day_ns, ((12 * 60 + 35) * 60 + 19) * 1'000'000'000LL);
  EXPECT_NEAR(g->lat, 48 + 7.038 / 60, 1e-9);
  EXPECT_NEAR(g->lon, 11 + 31.0 / 60, 1e-9);
  EXPECT_EQ(g->quality, 1);
  EXPECT_EQ(g->satellites, 8);
  EXPECT_EQ(g->hdop, 0.9);
  EXPECT_EQ(g->altitude_m, 545.4);
  const auto empty = DecodeGga("$GPGGA,123519,4807.038,S,01131.000,W,0,,,,M,,M,,*47");
  ASSERT_TRUE(empty.has_value());
  EXPECT_LT(empty->lat, 0);
  EXPECT_LT(empty->lon, 0);
  EXPECT_FALSE(empty->satellites || empty->hdop || empty->altitude_m);
  EXPECT_FALSE(DecodeGga("$GPGGA,,,,,,0,,,,M,,M,,*66").has_value()) << "no fix: no time, no position";
  EXPECT_FALSE(DecodeGga("$GPGGA,123519,48nan,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47").has_value());
  EXPECT_FALSE(DecodeGga("$GPRMC,123519,A,4807.038,N,01131.000,E,0.0,0.0,230394,,*00").has_value());
}

TEST(NmeaParser, JunkBeforeASentenceIsSplitOffAndTheSentenceKept) {
  auto parser = MakeNmeaParser();
  const auto p = parser->Parse(std::string("\xb5\x62\x01\x07\x5c", 5) + "$GPGSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5*33");
  EXPECT_TRUE(p.error.ok());
  EXPECT_EQ(p.junk.size(), 5u);
  EXPECT_EQ(p.channel, "GPGSA");
  EXPECT_EQ(p.content_type, ContentType::kNmea);
  EXPECT_EQ(p.payload, "$GPGSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5*33");
  EXPECT_FALSE(p.event_ts_ns.has_value());
  EXPECT_EQ(parser->Parse("\x01\x02garbage").error.message(), "no NMEA sentence start ($ or !) in 9 bytes");
}

TEST(CsvParser, HeaderThenTypedRows) {
  auto parser = MakeCsvParser({});
  EXPECT_TRUE(parser->Parse("reading,mote_id,humidity,temperature,note").skip);
  auto p = parser->Parse("1,1,43.82,30.21,");
  ASSERT_TRUE(p.error.ok());
  EXPECT_EQ(p.payload, R"({"reading":1,"mote_id":1,"humidity":43.82,"temperature":30.21,"note":null})");
  EXPECT_EQ(parser->Parse("1,2,3").error.message(),
            "row has 3 fields, expected 5 (reading,mote_id,humidity,temperature,note)");
  EXPECT_TRUE(parser->Parse("reading,mote_id,humidity,temperature,note").skip) << "a reprinted header";
  p = parser->Parse("007,-2,1e3,abc \"q\",x");
  EXPECT_EQ(p.payload, R"({"reading":"007","mote_id":-2,"humidity":1e3,"temperature":"abc q","note":"x"})");
}

TEST(CsvParser, ConfiguredColumnsSeparatorAndDecimalComma) {
  auto parser = MakeCsvParser({{"t", "rh"}, ';', true});
  const auto p = parser->Parse("21,5;48,9");
  ASSERT_TRUE(p.error.ok()) << p.error.ToString();
  EXPECT_EQ(p.payload, R"({"t":21.5,"rh":48.9})");
}

TEST(JsonLinesParser, ValidatesEachLine) {
  auto parser = MakeJsonLinesParser();
  EXPECT_TRUE(parser->Parse(R"({"a":1})").error.ok());
  const auto bad = parser->Parse(R"({"a":1)");
  EXPECT_FALSE(bad.error.ok());
  // The input ends where '}' was expected: offset 6, one past the last byte.
  EXPECT_TRUE(bad.error.message().starts_with("invalid JSON at byte 6: ")) << bad.error.message();
  using namespace std::string_literals;
  EXPECT_EQ(parser->Parse("{\"a\":1}\0{\"b\":2}"s).error.message(), "NUL byte at 7");
  EXPECT_EQ(parser->Parse("{\"a\":1} ]"s).error.message().substr(0, 24), "invalid JSON at byte 8: ");
}

}  // namespace
}  // namespace edgeferry::drivers::serial
