#include "edgeferry/formats/nmea.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <vector>

namespace edgeferry::formats {

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Fields after the address, without the checksum.
std::vector<std::string_view> Fields(std::string_view sentence) {
  const auto star = sentence.rfind('*');
  std::string_view body = sentence.substr(1, star == std::string_view::npos ? std::string_view::npos : star - 1);
  std::vector<std::string_view> fields;
  size_t at = 0;
  while (true) {
    const auto comma = body.find(',', at);
    fields.push_back(body.substr(at, comma == std::string_view::npos ? std::string_view::npos : comma - at));
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  return fields;  // fields[0] is the address
}

bool Digits(std::string_view s, size_t n, int* out) {
  if (s.size() < n) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// "hhmmss" or "hhmmss.sss" -> ns since midnight.
std::optional<int64_t> TimeOfDayNs(std::string_view t) {
  int h, m, s;
  if (!Digits(t, 2, &h) || !Digits(t.substr(2), 2, &m) || !Digits(t.substr(4), 2, &s)) return std::nullopt;
  if (h > 23 || m > 59 || s > 60) return std::nullopt;
  int64_t frac_ns = 0;
  if (t.size() > 6) {
    if (t[6] != '.') return std::nullopt;
    int64_t scale = 100'000'000;
    for (char c : t.substr(7)) {
      if (c < '0' || c > '9') return std::nullopt;
      frac_ns += (c - '0') * scale;
      scale /= 10;
    }
  }
  return ((h * 60LL + m) * 60 + s) * 1'000'000'000 + frac_ns;
}

std::optional<int64_t> DateTimeNs(int year, int month, int day, std::string_view time) {
  using namespace std::chrono;
  // ns since 1970 in int64 cover 1678-2262; a ZDA year such as 0000 (a receiver
  // without a fix) would overflow, so only plausible years date a sentence.
  if (year < 1900 || year > 2199) return std::nullopt;
  const year_month_day ymd{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                           std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok()) return std::nullopt;
  const auto tod = TimeOfDayNs(time);
  if (!tod) return std::nullopt;
  return duration_cast<nanoseconds>(sys_days(ymd).time_since_epoch()).count() + *tod;
}

bool SentenceIs(std::string_view address, std::string_view type) {
  // Talker (2 letters) + formatter; proprietary sentences start with 'P' and never match.
  return address.size() == 5 && address[0] != 'P' && address.substr(2) == type;
}

std::optional<double> Coordinate(std::string_view value, std::string_view hemisphere, int degree_digits) {
  if (value.size() < static_cast<size_t>(degree_digits) + 2 || hemisphere.size() != 1) return std::nullopt;
  int deg;
  if (!Digits(value, static_cast<size_t>(degree_digits), &deg)) return std::nullopt;
  double minutes = 0;
  const auto rest = value.substr(static_cast<size_t>(degree_digits));
  // "mm.mmmm": digits and one dot (from_chars alone would take "-0" or "1e1").
  if (rest.empty() || rest.find_first_not_of("0123456789.") != std::string_view::npos) return std::nullopt;
  auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), minutes);
  if (ec != std::errc() || p != rest.data() + rest.size() || !(minutes >= 0 && minutes < 60)) return std::nullopt;
  double v = deg + minutes / 60.0;
  if (v > (degree_digits == 2 ? 90.0 : 180.0)) return std::nullopt;  // e.g. "9530.0" N
  if ((hemisphere == "S" || hemisphere == "W") && v != 0) v = -v;  // never -0
  else if (hemisphere != "N" && hemisphere != "E") return std::nullopt;
  return v;
}

// A plain decimal number ("0.69", "-12.5"), or nullopt when empty or malformed.
std::optional<double> Number(std::string_view v) {
  if (v.empty()) return std::nullopt;
  double out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size() || !std::isfinite(out)) return std::nullopt;
  return out;
}

}  // namespace

