// Nesting depth of TOML and JSON texts, measured on the raw bytes before any parser
// (toml++ and nlohmann recurse per level: a deep enough document overflows the stack).
#include "nesting_depth.h"

#include <string>
#include <vector>

namespace edgeferry::agent {

bool JsonWithinDepth(std::string_view s, int limit) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

namespace {
// Skips a TOML string starting at s[i] (a quote); returns the index after it (or the
// end). Basic strings honour backslash escapes; triple-quoted ones span lines and may
// end in up to two more quotes ("""a"""" is the string a"). A single-line string stops
// before a line break and never swallows one: the depth scan must see every line start,
// or a [a.a.a...] header behind a malformed string would go uncounted.
size_t SkipTomlString(std::string_view s, size_t i) {
  const char q = s[i];
  const bool basic = q == '"';
  const std::string triple(3, q);
  if (s.substr(i, 3) == triple) {
    for (size_t j = i + 3; j < s.size(); ++j) {
      if (basic && s[j] == '\\') {
        ++j;
      } else if (s.substr(j, 3) == triple) {
        j += 3;
        for (int extra = 0; extra < 2 && j < s.size() && s[j] == q; ++extra) ++j;
        return j;
      }
    }
    return s.size();
  }
  for (size_t j = i + 1; j < s.size(); ++j) {
    if (s[j] == '\n') return j;
    if (basic && s[j] == '\\' && j + 1 < s.size() && s[j + 1] != '\n') {
      ++j;
    } else if (s[j] == q) {
      return j + 1;
    }
  }
  return s.size();
}

}  // namespace

// TOML: a value's depth is the components of its [table] header plus, for the key and
// each enclosing inline table or array, the key's components or one level.
// Overestimates a little; never recurses.
bool TomlWithinDepth(std::string_view s, int limit) {
  struct Open {
    char kind;  // '[' or '{'
    int depth_before;
  };
  std::vector<Open> open;
  int depth = 0;        // of the table whose keys are being read
  int value_depth = 0;  // of the value being read
  int key_parts = 0;    // dots so far in the key being read
  bool in_key = true, line_start = true;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '"' || c == '\'') {
      i = SkipTomlString(s, i);
      line_start = false;
      continue;
    }
    if (c == '#') {
      while (i < s.size() && s[i] != '\n') ++i;
      continue;
    }
    if (c == '\n') {
      if (open.empty()) {
        in_key = true;
        key_parts = 0;
        line_start = true;
      }
      ++i;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
      continue;
    }
    if (line_start && open.empty() && c == '[') {
      // [a.b.c] or [[a.b.c]]: the table's depth is its components (+1 for an array).
      int parts = s.substr(i, 2) == "[[" ? 2 : 1;
      ++i;
      while (i < s.size() && s[i] != ']' && s[i] != '\n') {
        if (s[i] == '"' || s[i] == '\'') {
          i = SkipTomlString(s, i);
          continue;
        }
        if (s[i] == '.' && ++parts > limit) return false;
        ++i;
      }
      if (parts > limit) return false;
      depth = parts;
      while (i < s.size() && s[i] == ']') ++i;
      line_start = false;
      in_key = false;  // the rest of the line is a comment or an error
      continue;
    }
    line_start = false;
    ++i;
    if (in_key) {
      if (c == '.') {
        if (depth + ++key_parts + 1 > limit) return false;
      } else if (c == '=') {
        in_key = false;
        value_depth = depth + key_parts + 1;
        key_parts = 0;
        if (value_depth > limit) return false;
      } else if (c == '}' && !open.empty() && open.back().kind == '{') {  // an empty {}
        depth = open.back().depth_before;
        open.pop_back();
        in_key = false;
        value_depth = !open.empty() && open.back().kind == '[' ? depth + 1 : depth;
      }
      continue;
    }
    if (c == '[' || c == '{') {
      open.push_back({c, depth});
      depth = value_depth;
      if (depth + 1 > limit) return false;
      if (c == '{') {
        in_key = true;
        key_parts = 0;
      } else {
        value_depth = depth + 1;
      }
    } else if ((c == ']' || c == '}') && !open.empty()) {
      depth = open.back().depth_before;
      open.pop_back();
      value_depth = !open.empty() && open.back().kind == '[' ? depth + 1 : depth;
    } else if (c == ',' && !open.empty()) {
      if (open.back().kind == '{') {
        in_key = true;
        key_parts = 0;
      } else {
        value_depth = depth + 1;
      }
    }
  }
  return true;
}

}  // namespace edgeferry::agent
