#include "edgeferry/formats/text.h"

#include <gtest/gtest.h>

#include <chrono>

namespace edgeferry::formats {
namespace {

using Cells = std::vector<std::string>;

TEST(SplitCsvRow, QuotesSeparatorsAndTrimming) {
  EXPECT_EQ(SplitCsvRow("a,b,c", ','), (Cells{"a", "b", "c"}));
  EXPECT_EQ(SplitCsvRow("", ','), (Cells{""}));
  EXPECT_EQ(SplitCsvRow("a,,", ','), (Cells{"a", "", ""}));
  EXPECT_EQ(SplitCsvRow(" a ;\tb\t", ';'), (Cells{"a", "b"}));
  // RFC 4180: a quoted field holds the separator, and "" is one quote.
  EXPECT_EQ(SplitCsvRow(R"("x,y",2)", ','), (Cells{"x,y", "2"}));
  EXPECT_EQ(SplitCsvRow(R"("say ""hi""",2)", ','), (Cells{"say \"hi\"", "2"}));
  EXPECT_EQ(SplitCsvRow(R"("open,to the end)", ','), (Cells{"open,to the end"}));
  // A row of a million separators costs no more than the caller's columns + 1 cells.
  EXPECT_EQ(SplitCsvRow(std::string(1'000'000, ','), ',', 3).size(), 4u);
  EXPECT_EQ(SplitCsvRow("a,b,c", ',', 3).size(), 3u);
}

TEST(IsJsonNumber, Rfc8259Grammar) {
  for (const char* yes : {"0", "-0", "12", "-12.5", "1e3", "1E-3", "2.5e+10", "0.0001"}) {
    EXPECT_TRUE(IsJsonNumber(yes)) << yes;
  }
  for (const char* no : {"", "-", "+1", "01", ".5", "5.", "1e", "1e+", "NaN", "inf", "0x10", "1,5", " 1", "1 ", "--1"}) {
    EXPECT_FALSE(IsJsonNumber(no)) << no;
  }
}

TEST(IsJsonNumberInRange, OverflowIsTextUnderflowIsANumber) {
  for (const char* yes : {"0", "-12.5", "1e308", "1e-999", "-1e-400", "123456789012345678901234567890"}) {
    EXPECT_TRUE(IsJsonNumberInRange(yes)) << yes;
  }
  // Found by csv_fuzz: a cell like this made the serial CSV line invalid JSON.
  const std::string nines(400, '9');  // an integer beyond a double's range
  for (const char* no : {"43.79e3376", "1e309", "-1e999", nines.c_str(), "1e", "NaN"}) {
    EXPECT_FALSE(IsJsonNumberInRange(no)) << no;
  }
}

TEST(SplitKeyValues, PairsQuotesAndErrors) {
  auto kv = SplitKeyValues("temp=21.5  hum=40\tsite=\"line 1\" note=\"a \\\"b\\\" \\\\c\" empty=");
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  ASSERT_EQ(kv->size(), 5u);
  EXPECT_EQ((*kv)[0].key, "temp");
  EXPECT_EQ((*kv)[0].value, "21.5");
  EXPECT_EQ((*kv)[2].value, "line 1");
  EXPECT_EQ((*kv)[3].value, "a \"b\" \\c");
  EXPECT_EQ((*kv)[4].key, "empty");
  EXPECT_EQ((*kv)[4].value, "");

  kv = SplitKeyValues("a: 1; b: two words ;", ':', ';');
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  ASSERT_EQ(kv->size(), 2u);
  EXPECT_EQ((*kv)[0].value, "1");
  EXPECT_EQ((*kv)[1].key, "b");
  EXPECT_EQ((*kv)[1].value, "two words");

  // Reasons name byte offsets, never the payload's bytes (which may not be UTF-8).
  EXPECT_EQ(SplitKeyValues("a=1 lonely").status().message(), "the pair at byte 4 has no '='");
  EXPECT_EQ(SplitKeyValues("a=1 \xff\xfe").status().message(), "the pair at byte 4 has no '='");
  EXPECT_EQ(SplitKeyValues("=1").status().message(), "a pair has an empty key (at byte 0)");
  EXPECT_EQ(SplitKeyValues("a=\"open").status().message(), "the quote at byte 2 is not closed");
  EXPECT_EQ(SplitKeyValues("a=\"x\"y").status().message(), "text right after the quoted value at byte 2");
  EXPECT_TRUE(SplitKeyValues("   ")->empty());
  EXPECT_EQ(SplitKeyValues("a=1 b=2 c=3", '=', 0, 2).status().message(), "more than 2 key=value pairs");
}

}  // namespace
}  // namespace edgeferry::formats