Status ValidateNmeaSentence(std::string_view s) {
  if (s.empty() || (s[0] != '$' && s[0] != '!')) return Status::InvalidArgument("does not start with $ or !");
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) return Status::InvalidArgument(fmt::format("non-printable byte 0x{:02x} in sentence", u));
  }
  const auto star = s.rfind('*');
  if (star == std::string_view::npos) return Status::InvalidArgument("no checksum (missing *hh): truncated?");
  // '*' is reserved for the checksum delimiter (5.1.3): two are two sentences glued.
  if (s.find('*') != star) return Status::InvalidArgument("more than one * (sentences run together?)");
  if (s.size() != star + 3 || HexDigit(s[star + 1]) < 0 || HexDigit(s[star + 2]) < 0) {
    const auto field = s.substr(star + 1);
    return Status::InvalidArgument(fmt::format("checksum field \"{}{}\" is not two hex digits", field.substr(0, 8),
                                               field.size() > 8 ? "..." : ""));
  }
  uint8_t sum = 0;
  for (char c : s.substr(1, star - 1)) sum ^= static_cast<uint8_t>(c);
  const int stated = HexDigit(s[star + 1]) * 16 + HexDigit(s[star + 2]);
  if (sum != stated) {
    return Status::InvalidArgument(fmt::format("bad checksum: computed {:02X}, sentence says {:02X}", sum, stated));
  }
  if (NmeaAddress(s).empty()) return Status::InvalidArgument("no address field");
  return Status::Ok();
}

std::string_view NmeaAddress(std::string_view s) {
  if (s.size() < 2) return {};
  const auto end = s.find_first_of(",*", 1);
  return s.substr(1, end == std::string_view::npos ? std::string_view::npos : end - 1);
}

std::optional<int64_t> NmeaEventTimeNs(std::string_view sentence) {
  const auto address = NmeaAddress(sentence);
  if (SentenceIs(address, "RMC")) {
    if (auto fix = DecodeRmc(sentence)) return fix->ts_ns;
    // Time and date without a position (no fix yet) still date the sentence.
    const auto f = Fields(sentence);
    int d, m, y;
    if (f.size() > 9 && Digits(f[9], 2, &d) && Digits(f[9].substr(2), 2, &m) && Digits(f[9].substr(4), 2, &y) &&
        f[9].size() == 6) {
      return DateTimeNs(y < 80 ? 2000 + y : 1900 + y, m, d, f[1]);
    }
    return std::nullopt;
  }
  if (SentenceIs(address, "ZDA")) {
    const auto f = Fields(sentence);
    int d, m, y;
    if (f.size() > 4 && f[2].size() == 2 && f[3].size() == 2 && f[4].size() == 4 && Digits(f[2], 2, &d) &&
        Digits(f[3], 2, &m) && Digits(f[4], 4, &y)) {
      return DateTimeNs(y, m, d, f[1]);
    }
  }
  return std::nullopt;
}

std::optional<RmcFix> DecodeRmc(std::string_view sentence) {
  if (!SentenceIs(NmeaAddress(sentence), "RMC")) return std::nullopt;
  const auto f = Fields(sentence);
  // 1 time, 2 status, 3 lat, 4 N/S, 5 lon, 6 E/W, 7 speed, 8 course, 9 date
  if (f.size() < 10 || f[9].size() != 6) return std::nullopt;
  int d, m, y;
  if (!Digits(f[9], 2, &d) || !Digits(f[9].substr(2), 2, &m) || !Digits(f[9].substr(4), 2, &y)) return std::nullopt;
  const auto ts = DateTimeNs(y < 80 ? 2000 + y : 1900 + y, m, d, f[1]);
  const auto lat = Coordinate(f[3], f[4], 2);
  const auto lon = Coordinate(f[5], f[6], 3);
  if (!ts || !lat || !lon) return std::nullopt;
  return RmcFix{*ts, f[2] == "A", *lat, *lon, Number(f[7]), Number(f[8])};
}

std::optional<GgaFix> DecodeGga(std::string_view sentence) {
  if (!SentenceIs(NmeaAddress(sentence), "GGA")) return std::nullopt;
  const auto f = Fields(sentence);
  // 1 time, 2 lat, 3 N/S, 4 lon, 5 E/W, 6 quality, 7 satellites, 8 HDOP, 9 altitude, 10 M
  if (f.size() < 10) return std::nullopt;
  const auto tod = TimeOfDayNs(f[1]);
  const auto lat = Coordinate(f[2], f[3], 2);
  const auto lon = Coordinate(f[4], f[5], 3);
  int quality = 0;
  if (!tod || !lat || !lon || f[6].size() != 1 || !Digits(f[6], 1, &quality)) return std::nullopt;
  GgaFix g{*tod, *lat, *lon, quality, std::nullopt, Number(f[8]), Number(f[9])};
  int sats = 0;
  if (!f[7].empty() && f[7].size() <= 2 && Digits(f[7], f[7].size(), &sats)) g.satellites = sats;
  return g;
}

}  // namespace edgeferry::formats
