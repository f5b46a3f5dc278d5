// Record: one reading or message, the unit that flows source -> buffer -> sink.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgeferry {

class Clock;

// What the payload bytes are. Sources set it from their configuration or by
// detection; the buffer stores it; sinks use it to encode the envelope.
enum class ContentType : uint8_t {
  kBinary = 0,
  kJson = 1,   // one JSON text (RFC 8259) by ValidateJson where the record entered; the envelope checks again
  kNmea = 2,   // NMEA 0183 sentence, without the trailing CR LF
  kCsv = 3,
  kText = 4,
};

// "json", "nmea", "csv", "text", "binary".
std::string_view ContentTypeName(ContentType t);
// Inverse of ContentTypeName; nullopt for an unknown name.
std::optional<ContentType> ParseContentType(std::string_view name);

// Where a record's receive time (`ts_ns`) comes from; the envelope's `ts_source`.
enum class TsSource : uint8_t {
  kClock = 0,     // the wall clock, synchronized when the record was received
  kUnsynced = 1,  // the wall clock before it was synchronized: boot_id and boot_ns place it
  kRebased = 2,   // was kUnsynced; recomputed from the first synchronized reading of the same boot
};

// "clock", "unsynced", "rebased".
std::string_view TsSourceName(TsSource s);

// A record as a source hands it to the buffer (no seq yet). Owns its bytes.
struct Record {
  int64_t ts_ns = 0;         // receive time: ns since the Unix epoch, from the gateway's wall clock (see ts_source)
  std::string source;        // configured source name, e.g. "plant"
  std::string channel;       // MQTT topic, serial port, register block
  ContentType content_type = ContentType::kBinary;
  std::string payload;       // opaque bytes
  // Below the payload so that positional initialisers of the five above stay valid.
  int64_t event_ts_ns = 0;   // event time the payload carries (NMEA RMC/ZDA), ns since the epoch; 0: none
  TsSource ts_source = TsSource::kClock;
  int64_t boot_ns = 0;       // CLOCK_BOOTTIME at receipt, ns; set only while kUnsynced
  std::string boot_id{};     // the kernel's boot id at receipt; set only while kUnsynced
};

// Stamps `record` as received now: ts_ns from the wall clock, and while the clock is not
// synchronized, ts_source kUnsynced with the boot id and boot time that let the agent
// re-base it later (see Rebaser in agent/). Thread-safe if `clock` is.
void StampReceipt(const Clock& clock, Record* record);

// A record as the buffer returns it: the buffer-assigned seq (strictly increasing for
// the life of the store, across restarts and quarantines; gaps are possible after a
// crash, never reuse) plus the record.
struct StoredRecord {
  uint64_t seq = 0;
  Record record;
};

}  // namespace edgeferry
