#include "edgeferry/settings/table_reader.h"

#include <fmt/format.h>

#include "edgeferry/units.h"

namespace edgeferry::settings {

std::string Errors::Join() const {
  std::string out;
  for (const auto& e : errors) out += e + "\n";
  return out;
}

namespace detail {

template <typename T>
std::string RangeTextOf(T min, T max) {
  using U = std::make_unsigned_t<T>;
  const U span = static_cast<U>(static_cast<U>(max) - static_cast<U>(min));  // exact when max >= min
  if (max < min || span > 3) return fmt::format("between {} and {}", min, max);
  std::string out;
  for (U k = 0; k <= span; ++k) {
    out += fmt::format("{}{}", k == 0 ? "" : k == span ? " or " : ", ", static_cast<T>(static_cast<U>(min) + k));
  }
  return out;
}
std::string RangeText(int64_t min, int64_t max) { return RangeTextOf(min, max); }
std::string RangeText(uint64_t min, uint64_t max) { return RangeTextOf(min, max); }

std::string BytesRangeError(uint64_t min, uint64_t max, uint64_t got) {
  return fmt::format("must be between {} and {} (got {})", FormatBytes(min), FormatBytes(max), FormatBytes(got));
}

std::optional<uint64_t> BytesValue(const toml::node& n) {
  if (n.is_integer() && *n.value<int64_t>() >= 0) return static_cast<uint64_t>(*n.value<int64_t>());
  if (n.is_string()) return ParseBytes(*n.value<std::string>());
  return std::nullopt;
}

}  // namespace detail

std::string TableReader::Key(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

void TableReader::Error(std::string_view key, std::string_view reason) {
  errors_->errors.push_back(fmt::format("{}: {}", Key(key), reason));
}

bool TableReader::Has(std::string_view key) {
  known_.insert(std::string(key));
  return table_ && table_->contains(key);
}

const toml::node* TableReader::Node(std::string_view key) {
  known_.insert(std::string(key));
  return table_ ? table_->get(key) : nullptr;
}

std::string TableReader::String(std::string_view key, std::string fallback, bool required) {
  const toml::node* n = Node(key);
  if (!n) {
    if (required) Error(key, "is required");
    return fallback;
  }
  if (auto v = n->value<std::string>(); v && n->is_string()) return *v;
  Error(key, "must be a string");
  return fallback;
}

bool TableReader::Bool(std::string_view key, bool fallback) {
  const toml::node* n = Node(key);
  if (!n) return fallback;
  if (n->is_boolean()) return *n->value<bool>();
  Error(key, "must be true or false");
  return fallback;
}

int64_t TableReader::Duration(std::string_view key, int64_t fallback, int64_t min_ns, int64_t max_ns) {
  const toml::node* n = Node(key);
  if (!n) return fallback;
  std::optional<int64_t> v;
  if (n->is_string()) v = ParseDurationNs(*n->value<std::string>());
  if (n->is_integer() && *n->value<int64_t>() == 0) v = 0;
  if (!v) {
    Error(key, "must be a duration such as \"250ms\", \"30s\", \"15m\", \"6h\" or \"7d\"");
    return fallback;
  }
  if (*v < min_ns || *v > max_ns) {
    Error(key, fmt::format("must be between {} ms and {} ms (got {} ms)", min_ns / 1'000'000, max_ns / 1'000'000,
                           *v / 1'000'000));
    return fallback;
  }
  return *v;
}

std::string TableReader::Enum(std::string_view key, std::string fallback,
                              std::initializer_list<std::string_view> allowed) {
  const toml::node* n = Node(key);
  if (!n) return fallback;
  std::string options;
  for (auto a : allowed) options += (options.empty() ? "" : ", ") + fmt::format("\"{}\"", a);
  if (!n->is_string()) {
    Error(key, "must be one of " + options);
    return fallback;
  }
  const std::string v = *n->value<std::string>();
  for (auto a : allowed) {
    if (a == v) return v;
  }
  Error(key, fmt::format("must be one of {} (got \"{}\")", options, v));
  return fallback;
}

const toml::table* TableReader::Table(std::string_view key) {
  const toml::node* n = Node(key);
  if (!n) return nullptr;
  if (n->is_table()) return n->as_table();
  Error(key, "must be a table");
  return nullptr;
}

void TableReader::Finish() {
  if (finished_ || !table_) return;
  finished_ = true;
  for (const auto& [k, v] : *table_) {
    if (!known_.count(std::string(k.str()))) errors_->errors.push_back(fmt::format("{}: unknown key", Key(k.str())));
  }
}

}  // namespace edgeferry::settings
