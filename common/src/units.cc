#include "edgeferry/units.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cmath>

namespace edgeferry {

namespace {
struct Suffix {
  std::string_view name;
  double factor;
};

std::optional<double> ParseWithSuffix(std::string_view text, std::initializer_list<Suffix> suffixes,
                                      bool allow_bare) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  double number = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + i, number);
  if (ec != std::errc() || ptr != text.data() + i) return std::nullopt;
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  if (unit.empty()) {
    if (allow_bare || number == 0) return number;
    return std::nullopt;
  }
  for (const auto& s : suffixes) {
    if (unit == s.name) return number * s.factor;
  }
  return std::nullopt;
}
}  // namespace

std::optional<uint64_t> ParseBytes(std::string_view text) {
  auto v = ParseWithSuffix(text,
                           {{"B", 1},
                            {"KiB", 1024.0},
                            {"MiB", 1024.0 * 1024},
                            {"GiB", 1024.0 * 1024 * 1024},
                            {"KB", 1e3},
                            {"MB", 1e6},
                            {"GB", 1e9}},
                           /*allow_bare=*/true);
  if (!v || *v > 4.6e18) return std::nullopt;
  return static_cast<uint64_t>(std::llround(*v));
}

std::optional<int64_t> ParseDurationNs(std::string_view text) {
  auto v = ParseWithSuffix(text,
                           {{"ns", 1},
                            {"us", 1e3},
                            {"ms", 1e6},
                            {"s", 1e9},
                            {"m", 60e9},
                            {"min", 60e9},
                            {"h", 3600e9},
                            {"d", 86400e9}},
                           /*allow_bare=*/false);
  if (!v || *v > 9.2e18) return std::nullopt;
  return static_cast<int64_t>(std::llround(*v));
}

std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, kUnits[u]);
}

void AppendRfc3339Ns(int64_t ts_ns, std::string* out) {
  using namespace std::chrono;
  // Integer floor division, not floor<days> on nanoseconds: the whole int64 range (a
  // device's clock can say anything) must not overflow on the way back to nanoseconds.
  constexpr int64_t kNsPerSec = 1'000'000'000, kSecPerDay = 86'400;
  int64_t secs = ts_ns / kNsPerSec, ns = ts_ns % kNsPerSec;
  if (ns < 0) {
    ns += kNsPerSec;
    secs -= 1;
  }
  int64_t day = secs / kSecPerDay, sod = secs % kSecPerDay;
  if (sod < 0) {
    sod += kSecPerDay;
    day -= 1;
  }
  const year_month_day ymd{sys_days{days{day}}};
  fmt::format_to(std::back_inserter(*out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
                 static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                 static_cast<unsigned>(ymd.day()), sod / 3600, sod / 60 % 60, sod % 60, ns);
}

}  // namespace edgeferry
