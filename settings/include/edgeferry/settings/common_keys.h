// Checks shared by every type's settings reader: lists, numbers, secret files, URL
// authorities, TLS files. Each records its errors through the TableReader it is given
// (messages name the key) and returns what it could read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeferry/settings/table_reader.h"

namespace edgeferry::settings {

inline constexpr int64_t kMs = 1'000'000;     // ns
inline constexpr int64_t kSec = 1000 * kMs;   // ns
inline constexpr int64_t kDay = 86400 * kSec; // ns

// 1..64 of A-Z a-z 0-9 _ - (and '.' with allow_dot): names of sources, sinks, gateways.
bool ValidName(std::string_view s, bool allow_dot);

// A non-empty list of strings at `key` appended to `out`; false when absent (or not
// such a list: an error, with `hint` after "must be a non-empty list of strings").
bool StringList(TableReader& r, std::string_view key, std::vector<std::string>* out, std::string_view hint = "");

// A finite number (integer or float) at `key`, at least `min`.
double Number(TableReader& r, std::string_view key, double fallback, double min);

// A file's content with trailing CR/LF dropped, or nullopt when it cannot be read.
std::optional<std::string> ReadSecretFile(const std::string& path);

// The secret in the file named at `key` (e.g. "password_file"), "" when the key is
// absent, or an error naming the key when the file cannot be read.
std::string SecretFromFile(TableReader& r, std::string_view key);

// An error naming `key` unless `path` is empty or a readable file.
void CheckReadable(TableReader& r, std::string_view key, const std::string& path);

// What is wrong with the authority (`[user@]host[:port]`) of `scheme://authority/...`,
// or "" if nothing (RFC 3986 3.2): Paho and curl would otherwise fail only at the first
// connect. With allow_userinfo false, `user:pass@` is refused (secrets belong in
// files). A port is 1..65535, and is echoed only when it is digits (in `user:pa/ss@h`
// the "port" would be part of a password).
std::string AuthorityProblem(std::string_view url, bool allow_userinfo);

// ca_file, cert_file, key_file and verify of a [<path>.tls] table, into any TLS options
// type with those four members; the files must be readable, cert and key go together.
template <typename Tls>
void ReadTlsFiles(TableReader& tr, Tls* tls) {
  tls->ca_file = tr.String("ca_file", "");
  tls->cert_file = tr.String("cert_file", "");
  tls->key_file = tr.String("key_file", "");
  tls->verify = tr.Bool("verify", true);
  if (tls->cert_file.empty() != tls->key_file.empty()) {
    tr.Error(tls->cert_file.empty() ? "cert_file" : "key_file", "cert_file and key_file go together");
  }
  CheckReadable(tr, "ca_file", tls->ca_file);
  CheckReadable(tr, "cert_file", tls->cert_file);
  CheckReadable(tr, "key_file", tls->key_file);
}

}  // namespace edgeferry::settings
