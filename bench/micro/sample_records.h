// Realistic sensor records for the microbenchmarks: the real UCI Air Quality rows in
// examples/data, as the JSON a sensor gateway typically sees (~150 bytes each).
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "edgeferry/record.h"

namespace edgeferry::bench {

inline std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && line[0] != '#') lines.push_back(line);
  }
  return lines;
}

// {"sensor":"aq-01","date":"10/03/2004","time":"18:00:00","co":2.6,...}: ~150 bytes.
inline std::vector<std::string> AirQualityJson() {
  std::vector<std::string> out;
  const auto lines = ReadLines(std::string(EDGEFERRY_SOURCE_DIR) + "/examples/data/uci-airquality-2000.csv");
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> c(1);
    for (char ch : lines[i]) {
      if (ch == ',') {
        c.emplace_back();
      } else {
        c.back().push_back(ch);
      }
    }
    if (c.size() < 15) continue;
    out.push_back("{\"sensor\":\"aq-01\",\"date\":\"" + c[0] + "\",\"time\":\"" + c[1] + "\",\"co\":" + c[2] +
                  ",\"nmhc\":" + c[4] + ",\"c6h6\":" + c[5] + ",\"nox\":" + c[7] + ",\"no2\":" + c[9] +
                  ",\"t\":" + c[12] + ",\"rh\":" + c[13] + ",\"ah\":" + c[14] + "}");
  }
  return out;
}

inline Record MakeRecord(const std::string& payload, int64_t ts_ns) {
  Record r;
  r.ts_ns = ts_ns;
  r.source = "plant";
  r.channel = "sensors/aq-01";
  r.content_type = ContentType::kJson;
  r.payload = payload;
  return r;
}

}  // namespace edgeferry::bench
