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

namespace edgeferry::drivers::serial {

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

struct RmcFix {
  int64_t ts_ns = 0;
  bool valid = false;  // status field 'A'
  double lat = 0;      // degrees, south negative
  double lon = 0;      // degrees, west negative
};
// Decodes an RMC sentence (any talker); nullopt if it is not RMC or lacks time or position.
std::optional<RmcFix> DecodeRmc(std::string_view sentence);

}  // namespace edgeferry::drivers::serial
