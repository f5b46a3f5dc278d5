// ProbeResult: what a read-only connectivity probe of a source or sink found, for
// `edgeferry check --connect` (Source::Probe, Sink::Probe).
//
// A probe reaches the destination or device the way the component would (address, TLS,
// credentials) and stops there: it sends no data, writes no file, creates no session
// state on a broker, and never changes what a running agent with the same config uses.
#pragma once

#include <string>
#include <utility>

namespace edgeferry::drivers {

struct ProbeResult {
  enum class Outcome {
    kOk,       // reached and accepted, e.g. "connected to tcp://127.0.0.1:1883" (after its CONNACK)
    kFailed,   // could not reach it, or it refused us; `detail` says why, naming what was tried
    kSkipped,  // this component type has no probe
  };
  Outcome outcome = Outcome::kSkipped;
  // One line for a person, without credentials (URLs redacted: edgeferry/redact.h).
  std::string detail = "no probe for this type";

  static ProbeResult Ok(std::string detail) { return {Outcome::kOk, std::move(detail)}; }
  static ProbeResult Failed(std::string detail) { return {Outcome::kFailed, std::move(detail)}; }
  static ProbeResult Skipped(std::string detail = "no probe for this type") {
    return {Outcome::kSkipped, std::move(detail)};
  }
  bool ok() const { return outcome == Outcome::kOk; }
  bool failed() const { return outcome == Outcome::kFailed; }
  bool skipped() const { return outcome == Outcome::kSkipped; }
};

}  // namespace edgeferry::drivers
