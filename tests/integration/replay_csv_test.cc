// edgeferry-replay --format csv (issue 12 item 18): RFC 4180 quoting, a separator option,
// and rows whose field count differs from the header's skipped and counted, never shifted.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sstream>

#include "agent_process.h"

namespace edgeferry::testing {
namespace {

// Runs the replay in --dry-run mode; returns the printed payloads (lines starting with '{')
// and the other output lines (messages, summary) apart.
int DryRun(const std::vector<std::string>& args, std::vector<nlohmann::json>* payloads, std::string* messages) {
  std::vector<std::string> argv = {ReplayBinary(), "--dry-run"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  const int rc = RunCommand(argv, &out);
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("{")) {
      payloads->push_back(nlohmann::json::parse(line));
    } else {
      *messages += line + "\n";
    }
  }
  return rc;
}

TEST(ReplayCsv, RealTelosbDataGivesTheSameObjectsWithCommaOrSemicolonSeparators) {
  TempDir dir;
  const auto lines = ReadLines(SourceDir() + "/tests/data/telosb-multihop-500.csv");
  ASSERT_EQ(lines.size(), 501u);
  std::string semi;
  for (std::string l : lines) {
    for (auto& c : l) c = c == ',' ? ';' : c;
    semi += l + "\n";
  }
  WriteFile(dir / "semi.csv", semi);
  std::vector<nlohmann::json> comma_out, semi_out;
  std::string msg;
  ASSERT_EQ(DryRun({SourceDir() + "/tests/data/telosb-multihop-500.csv"}, &comma_out, &msg), 0) << msg;
  ASSERT_EQ(DryRun({"--separator", ";", dir / "semi.csv"}, &semi_out, &msg), 0) << msg;
  ASSERT_EQ(comma_out.size(), 500u);
  EXPECT_EQ(semi_out, comma_out);
  // Expected values from the file itself, split by hand (the file has no quotes).
  for (size_t i = 0; i < 500; ++i) {
    std::vector<std::string> cells;
    std::istringstream row(lines[i + 1]);
    for (std::string c; std::getline(row, c, ',');) cells.push_back(c);
    ASSERT_EQ(cells.size(), 6u);
    ASSERT_EQ(comma_out[i].size(), 6u);
    EXPECT_EQ(comma_out[i]["reading"].get<int64_t>(), std::stoll(cells[0])) << i;
    EXPECT_DOUBLE_EQ(comma_out[i]["humidity"].get<double>(), std::stod(cells[3])) << i;
    EXPECT_DOUBLE_EQ(comma_out[i]["temperature"].get<double>(), std::stod(cells[4])) << i;
  }
  // A header of another width than the rows (here: the file's, cut to 5 columns).
  std::string narrow = "reading,mote_id,indoor,humidity,temperature\n";
  for (size_t i = 1; i < lines.size(); ++i) narrow += lines[i] + "\n";
  WriteFile(dir / "narrow.csv", narrow);
  std::vector<nlohmann::json> none;
  EXPECT_EQ(DryRun({dir / "narrow.csv"}, &none, &msg), 3);
  EXPECT_TRUE(none.empty()) << "no shifted or merged objects";
  EXPECT_NE(msg.find("narrow.csv:2: row skipped: 6 fields, the header has 5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("500 CSV rows skipped"), std::string::npos) << msg;
}

TEST(ReplayCsv, QuotedFieldsFollowRfc4180AndBadRowsAreSkippedWithAReasonAndCounted) {
  TempDir dir;
  WriteFile(dir / "rows.tsv",
            "id\tnote\tt\n"
            "1\t\"a\tb \"\"quoted\"\"\"\t21.5\n"    // separator and doubled quotes inside quotes
            "2\t\"two\nlines\"\t007\n"               // a line break inside quotes; 007 is not a JSON number
            "3\tshort\n"                             // 2 fields
            "4\tlong\t1\textra\n"                    // 4 fields
            "5\t\"closed\"junk\t1\n"                 // text after a closing quote
            "6\t\xff\t1\n"                           // not UTF-8
            "7\t\t-1e3\n");
  std::vector<nlohmann::json> out;
  std::string msg;
  EXPECT_EQ(DryRun({"--format", "csv", "--separator", "tab", dir / "rows.tsv"}, &out, &msg), 3) << msg;
  ASSERT_EQ(out.size(), 3u) << msg;
  EXPECT_EQ(out[0], nlohmann::json::parse(R"({"id":1,"note":"a\tb \"quoted\"","t":21.5})"));
  EXPECT_EQ(out[1], nlohmann::json::parse(R"({"id":2,"note":"two\nlines","t":"007"})"));
  EXPECT_EQ(out[2], nlohmann::json::parse(R"({"id":7,"note":"","t":-1000.0})"));
  EXPECT_NE(msg.find("rows.tsv:5: row skipped: 2 fields, the header has 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rows.tsv:6: row skipped: 4 fields, the header has 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rows.tsv:7: row skipped: text after the closing quote of field 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rows.tsv:8: row skipped: not valid UTF-8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("4 CSV rows skipped"), std::string::npos) << msg;
}

}  // namespace
}  // namespace edgeferry::testing
