// SerialSource over real pseudo-terminals, storing into a real buffer::Store: real
// receiver logs replayed at line rates and at full speed, CSV and JSON lines,
// unplug/replug behind a symlink, an absent device, garbage.
#include "edgeferry/drivers/serial/serial_source.h"

#include <gtest/gtest.h>
#include <time.h>

#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "edgeferry/buffer/store.h"
#include "edgeferry/clock.h"
#include "edgeferry/drivers/serial/frame_parser.h"
#include "edgeferry/drivers/serial/framer.h"
#include "edgeferry/formats/nmea.h"
#include "pseudo_terminal.h"
#include "store_ingest.h"
#include "test_support.h"

namespace edgeferry::drivers::serial {
namespace {

using edgeferry::formats::NmeaAddress;
using edgeferry::formats::NmeaEventTimeNs;
using edgeferry::formats::ValidateNmeaSentence;
using edgeferry::testing::Pty;
using edgeferry::testing::TempDir;
using edgeferry::testing::WaitUntil;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// What a correct source must make of a byte stream: the frames (CR/LF split), each
// either a stored sentence or a dead letter.
struct Expected {
  std::vector<std::string> stored;
  size_t dead = 0;
};

Expected Classify(const std::string& stream) {
  Expected e;
  Framer framer({}, [&](std::string_view f) {
    auto p = MakeNmeaParser()->Parse(f);
    if (!p.junk.empty()) ++e.dead;
    if (p.error.ok()) e.stored.push_back(p.payload); else ++e.dead;
  }, [&](std::string_view, const std::string&) { ++e.dead; });
  framer.Feed(stream);
  // Cut at the end of the replay: a record only when its checksum proves it complete.
  if (const std::string rest = framer.TakePartial(); !rest.empty()) {
    auto p = MakeNmeaParser()->Parse(rest);
    if (!p.junk.empty()) ++e.dead;
    if (p.error.ok()) e.stored.push_back(p.payload); else ++e.dead;
  }
  return e;
}

class SerialSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    buffer::StoreOptions o;
    o.path = dir_ / "buffer.db";
    store_ = std::move(buffer::Store::Open(o)).value();
    ingest_ = std::make_unique<edgeferry::testing::StoreIngest>(*store_, "source:serial");
  }
  SerialSourceConfig Config(const std::string& device, Format format = Format::kNmea) {
    SerialSourceConfig c;
    c.name = "gps";
    c.device = device;
    c.format = format;
    c.reopen_min_ns = 20'000'000;
    c.reopen_max_ns = 100'000'000;
    return c;
  }
  std::vector<StoredRecord> Stored() {
    std::vector<StoredRecord> out;
    EXPECT_TRUE(store_->ReadAfter(0, buffer::ReadLimits{1'000'000, 1ull << 30}, &out).ok());
    return out;
  }
  std::vector<buffer::DeadLetter> Dead() { return store_->ListDeadLetters(0, 1'000'000).value(); }
  static std::string Log(const std::string& name) {
    return edgeferry::testing::ReceiverOutput(edgeferry::testing::SourceDir() + "/tests/data/nmea/" + name);
  }

  TempDir dir_;
  std::unique_ptr<buffer::Store> store_;
  std::unique_ptr<edgeferry::testing::StoreIngest> ingest_;
};

