#include "edgeferry/settings/common_keys.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

namespace edgeferry::settings {

bool ValidName(std::string_view s, bool allow_dot) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || (allow_dot && c == '.'))) {
      return false;
    }
  }
  return true;
}

bool StringList(TableReader& r, std::string_view key, std::vector<std::string>* out, std::string_view hint) {
  const toml::node* n = r.Node(key);
  if (!n) return false;
  if (!n->is_array() || n->as_array()->empty()) {
    r.Error(key, fmt::format("must be a non-empty list of strings{}", hint));
    return false;
  }
  size_t i = 0;
  for (const auto& v : *n->as_array()) {
    if (!v.is_string()) {
      r.Error(fmt::format("{}[{}]", key, i), "must be a string");
    } else {
      out->push_back(*v.value<std::string>());
    }
    ++i;
  }
  return true;
}

double Number(TableReader& r, std::string_view key, double fallback, double min) {
  const toml::node* n = r.Node(key);
  if (!n) return fallback;
  if (!n->is_number()) {
    r.Error(key, "must be a number");
    return fallback;
  }
  const double v = n->is_integer() ? static_cast<double>(*n->value<int64_t>()) : *n->value<double>();
  if (!(v >= min) || !std::isfinite(v)) {
    r.Error(key, fmt::format("must be a finite number of at least {}", min));
    return fallback;
  }
  return v;
}

std::optional<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string SecretFromFile(TableReader& r, std::string_view key) {
  const std::string file = r.String(key, "");
  if (file.empty()) return "";
  auto secret = ReadSecretFile(file);
  if (!secret) r.Error(key, fmt::format("cannot read \"{}\"", file));
  return secret.value_or("");
}

void CheckReadable(TableReader& r, std::string_view key, const std::string& path) {
  if (!path.empty() && !std::ifstream(path)) r.Error(key, fmt::format("cannot read \"{}\"", path));
}

std::string AuthorityProblem(std::string_view url, bool allow_userinfo) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "";
  std::string_view auth = url.substr(scheme_end + 3);
  auth = auth.substr(0, auth.find_first_of("/?#"));
  if (const size_t at = auth.rfind('@'); at != std::string_view::npos) {
    if (!allow_userinfo) return "must not carry a user name or password (user:pass@): set username and password_file";
    auth.remove_prefix(at + 1);
  }
  if (auth.empty()) return "has no host";
  size_t colon = std::string_view::npos;
  if (auth.front() == '[') {  // [IPv6]
    const size_t close = auth.find(']');
    if (close == std::string_view::npos) return "has an unterminated [IPv6] host";
    if (close + 1 < auth.size() && auth[close + 1] != ':') return "has bytes after its [IPv6] host";
    if (close + 1 < auth.size()) colon = close + 1;
  } else {
    colon = auth.rfind(':');
  }
  if (colon == std::string_view::npos) return "";
  if (colon == 0) return "has no host";
  const std::string_view port = auth.substr(colon + 1);
  int n = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || n < 1 || n > 65535) {
    const bool digits = !port.empty() && port.size() <= 16 &&
                        std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
    return digits ? fmt::format("port must be 1 to 65535 (got \"{}\")", port) : std::string("port must be 1 to 65535");
  }
  return "";
}

}  // namespace edgeferry::settings
