// NMEA 0183 sentences: checksum validation, address field, and the date/time and
// position carried by RMC and ZDA. Pure functions, thread-safe.
//
// A sentence is "$" or "!" (encapsulated, e.g. AIS "!AIVDM"), an address field
// (talker + sentence formatter, e.g. "GPRMC", or "P" + maker code for proprietary
// ones, e.g. "PGRME"), comma-separated fields, "*", and two hex digits: the XOR of
// every byte between the start character and "*" (NMEA 0183 v4.10, 5.2.1).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "edgeferry/status.h"

namespace edgeferry::formats {

// OK when `sentence` (start character to checksum, no CR LF) is well formed and its
// checksum matches. Errors (InvalidArgument) say what is wrong: missing checksum,
// mismatch (with both values), non-printable byte, no address field.
Status ValidateNmeaSentence(std::string_view sentence);

// The address field: "GPRMC", "SDDBT", "AIVDM", "PGRME". Empty if there is none.
std::string_view NmeaAddress(std::string_view sentence);

// Date and time a sentence carries, in ns since the Unix epoch (UTC): RMC (time and
// ddmmyy date; two-digit years 80-99 are 19xx) and ZDA (time, day, month, year).
// nullopt for other sentences or empty/invalid fields.
std::optional<int64_t> NmeaEventTimeNs(std::string_view sentence);

// RMC, recommended minimum data (NMEA 0183 v4.10 6.3): UTC date and time, position,
// speed and course over ground.
struct RmcFix {
  int64_t ts_ns = 0;
  bool valid = false;  // status field 'A'
  double lat = 0;      // degrees, south negative
  double lon = 0;      // degrees, west negative
  std::optional<double> speed_knots;  // over ground; empty field = nullopt
  std::optional<double> course_deg;   // true course over ground
};
// Decodes an RMC sentence (any talker); nullopt if it is not RMC or lacks time or position.
// Does not check the checksum (ValidateNmeaSentence does).
std::optional<RmcFix> DecodeRmc(std::string_view sentence);

// GGA, fix data (NMEA 0183 v4.10 6.3): UTC time of day (GGA has no date), position,
// fix quality, satellites in use, HDOP and altitude above mean sea level.
struct GgaFix {
  int64_t time_of_day_ns = 0;  // since midnight UTC
  double lat = 0;              // degrees, south negative
  double lon = 0;              // degrees, west negative
  int quality = 0;             // 0 invalid, 1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, 6 estimated ...
  std::optional<int> satellites;
  std::optional<double> hdop;
  std::optional<double> altitude_m;  // above mean sea level
};
// Decodes a GGA sentence (any talker); nullopt if it is not GGA or lacks time, position
// or quality. Does not check the checksum.
std::optional<GgaFix> DecodeGga(std::string_view sentence);

}  // namespace edgeferry::formats