class RealLogs : public SerialSourceTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(RealLogs, EveryValidSentenceStoredOnceInOrderAndEveryBadFrameDeadLettered) {
  const std::string stream = Log(GetParam());
  const Expected want = Classify(stream);
  Pty pty(dir_ / "dev/gps0");
  SerialSource source(Config(pty.path()), *ingest_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  ASSERT_TRUE(pty.Write(stream));  // full speed
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == want.stored.size(); }, 10s))
      << source.Stats().stored << " of " << want.stored.size();
  pty.Close();  // the replay ends: the last, unterminated line is cut
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().dead_lettered == want.dead; }, 5s))
      << source.Stats().dead_lettered << " dead letters, want " << want.dead;
  source.Stop();
  const int64_t stopped_ns = SystemClock().NowNs();
  const auto stored = Stored();
  ASSERT_EQ(stored.size(), want.stored.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    ASSERT_EQ(stored[i].record.payload, want.stored[i]) << i;
    EXPECT_EQ(stored[i].record.channel, std::string(NmeaAddress(want.stored[i])));
    EXPECT_EQ(stored[i].record.content_type, ContentType::kNmea);
    // The receiver's own time is the event time; ts is when the gateway read it.
    EXPECT_EQ(stored[i].record.event_ts_ns, NmeaEventTimeNs(want.stored[i]).value_or(0)) << want.stored[i];
    EXPECT_LE(stored[i].record.ts_ns, stopped_ns);
    EXPECT_GT(stored[i].record.ts_ns, stopped_ns - 120'000'000'000);
    EXPECT_EQ(stored[i].record.ts_source,
              SystemClock().Synchronized() ? TsSource::kClock : TsSource::kUnsynced);
  }
  std::printf("[ serial ] %s: %zu sentences stored, %zu dead-lettered\n", GetParam().c_str(), stored.size(), want.dead);
  for (const auto& d : Dead()) std::printf("[ serial ]   DLQ %-45.45s %zu bytes\n", d.reason.c_str(), d.record.payload.size());
}

INSTANTIATE_TEST_SUITE_P(Receivers, RealLogs,
                         ::testing::Values("bu353s4.log", "garmin-geko201.log", "ublox-8.log", "sirfstarv-nmea.log",
                                           "bundg_zeus_9.log", "sounder.log"),
                         [](const auto& p) {
                           std::string n = p.param.substr(0, p.param.find('.'));
                           for (auto& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return n;
                         });

TEST_F(SerialSourceTest, KnownDefectsInTheLogsAreDeadLetteredWithTheirReason) {
  // The README's counts of lines starting with $ or ! whose checksum is right.
  for (const auto& [log, valid_lines] : std::vector<std::pair<std::string, size_t>>{
           {"bu353s4.log", 90}, {"garmin-geko201.log", 212}, {"ublox-8.log", 1007}}) {
    EXPECT_GE(Classify(Log(log)).stored.size(), valid_lines) << log;
  }
  Pty pty(dir_ / "dev/gps0");
  SerialSource source(Config(pty.path()), *ingest_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  ASSERT_TRUE(pty.Write(Log("garmin-geko201.log") + Log("ublox-8.log")));
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().received >= 1200; }, 10s));
  std::this_thread::sleep_for(200ms);
  std::map<std::string, int> reasons;
  for (const auto& d : Dead()) {
    reasons[d.reason.substr(0, d.reason.find(':'))]++;
    EXPECT_EQ(d.stage, "source:serial");
  }
  // garmin-geko201 ends with "$GPBOD,,T,,M,,*"; ublox-8 has a binary UBX frame glued
  // before a sentence (the sentence is kept) and ends with a sentence cut short.
  EXPECT_EQ(reasons, (std::map<std::string, int>{{"checksum field \"\" is not two hex digits", 1},
                                                 {"144 bytes of non-NMEA data before a sentence", 1},
                                                 {"no checksum (missing *hh)", 1}}));
  // Every record read has one outcome: the UBX bytes split off before a sentence count
  // as a record of their own (received once, dead-lettered), the sentence as another.
  const auto st = source.Stats();
  EXPECT_EQ(st.received, st.stored + st.dead_lettered + st.rejected);
  EXPECT_EQ(st.dead_lettered, 3u);
}

TEST_F(SerialSourceTest, PacedAtSerialLineRates) {
  const std::string stream = Log("bu353s4.log");
  for (const auto& [baud, bytes] : std::vector<std::pair<unsigned, size_t>>{{4800, 700}, {9600, 1400}, {115200, stream.size()}}) {
    SCOPED_TRACE(baud);
    const std::string part = stream.substr(0, stream.rfind('\n', bytes) + 1);
    const Expected want = Classify(part);
    Pty pty(dir_ / "dev/gps0");
    SerialSource source(Config(pty.path()), *ingest_);
    ASSERT_TRUE(source.Start().ok());
    ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
    const uint64_t before = store_->LastSeq();
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(pty.Write(part, baud));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_GT(secs, 0.8 * static_cast<double>(part.size()) * 10 / baud) << "paced";
    ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == want.stored.size(); }, 5s));
    EXPECT_EQ(source.Stats().dead_lettered, 0u);
    std::vector<StoredRecord> got;
    ASSERT_TRUE(store_->ReadAfter(before, buffer::ReadLimits{100000, 1 << 30}, &got).ok());
    ASSERT_EQ(got.size(), want.stored.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].record.payload, want.stored[i]);
  }
}

