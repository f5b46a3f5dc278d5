// NMEA 0183 sentences from a serial device: checksum validation, address, event time,
// RMC position, and the NMEA frame parser. The checksum rule is recomputed here,
// independently, and must agree with ValidateNmeaSentence both ways.
#include <cmath>

#include "edgeferry/drivers/serial/frame_parser.h"
#include "edgeferry/formats/nmea.h"
#include "fuzz_check.h"

namespace serial = edgeferry::drivers::serial;
namespace formats = edgeferry::formats;
using edgeferry::fuzz::Excerpt;

namespace {

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// NMEA 0183 v4.10 5.2.1: start character, printable ASCII, "*hh" = XOR of the bytes
// between the start character and '*', and an address field.
bool WellFormed(std::string_view s) {
  if (s.size() < 4 || (s[0] != '$' && s[0] != '!')) return false;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) return false;
  }
  const size_t star = s.size() - 3;
  if (s[star] != '*' || s.find('*', 1) != star || Hex(s[star + 1]) < 0 || Hex(s[star + 2]) < 0) return false;
  unsigned sum = 0;
  for (size_t i = 1; i < star; ++i) sum ^= static_cast<unsigned char>(s[i]);
  if (sum != static_cast<unsigned>(Hex(s[star + 1]) * 16 + Hex(s[star + 2]))) return false;
  return s[1] != ',' && s[1] != '*';  // a non-empty address field
}

constexpr int64_t kNsPerYear = 31'556'952LL * 1'000'000'000LL;  // Gregorian mean year

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view s(reinterpret_cast<const char*>(data), size);

  const bool valid = formats::ValidateNmeaSentence(s).ok();
  FUZZ_CHECK(valid == WellFormed(s), "ValidateNmeaSentence says %s for \"%s\"", valid ? "valid" : "invalid",
             Excerpt(s).c_str());

  const std::string_view address = formats::NmeaAddress(s);
  FUZZ_CHECK(address.empty() || (address.data() == s.data() + 1 && address.size() < s.size()),
             "address is not the field after the start character");
  FUZZ_CHECK(address.find_first_of(",*") == std::string_view::npos, "address spans a field separator");

  if (const auto ts = formats::NmeaEventTimeNs(s)) {
    // Dates a device can carry: two-digit RMC years 1980-2079, four-digit ZDA years
    // 0000-9999 (int64 ns cover 1678-2262). Only plausible years may date a record.
    FUZZ_CHECK(*ts >= -70 * kNsPerYear && *ts < 230 * kNsPerYear, "event time %lld ns is not a plausible date",
               static_cast<long long>(*ts));
  }
  if (const auto fix = formats::DecodeRmc(s)) {
    FUZZ_CHECK(std::fabs(fix->lat) <= 90.0, "latitude %f out of range for \"%s\"", fix->lat, Excerpt(s).c_str());
    FUZZ_CHECK(std::fabs(fix->lon) <= 180.0, "longitude %f out of range for \"%s\"", fix->lon, Excerpt(s).c_str());
  }

  auto parser = serial::MakeNmeaParser();
  const serial::ParsedFrame p = parser->Parse(s);
  if (p.error.ok()) {
    FUZZ_CHECK(p.content_type == edgeferry::ContentType::kNmea, "accepted sentence is not content type nmea");
    FUZZ_CHECK(p.junk + p.payload == s, "junk + sentence is not the frame");
    FUZZ_CHECK(formats::ValidateNmeaSentence(p.payload).ok(), "accepted an invalid sentence");
    FUZZ_CHECK(p.channel == formats::NmeaAddress(p.payload), "channel is not the address field");
  } else {
    FUZZ_CHECK(!p.error.message().empty(), "a rejected frame carries no reason");
  }
  return 0;
}
