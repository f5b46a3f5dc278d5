#include "edgeferry/redact.h"

#include <cctype>

namespace edgeferry {

namespace {
// Redacts every value of a "name=value&..." query (or fragment) into *out.
void RedactQuery(std::string_view q, std::string* out) {
  size_t at = 0;
  while (at <= q.size()) {
    const size_t amp = std::min(q.find('&', at), q.size());
    const std::string_view pair = q.substr(at, amp - at);
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      // A bare value may itself be a secret (e.g. "?AbC123"); keep only empty ones.
      if (!pair.empty()) out->append(kRedacted);
    } else {
      out->append(pair.substr(0, eq + 1));
      out->append(kRedacted);
    }
    if (amp == q.size()) break;
    out->push_back('&');
    at = amp + 1;
  }
}
}  // namespace

std::string RedactUrl(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, scheme_end + 3));
  std::string_view rest = url.substr(scheme_end + 3);
  const size_t auth_end = std::min(rest.find_first_of("/?#"), rest.size());
  std::string_view authority = rest.substr(0, auth_end);
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    // The whole userinfo is a credential: "user:password@", but also a token passed
    // as the user name alone ("https://TOKEN@host/").
    out.append(kRedacted);
    out.push_back('@');
    authority = authority.substr(at + 1);
  }
  out.append(authority);
  rest = rest.substr(auth_end);
  const size_t q = rest.find_first_of("?#");
  out.append(rest.substr(0, q));
  if (q == std::string_view::npos) return out;
  rest = rest.substr(q);
  while (!rest.empty()) {
    const char mark = rest.front();  // '?' or '#'
    out.push_back(mark);
    rest.remove_prefix(1);
    const size_t next = mark == '?' ? std::min(rest.find('#'), rest.size()) : rest.size();
    RedactQuery(rest.substr(0, next), &out);
    rest.remove_prefix(next);
  }
  return out;
}

std::string RedactUrlsIn(std::string_view text) {
  std::string out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t mark = text.find("://", at);
    if (mark == std::string_view::npos) break;
    // The URL spans the non-space run around "://"; quotes and brackets end it.
    auto delim = [](char c) { return std::isspace(static_cast<unsigned char>(c)) || c == '"' || c == '\'' || c == '<' || c == '>'; };
    size_t begin = mark;
    while (begin > at && !delim(text[begin - 1])) --begin;
    size_t end = mark + 3;
    while (end < text.size() && !delim(text[end])) ++end;
    out.append(text.substr(at, begin - at));
    out.append(RedactUrl(text.substr(begin, end - begin)));
    at = end;
  }
  out.append(text.substr(std::min(at, text.size())));
  return out;
}

std::string EscapeControlChars(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

}  // namespace edgeferry