TEST_F(SerialSourceTest, CsvRowsBecomeTypedJsonObjects) {
  const std::string csv = edgeferry::testing::ReadFile(edgeferry::testing::SourceDir() + "/tests/data/telosb-multihop-500.csv");
  Pty pty(dir_ / "dev/motes");
  auto c = Config(pty.path(), Format::kCsv);
  c.name = "motes";
  SerialSource source(c, *ingest_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  // A cell beyond a double's range (found by csv_fuzz) is text, or the line would not parse.
  ASSERT_TRUE(pty.Write(csv + "9,9,0,43.79e3376,1e-999,0\n1,2,3\n", 115200));
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == 501 && source.Stats().dead_lettered == 1; }, 10s))
      << source.Stats().stored;
  const auto stored = Stored();
  EXPECT_EQ(stored[0].record.payload,
            R"({"reading":1,"mote_id":1,"indoor":0,"humidity":43.82,"temperature":30.21,"label":0})");
  EXPECT_EQ(stored[0].record.content_type, ContentType::kJson);
  EXPECT_EQ(stored[0].record.channel, pty.path());
  EXPECT_EQ(stored[500].record.payload,
            R"({"reading":9,"mote_id":9,"indoor":0,"humidity":"43.79e3376","temperature":1e-999,"label":0})");
  EXPECT_EQ(Dead()[0].reason, "row has 3 fields, expected 6 (reading,mote_id,indoor,humidity,temperature,label)");
}

// Issue 12 item 8: a cell that is not UTF-8 dead-letters its row (bytes kept), it does
// not become the string "<invalid utf-8>".
TEST_F(SerialSourceTest, CsvRowsWithInvalidUtf8AreDeadLetteredWithTheReason) {
  Pty pty(dir_ / "dev/motes");
  auto c = Config(pty.path(), Format::kCsv);
  SerialSource source(c, *ingest_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  const std::string bad_row = "2,caf\xe9,1";  // Latin-1 e-acute
  ASSERT_TRUE(pty.Write("id,name,n\n1,caf\xc3\xa9,1\n" + bad_row + "\n3,\xff\xfe,\n4,ok,\x80\n5,ok,5\n"));
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == 2 && source.Stats().dead_lettered == 3; }, 10s));
  const auto stored = Stored();
  EXPECT_EQ(stored[0].record.payload, "{\"id\":1,\"name\":\"caf\xc3\xa9\",\"n\":1}");
  EXPECT_EQ(stored[1].record.payload, "{\"id\":5,\"name\":\"ok\",\"n\":5}");
  const auto dead = Dead();
  ASSERT_EQ(dead.size(), 3u);
  EXPECT_EQ(dead[0].record.payload, bad_row);
  EXPECT_EQ(dead[0].reason, "field 2 (name) is not valid UTF-8");
  EXPECT_EQ(dead[1].reason, "field 2 (name) is not valid UTF-8");
  EXPECT_EQ(dead[2].reason, "field 3 (n) is not valid UTF-8");
  for (const auto& r : stored) EXPECT_EQ(r.record.payload.find("<invalid utf-8>"), std::string::npos);
}

