// Microbenchmarks (Google Benchmark): the buffer's append/read/ack path, segment
// compression with and without a zstd dictionary, envelope encoding, and the serial
// parsers, the pipeline's processors, each beside its physical limit measured in the same run (raw SQLite blob
// inserts, raw zstd on the same bytes). Run: bench/run.sh, or
//   build/release/bench/edgeferry_micro_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <zdict.h>
#include <zstd.h>

#include <filesystem>
#include <numeric>

#include "edgeferry/buffer/segment_codec.h"
#include "edgeferry/buffer/store.h"
#include "edgeferry/drivers/envelope.h"
#include "edgeferry/drivers/serial/frame_parser.h"
#include "edgeferry/pipeline/processor.h"
#include "edgeferry/timebase.h"
#include "sample_records.h"

namespace edgeferry::bench {
namespace {

const std::vector<std::string>& Samples() {
  static const auto samples = AirQualityJson();
  return samples;
}

double AveragePayload() {
  const auto& s = Samples();
  return static_cast<double>(std::accumulate(s.begin(), s.end(), size_t{0},
                                             [](size_t n, const std::string& p) { return n + p.size(); })) /
         static_cast<double>(s.size());
}

struct TempStore {
  std::string dir;
  std::unique_ptr<buffer::Store> store;
  TempStore() {
    char tmpl[] = "/tmp/edgeferry-bench-XXXXXX";
    dir = mkdtemp(tmpl);
    buffer::StoreOptions o;  // defaults: normal durability, 250 ms commit interval
    o.path = dir + "/buffer.db";
    o.max_bytes = 8ull << 30;
    store = std::move(buffer::Store::Open(o)).value();
  }
  ~TempStore() {
    (void)store->Close();
    std::filesystem::remove_all(dir);
  }
};

// One thread appending 150-byte JSON records at the default commit interval: the
// cost includes encoding, sealing and zstd (in line) and the background commits.
void BM_StoreAppend(benchmark::State& state) {
  TempStore t;
  const auto& s = Samples();
  size_t i = 0;
  int64_t ts = 1'700'000'000'000'000'000;
  for (auto _ : state) {
    auto r = t.store->Append(MakeRecord(s[i++ % s.size()], ts += 1'000'000));
    benchmark::DoNotOptimize(r);
  }
  (void)t.store->Flush();
  state.SetItemsProcessed(state.iterations());
  state.counters["payload_B"] = AveragePayload();
  const auto st = t.store->Stats();
  state.counters["disk_B_per_rec"] =
      static_cast<double>(st.written_compressed_bytes) / static_cast<double>(std::max<uint64_t>(1, st.written_records));
}
BENCHMARK(BM_StoreAppend)->UseRealTime()->MinTime(2.0);

// Reading back what was stored (committed segments, decompressed) and acknowledging it:
// a sink's drain path without the sink.
void BM_StoreReadAck(benchmark::State& state) {
  TempStore t;
  const auto& s = Samples();
  const uint64_t n = 200'000;
  for (uint64_t i = 0; i < n; ++i) (void)t.store->Append(MakeRecord(s[i % s.size()], 1'700'000'000'000'000'000 + static_cast<int64_t>(i)));
  (void)t.store->Flush();
  (void)t.store->OpenCursor("sink");
  std::vector<StoredRecord> batch;
  uint64_t pos = 0, records = 0;
  for (auto _ : state) {
    batch.clear();
    if (pos >= n) pos = 0;
    (void)t.store->ReadAfter(pos, {10'000, 64ull << 20}, &batch);
    if (batch.empty()) {
      pos = 0;
      continue;
    }
    pos = batch.back().seq;
    (void)t.store->Ack("sink", pos);
    records += batch.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(records));
}
BENCHMARK(BM_StoreReadAck)->UseRealTime()->MinTime(2.0);

// The physical limit beside the store: SQLite (WAL, synchronous=NORMAL) inserting each
// record as its own row, 10,000 rows per transaction, no compression.
void BM_SqliteBlobInsert(benchmark::State& state) {
  char tmpl[] = "/tmp/edgeferry-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  sqlite3* db = nullptr;
  sqlite3_open((dir + "/raw.db").c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE r(seq INTEGER PRIMARY KEY, ts INTEGER, body BLOB)",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO r(ts, body) VALUES(?, ?)", -1, &ins, nullptr);
  const auto& s = Samples();
  size_t i = 0;
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  for (auto _ : state) {
    const std::string& p = s[i % s.size()];
    sqlite3_bind_int64(ins, 1, static_cast<sqlite3_int64>(i));
    sqlite3_bind_blob(ins, 2, p.data(), static_cast<int>(p.size()), SQLITE_STATIC);
    sqlite3_step(ins);
    sqlite3_reset(ins);
    if (++i % 10'000 == 0) sqlite3_exec(db, "COMMIT; BEGIN", nullptr, nullptr, nullptr);
  }
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_finalize(ins);
  sqlite3_close(db);
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SqliteBlobInsert)->UseRealTime()->MinTime(2.0);

// Segment bytes: records encoded the way the store encodes them, `state.range(0)` bytes.
std::string EncodedSegment(size_t bytes, size_t skip = 0) {
  std::string out;
  int64_t prev = 0;
  const auto& s = Samples();
  for (size_t i = skip; out.size() < bytes; ++i) {
    buffer::EncodeRecord(MakeRecord(s[i % s.size()], 1'700'000'000'000'000'000 + static_cast<int64_t>(i) * 1'000'000'000), &prev, &out);
  }
  return out;
}

// The store's own segment compression (zstd level 3 + checksum) at a segment size.
void BM_SegmentCompress(benchmark::State& state) {
  const std::string seg = EncodedSegment(static_cast<size_t>(state.range(0)));
  size_t out_bytes = 0;
  for (auto _ : state) {
    buffer::Codec codec;
    const std::string blob = buffer::CompressSegment(seg, 3, &codec);
    out_bytes = blob.size();
    benchmark::DoNotOptimize(blob);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(seg.size()));
  state.counters["ratio"] = static_cast<double>(seg.size()) / static_cast<double>(out_bytes);
}
// Up to 256 KiB: the 2,000 real rows encode to ~290 KiB, and repeating them would flatter zstd.
BENCHMARK(BM_SegmentCompress)->Arg(512)->Arg(4 << 10)->Arg(64 << 10)->Arg(256 << 10);

// Raw zstd on the same bytes, without and with a dictionary trained on other records of
// the same sensor (the candidate for small segments).
void BM_ZstdRaw(benchmark::State& state) {
  const bool with_dict = state.range(1) != 0;
  const std::string seg = EncodedSegment(static_cast<size_t>(state.range(0)), 1000);
  std::string dict;
  if (with_dict) {
    // Train on the first 1,000 records (those the segments below do not contain).
    std::string samples;
    std::vector<size_t> sizes;
    int64_t prev = 0;
    for (size_t i = 0; i < 1000; ++i) {
      const size_t before = samples.size();
      buffer::EncodeRecord(MakeRecord(Samples()[i], 1'700'000'000'000'000'000 + static_cast<int64_t>(i) * 1'000'000'000), &prev, &samples);
      sizes.push_back(samples.size() - before);
    }
    dict.resize(16 << 10);
    const size_t n = ZDICT_trainFromBuffer(dict.data(), dict.size(), samples.data(), sizes.data(), static_cast<unsigned>(sizes.size()));
    if (ZDICT_isError(n)) {
      state.SkipWithError("dictionary training failed");
      return;
    }
    dict.resize(n);
  }
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CDict* cdict = with_dict ? ZSTD_createCDict(dict.data(), dict.size(), 3) : nullptr;
  std::string out(ZSTD_compressBound(seg.size()), '\0');
  size_t n = 0;
  for (auto _ : state) {
    n = cdict ? ZSTD_compress_usingCDict(cctx, out.data(), out.size(), seg.data(), seg.size(), cdict)
              : ZSTD_compressCCtx(cctx, out.data(), out.size(), seg.data(), seg.size(), 3);
    benchmark::DoNotOptimize(n);
  }
  ZSTD_freeCDict(cdict);
  ZSTD_freeCCtx(cctx);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(seg.size()));
  state.counters["ratio"] = static_cast<double>(seg.size()) / static_cast<double>(n);
  state.counters["dict_B"] = static_cast<double>(dict.size());
}
// Segments from records 1,000 on, the dictionary from the first 1,000: never the same rows.
BENCHMARK(BM_ZstdRaw)->ArgsProduct({{512, 4 << 10, 64 << 10, 128 << 10}, {0, 1}});

// The NDJSON envelope every sink sends (JSON payload inline, validated).
void BM_EnvelopeEncode(benchmark::State& state) {
  const auto& s = Samples();
  StoredRecord r;
  r.record = MakeRecord(s[0], 1'700'000'000'000'000'000);
  std::string out;
  size_t i = 0;
  for (auto _ : state) {
    r.seq = ++i;
    r.record.payload = s[i % s.size()];
    out.clear();
    drivers::AppendEnvelope("gw-bench", r, &out);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EnvelopeEncode);

// Receive time (issue 14): what a source adds per record to read the clock, the
// (cached) kernel sync status and, while unsynchronized, the boot stamp.
void BM_StampReceipt(benchmark::State& state) {
  Record r;
  for (auto _ : state) {
    StampReceipt(SystemClock(), &r);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StampReceipt);

// What a forwarder adds per record received before the clock was synchronized.
void BM_Rebase(benchmark::State& state) {
  ManualClock clock(1'800'000'000'000'000'000);
  Rebaser rebaser(clock);
  const std::string boot = clock.BootId();
  Record r;
  int64_t i = 0;
  for (auto _ : state) {
    r.ts_source = TsSource::kUnsynced;
    r.boot_ns = ++i;
    r.boot_id = boot;
    rebaser.Rebase(&r);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Rebase);

void RunParser(benchmark::State& state, drivers::serial::FrameParser& parser, const std::vector<std::string>& frames) {
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const std::string& f = frames[i++ % frames.size()];
    auto parsed = parser.Parse(f);
    bytes += f.size();
    benchmark::DoNotOptimize(parsed);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

void BM_ParseNmea(benchmark::State& state) {
  auto frames = ReadLines(std::string(EDGEFERRY_SOURCE_DIR) + "/tests/data/nmea/bundg_zeus_9.log");
  auto parser = drivers::serial::MakeNmeaParser();
  RunParser(state, *parser, frames);
}
BENCHMARK(BM_ParseNmea);

void BM_ParseCsv(benchmark::State& state) {
  auto frames = ReadLines(std::string(EDGEFERRY_SOURCE_DIR) + "/tests/data/telosb-multihop-500.csv");
  drivers::serial::CsvOptions o;
  o.columns = {"reading", "mote_id", "indoor", "humidity", "temperature", "label"};
  frames.erase(frames.begin());  // the header
  auto parser = drivers::serial::MakeCsvParser(o);
  RunParser(state, *parser, frames);
}
BENCHMARK(BM_ParseCsv);

void BM_ParseJsonLines(benchmark::State& state) {
  auto parser = drivers::serial::MakeJsonLinesParser();
  RunParser(state, *parser, Samples());
}
BENCHMARK(BM_ParseJsonLines);

// Processors (pipeline/) on the same air-quality rows, per record; the limit beside
// them is parsing the payload as JSON, which every field-reading processor does once.
void BM_JsonParseAlone(benchmark::State& state) {
  const auto& s = Samples();
  size_t i = 0;
  for (auto _ : state) {
    auto j = nlohmann::json::parse(s[i++ % s.size()], nullptr, false);
    benchmark::DoNotOptimize(j);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JsonParseAlone);

void RunPipeline(benchmark::State& state, const std::vector<pipeline::ProcessorConfig>& configs) {
  const auto& s = Samples();
  pipeline::Pipeline p(configs);
  size_t i = 0;
  int64_t now = 0;
  for (auto _ : state) {
    Record r = MakeRecord(s[i++ % s.size()], now);
    auto keep = p.Run(r, now += 1'000'000'000);
    benchmark::DoNotOptimize(keep);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ProcessorDeadband(benchmark::State& state) {
  RunPipeline(state, {pipeline::DeadbandConfig{*pipeline::ParseFieldPath("t"), 0.5, 0, 600'000'000'000}});
}
BENCHMARK(BM_ProcessorDeadband);

void BM_ProcessorFilter(benchmark::State& state) {
  pipeline::FilterConfig f;
  f.field = pipeline::ParseFieldPath("t");
  f.op = pipeline::FilterConfig::Op::kGe;
  f.value = 20;
  RunPipeline(state, {f});
}
BENCHMARK(BM_ProcessorFilter);

void BM_ProcessorSelect(benchmark::State& state) {
  RunPipeline(state, {pipeline::FieldsConfig{pipeline::FieldsConfig::Kind::kSelect, {}, {}, {"t", "rh", "date", "time"}}});
}
BENCHMARK(BM_ProcessorSelect);

void BM_ProcessorSample(benchmark::State& state) { RunPipeline(state, {pipeline::SampleConfig{10, 0}}); }
BENCHMARK(BM_ProcessorSample);

// Three field-reading processors in one pipeline: the payload is parsed once for all of
// them and serialised once (RecordJson), so the chain costs about one parse, not three.
void BM_ProcessorChainFilterDropDeadband(benchmark::State& state) {
  pipeline::FilterConfig f;
  f.field = pipeline::ParseFieldPath("t");
  f.op = pipeline::FilterConfig::Op::kGe;
  f.value = -100;
  pipeline::FieldsConfig drop{pipeline::FieldsConfig::Kind::kDrop, {}, {}, {"date"}};
  RunPipeline(state, {f, drop, pipeline::DeadbandConfig{*pipeline::ParseFieldPath("t"), 0.5, 0, 600'000'000'000}});
}
BENCHMARK(BM_ProcessorChainFilterDropDeadband);

// One-minute windows of two fields, a record a second; the windows are taken out as
// the agent's main loop would (here every 1,000 records), their making included.
void BM_ProcessorAggregate(benchmark::State& state) {
  const auto& s = Samples();
  pipeline::Pipeline p({pipeline::AggregateConfig{60'000'000'000, {*pipeline::ParseFieldPath("t"),
                                                                   *pipeline::ParseFieldPath("rh")}}});
  size_t i = 0;
  int64_t now = 1'800'000'000'000'000'000;
  for (auto _ : state) {
    Record r = MakeRecord(s[i++ % s.size()], now += 1'000'000'000);
    auto keep = p.Run(r, now);
    benchmark::DoNotOptimize(keep);
    if (i % 1000 == 0) benchmark::DoNotOptimize(p.Expire(now));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ProcessorAggregate);

// The parse processor on one text record of each format: a raw UCI air-quality row
// (15 cells), an RMC sentence from the u-blox capture, key=value pairs, a regex.
void RunParse(benchmark::State& state, pipeline::ParseConfig c, const std::string& text) {
  pipeline::Pipeline p({std::move(c)});
  for (auto _ : state) {
    Record r{0, "s", "c", ContentType::kText, text};
    auto keep = p.Run(r, 0);
    if (!keep.ok()) state.SkipWithError(keep.status().ToString().c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ProcessorParseCsv(benchmark::State& state) {
  pipeline::ParseConfig c;
  c.format = pipeline::ParseConfig::Format::kCsv;
  c.columns = {"Date", "Time", "CO_GT", "PT08_S1_CO", "NMHC_GT", "C6H6_GT", "PT08_S2_NMHC", "NOx_GT",
               "PT08_S3_NOx", "NO2_GT", "PT08_S4_NO2", "PT08_S5_O3", "T", "RH", "AH"};
  RunParse(state, c, "10/03/2004,18:00:00,2.6,1360,150,11.9,1046,166,1056,113,1692,1268,13.6,48.9,0.7578");
}
BENCHMARK(BM_ProcessorParseCsv);

void BM_ProcessorParseNmea(benchmark::State& state) {
  pipeline::ParseConfig c;
  c.format = pipeline::ParseConfig::Format::kNmea;
  RunParse(state, c, "$GNRMC,000941.00,A,4404.13387,N,12118.85628,W,0.029,,100117,,,A*7D");
}
BENCHMARK(BM_ProcessorParseNmea);

void BM_ProcessorParseKeyValue(benchmark::State& state) {
  pipeline::ParseConfig c;
  c.format = pipeline::ParseConfig::Format::kKeyValue;
  RunParse(state, c, "temp=21.5 hum=40 co2=612 site=\"line 1\" state=ok");
}
BENCHMARK(BM_ProcessorParseKeyValue);

void BM_ProcessorParseRegex(benchmark::State& state) {
  pipeline::ParseConfig c;
  c.format = pipeline::ParseConfig::Format::kRegex;
  c.pattern = R"((?P<sensor>[a-z]+)\s+T=(?P<temp>-?[0-9.]+)C\s+RH=(?P<rh>[0-9]+)%)";
  RunParse(state, c, "boiler T=-4.25C RH=55% fan=on");
}
BENCHMARK(BM_ProcessorParseRegex);

}  // namespace
}  // namespace edgeferry::bench

BENCHMARK_MAIN();
