// Reads one TOML table against a schema written as calls: each getter marks its key as
// known, checks its type and bounds, and on a problem records "path.key: reason" in
// the shared error list and returns the fallback. Finish() (or the destructor)
// reports every key nobody asked for, so a typo is an error, never a silent default.
//
// Not thread-safe; one reader per table, used while the table is alive. The table and
// the error list are borrowed, not owned.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "edgeferry/settings/context.h"

namespace edgeferry::settings {

namespace detail {
// "0, 1 or 2" for a short range, "between 50 and 4000000" otherwise.
std::string RangeText(int64_t min, int64_t max);
std::string RangeText(uint64_t min, uint64_t max);
std::string BytesRangeError(uint64_t min, uint64_t max, uint64_t got);
std::optional<uint64_t> BytesValue(const toml::node& n);
}  // namespace detail

class TableReader {
 public:
  // `table` may be null (an absent optional table: every getter returns its fallback);
  // `path` is the table's key path ("" for the root), prefixed to every message.
  TableReader(const toml::table* table, std::string path, Errors* errors)
      : table_(table), path_(std::move(path)), errors_(errors) {}
  ~TableReader() { Finish(); }
  TableReader(const TableReader&) = delete;
  TableReader& operator=(const TableReader&) = delete;

  // "path.key" (or "key" at the root).
  std::string Key(std::string_view key) const;
  Errors* errors() { return errors_; }
  const toml::table* table() const { return table_; }
  // Records "path.key: reason".
  void Error(std::string_view key, std::string_view reason);
  // Whether `key` is set; marks it known.
  bool Has(std::string_view key);
  // The node at `key`, or null; marks it known. The caller checks its type.
  const toml::node* Node(std::string_view key);

  std::string String(std::string_view key, std::string fallback, bool required = false);
  bool Bool(std::string_view key, bool fallback);

  // An integer key read into T. Every value outside [min, max] is an error naming the
  // key; the bounds are T's, so nothing read here is narrowed by a cast later
  // (qos = 4294967297 once became QoS 1). T is always spelled at the call.
  template <typename T>
  T Int(std::string_view key, std::type_identity_t<T> fallback, std::type_identity_t<T> min,
        std::type_identity_t<T> max) {
    static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
    const toml::node* n = Node(key);
    if (!n) return fallback;
    if (!n->is_integer()) {
      Error(key, "must be an integer");
      return fallback;
    }
    const int64_t v = *n->value<int64_t>();
    if (std::cmp_less(v, min) || std::cmp_greater(v, max)) {
      const std::string range = std::is_signed_v<T> ? detail::RangeText(int64_t(min), int64_t(max))
                                                    : detail::RangeText(uint64_t(min), uint64_t(max));
      Error(key, "must be " + range + " (got " + std::to_string(v) + ")");
      return fallback;
    }
    return static_cast<T>(v);  // in [min, max], so in T's range
  }

  // A number of bytes: an integer, or a string with a unit ("64MiB", "512KiB", "1GB").
  // T is uint64_t unless the field is narrower (size_t is 32 bits on armhf).
  template <typename T = uint64_t>
  T Bytes(std::string_view key, std::type_identity_t<T> fallback, std::type_identity_t<T> min,
          std::type_identity_t<T> max) {
    static_assert(std::is_unsigned_v<T>);
    const toml::node* n = Node(key);
    if (!n) return fallback;
    const std::optional<uint64_t> v = detail::BytesValue(*n);
    if (!v) {
      Error(key, "must be a size such as 4096, \"512KiB\", \"64MiB\" or \"1GiB\"");
      return fallback;
    }
    if (*v < min || *v > max) {
      Error(key, detail::BytesRangeError(min, max, *v));
      return fallback;
    }
    return static_cast<T>(*v);  // <= max, so in T's range
  }

  // A duration in ns from a string with a unit ("250ms", "30s", "15m", "6h", "7d"), or
  // the integer 0; within [min_ns, max_ns].
  int64_t Duration(std::string_view key, int64_t fallback, int64_t min_ns, int64_t max_ns);

  // One of `allowed`, or the fallback (absent) and an error (anything else).
  std::string Enum(std::string_view key, std::string fallback, std::initializer_list<std::string_view> allowed);

  // The sub-table at `key`, or null (absent, or not a table: an error).
  const toml::table* Table(std::string_view key);

  // Reports the keys of the table nobody asked for as "path.key: unknown key". Once.
  void Finish();

 private:
  const toml::table* table_;
  std::string path_;
  Errors* errors_;
  std::set<std::string> known_;
  bool finished_ = false;
};

}  // namespace edgeferry::settings