TEST_F(SerialSourceTest, JsonLinesAreValidated) {
  auto lines = edgeferry::testing::ReadGzipLines(edgeferry::testing::SourceDir() +
                                                 "/examples/data/lorawan-tourperret-2000.ndjson.gz");
  lines.resize(300);
  std::string stream;
  for (size_t i = 0; i < lines.size(); ++i) {
    stream += lines[i] + "\r\n";
    if (i == 100 || i == 200) stream += "{\"broken\": \r\n";
  }
  Pty pty(dir_ / "dev/lora");
  SerialSource source(Config(pty.path(), Format::kJson), *ingest_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  ASSERT_TRUE(pty.Write(stream));
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == 300 && source.Stats().dead_lettered == 2; }, 10s));
  const auto stored = Stored();
  for (size_t i = 0; i < 300; ++i) ASSERT_EQ(stored[i].record.payload, lines[i]);
  EXPECT_TRUE(Dead()[0].reason.starts_with("invalid JSON")) << Dead()[0].reason;
}

// Issue 12 item 6 on the serial json format: a NUL after the value is not the end.
TEST_F(SerialSourceTest, JsonLinesWithANulOrTooDeepAreDeadLettered) {
  Pty pty(dir_ / "dev/lora");
  SerialSource source(Config(pty.path(), Format::kJson), *ingest_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  const std::string injected("{\"a\":1}\0,\"injected\":true,\"x\":\"", 30);
  ASSERT_TRUE(pty.Write("{\"ok\":1}\n" + injected + "\n" + std::string(100, '[') + std::string(100, ']') + "\n"));
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == 1 && source.Stats().dead_lettered == 2; }, 10s));
  const auto dead = Dead();
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].record.payload, injected);
  EXPECT_EQ(dead[0].reason, "NUL byte at 7");
  EXPECT_EQ(dead[1].reason, "nesting depth > 64");
}

TEST_F(SerialSourceTest, UnplugAndReplugBehindTheSameSymlinkResumesWithoutLoss) {
  const std::string stream = Log("sirfstarv-nmea.log");
  const size_t half = stream.find('\n', stream.size() / 2) + 1;
  const Expected first = Classify(stream.substr(0, half)), second = Classify(stream.substr(half));
  const std::string link = dir_ / "by-id/usb-GPS_Receiver-if00-port0";
  auto pty = std::make_unique<Pty>(link);
  const std::string first_node = pty->slave_path();
  SerialSource source(Config(link), *ingest_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  ASSERT_TRUE(pty->Write(stream.substr(0, half) + "$GPGGA,0227"));  // unplugged mid-sentence
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == first.stored.size(); }, 5s));
  pty->Close();  // the link goes, then the device
  ASSERT_TRUE(WaitUntil([&] { return !source.Stats().connected; }, 5s));
  std::this_thread::sleep_for(300ms);  // it stays away a while: several reopen attempts fail
  // It comes back as another device node: placeholders take the old number first (other
  // tests open ptys too, so the number may be briefly taken elsewhere: try again).
  std::vector<std::unique_ptr<Pty>> placeholders;
  placeholders.push_back(std::make_unique<Pty>(dir_ / "dev/placeholder-0"));
  pty = std::make_unique<Pty>(link);
  for (int i = 1; i < 8 && pty->slave_path() == first_node; ++i) {
    pty.reset();
    placeholders.push_back(std::make_unique<Pty>(dir_ / ("dev/placeholder-" + std::to_string(i))));
    pty = std::make_unique<Pty>(link);
  }
  EXPECT_NE(pty->slave_path(), first_node);
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  ASSERT_TRUE(pty->Write(stream.substr(half)));
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == first.stored.size() + second.stored.size(); }, 5s))
      << source.Stats().stored;
  EXPECT_EQ(source.Stats().reconnects, 1u);
  const auto dead = Dead();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].reason, "incomplete frame at disconnect (11 bytes)");
  EXPECT_EQ(dead[0].record.payload, "$GPGGA,0227");
  const auto stored = Stored();
  EXPECT_EQ(stored.back().record.payload, second.stored.back());
}

TEST_F(SerialSourceTest, AChecksumValidLastSentenceWithoutANewlineIsStoredWhenTheDeviceGoesAway) {
  std::string stream = Log("sirfstarv-nmea.log");
  while (!stream.empty() && (stream.back() == '\n' || stream.back() == '\r')) stream.pop_back();
  const std::string last = stream.substr(stream.find_last_of('\n') + 1);
  ASSERT_TRUE(ValidateNmeaSentence(last).ok()) << last;  // the capture's own last sentence
  const Expected want = Classify(stream);
  ASSERT_EQ(want.stored.back(), last);
  Pty pty(dir_ / "dev/gps");
  SerialSource source(Config(pty.path()), *ingest_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  ASSERT_TRUE(pty.Write(stream));
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == want.stored.size() - 1; }, 10s));
  std::this_thread::sleep_for(200ms);  // the unterminated tail is read too, then held
  pty.Close();  // the logger's file ends: no terminator will ever come
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == want.stored.size(); }, 10s)) << source.Stats().stored;
  EXPECT_EQ(Stored().back().record.payload, last);
  EXPECT_EQ(Dead().size(), want.dead);
  source.Stop();
}

TEST_F(SerialSourceTest, SeveralSerialSourcesAtOnce) {
  Pty gps(dir_ / "dev/gps"), depth(dir_ / "dev/depth");
  auto a = Config(gps.path());
  a.name = "gps";
  auto b = Config(depth.path());
  b.name = "depth";
  SerialSource sa(a, *ingest_), sb(b, *ingest_);
  ASSERT_TRUE(sa.Start().ok());
  ASSERT_TRUE(sb.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return sa.Stats().connected && sb.Stats().connected; }, 5s));
  const std::string s1 = Log("sirfstarv-nmea.log"), s2 = Log("sounder.log");
  std::thread t1([&] { EXPECT_TRUE(gps.Write(s1, 115200)); });
  std::thread t2([&] { EXPECT_TRUE(depth.Write(s2, 115200)); });
  t1.join();
  t2.join();
  ASSERT_TRUE(WaitUntil([&] { return sa.Stats().stored == 367 && sb.Stats().stored == 244; }, 10s))
      << sa.Stats().stored << " " << sb.Stats().stored;
  size_t from_gps = 0, from_depth = 0;
  for (const auto& r : Stored()) (r.record.source == "gps" ? from_gps : from_depth)++;
  EXPECT_EQ(from_gps, 367u);
  EXPECT_EQ(from_depth, 244u);
}

TEST_F(SerialSourceTest, AnAbsentDeviceIsWaitedForWithoutBusyLooping) {
  SerialSource source(Config(dir_ / "by-id/not-plugged-in"), *ingest_);
  timespec c0{}, c1{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
  ASSERT_TRUE(source.Start().ok());
  std::this_thread::sleep_for(1s);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
  const double cpu = (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9;
  EXPECT_FALSE(source.Stats().connected);
  EXPECT_NE(source.Stats().last_error.find("not-plugged-in"), std::string::npos) << source.Stats().last_error;
  EXPECT_LT(cpu, 0.1) << "CPU seconds used while waiting 1 s";
  // It shows up later: the source opens it.
  Pty pty(dir_ / "by-id/not-plugged-in");
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  ASSERT_TRUE(pty.Write("$GPGSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5*33\r\n"));
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == 1; }, 5s));
  EXPECT_EQ(source.Stats().reconnects, 0u);
}

TEST_F(SerialSourceTest, GarbageOnlyIsBoundedAndTheStreamRecovers) {
  Pty pty(dir_ / "dev/noise");
  auto c = Config(pty.path());
  c.framing.max_frame_bytes = 256;
  SerialSource source(c, *ingest_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  std::mt19937 rng(7);
  std::string garbage(64 * 1024, '\0');
  for (auto& ch : garbage) {
    ch = static_cast<char>(rng());
    if (ch == '\n' || ch == '\r') ch = 'x';
  }
  ASSERT_TRUE(pty.Write(garbage + "\n$GPGSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5*33\n"));
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == 1; }, 5s));
  const auto dead = Dead();
  ASSERT_EQ(dead.size(), 1u) << "one overlong frame, reported once";
  EXPECT_EQ(dead[0].reason, "frame longer than max_frame_bytes 256; skipped to the next delimiter");
  EXPECT_EQ(dead[0].record.payload.size(), 256u);
}

}  // namespace
}  // namespace edgeferry::drivers::serial
