#include "edgeferry/buffer/segment_codec.h"

#include <zdict.h>
#include <zstd.h>

#include <fmt/format.h>

#include <algorithm>
#include <memory>

namespace edgeferry::buffer {

namespace {

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

void PutBytes(std::string_view s, std::string* out) {
  PutVarint(s.size(), out);
  out->append(s);
}

bool GetBytes(std::string_view* in, std::string* s) {
  uint64_t n = 0;
  if (!GetVarint(in, &n) || n > in->size()) return false;
  s->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

// The content type byte's upper bits (schema 3): what follows it before the payload.
constexpr uint8_t kHasEventTs = 0x80;  // zigzag varint: event_ts_ns - ts_ns
constexpr uint8_t kUnsynced = 0x40;    // zigzag varint boot_ns, then the boot id's length and bytes
constexpr uint8_t kRebased = 0x20;
constexpr uint8_t kTypeMask = 0x1f;

uint8_t TimeFlags(const Record& r) {
  uint8_t flags = 0;
  if (r.event_ts_ns != 0) flags |= kHasEventTs;
  if (r.ts_source == TsSource::kUnsynced) flags |= kUnsynced;
  if (r.ts_source == TsSource::kRebased) flags |= kRebased;
  return flags;
}

void PutTime(const Record& r, uint8_t flags, std::string* out) {
  if (flags & kHasEventTs) {
    // Modulo 2^64, as the decoder adds it back.
    PutVarint(ZigZag(static_cast<int64_t>(static_cast<uint64_t>(r.event_ts_ns) - static_cast<uint64_t>(r.ts_ns))), out);
  }
  if (flags & kUnsynced) {
    // Signed: an aggregate window's start can precede the boot.
    PutVarint(ZigZag(r.boot_ns), out);
    PutBytes(r.boot_id, out);
  }
}

// The time members after a content type byte with `flags`; r->ts_ns is set.
bool GetTime(uint8_t flags, std::string_view* in, Record* r) {
  if ((flags & kUnsynced) && (flags & kRebased)) return false;
  if (flags & kHasEventTs) {
    uint64_t delta = 0;
    if (!GetVarint(in, &delta)) return false;
    r->event_ts_ns = static_cast<int64_t>(static_cast<uint64_t>(r->ts_ns) + static_cast<uint64_t>(UnZigZag(delta)));
  }
  if (flags & kUnsynced) {
    uint64_t boot_ns = 0;
    if (!GetVarint(in, &boot_ns) || !GetBytes(in, &r->boot_id)) return false;
    r->boot_ns = UnZigZag(boot_ns);
    r->ts_source = TsSource::kUnsynced;
  } else if (flags & kRebased) {
    r->ts_source = TsSource::kRebased;
  }
  return true;
}

struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

}  // namespace

void EncodeRecord(const Record& record, int64_t* prev_ts_ns, std::string* out) {
  // Modulo 2^64, as the decoder adds it back: extreme times (a device's clock) cannot overflow.
  PutVarint(ZigZag(static_cast<int64_t>(static_cast<uint64_t>(record.ts_ns) - static_cast<uint64_t>(*prev_ts_ns))),
            out);
  *prev_ts_ns = record.ts_ns;
  PutBytes(record.source, out);
  PutBytes(record.channel, out);
  const uint8_t flags = TimeFlags(record);
  out->push_back(static_cast<char>(static_cast<uint8_t>(record.content_type) | flags));
  PutTime(record, flags, out);
  PutBytes(record.payload, out);
}

std::string EncodeRecordTime(const Record& record) {
  const uint8_t flags = TimeFlags(record);
  if (flags == 0) return {};
  std::string out(1, static_cast<char>(flags));
  PutTime(record, flags, &out);
  return out;
}

bool DecodeRecordTime(std::string_view bytes, Record* record) {
  record->event_ts_ns = 0;
  record->ts_source = TsSource::kClock;
  record->boot_ns = 0;
  record->boot_id.clear();
  if (bytes.empty()) return true;
  const auto flags = static_cast<uint8_t>(bytes.front());
  bytes.remove_prefix(1);
  Record r = *record;
  if ((flags & kTypeMask) != 0 || !GetTime(flags, &bytes, &r) || !bytes.empty()) return false;
  *record = std::move(r);
  return true;
}

std::unique_ptr<SegmentDictionary> SegmentDictionary::Train(const std::vector<std::string>& samples, int level,
                                                            size_t max_bytes) {
  std::string joined;
  std::vector<size_t> sizes;
  for (const auto& s : samples) {
    joined += s;
    sizes.push_back(s.size());
  }
  std::string dict(max_bytes, '\0');
  const size_t n = ZDICT_trainFromBuffer(dict.data(), dict.size(), joined.data(), sizes.data(),
                                         static_cast<unsigned>(sizes.size()));
  if (ZDICT_isError(n)) return nullptr;
  dict.resize(n);
  auto loaded = Load(std::move(dict), level);
  if (!loaded.ok()) return nullptr;
  // Keep it only if it wins on 4 KiB chunks of what it was trained on.
  size_t plain = 0, with = 0;
  for (size_t at = 0; at < joined.size(); at += 4096) {
    const std::string_view chunk = std::string_view(joined).substr(at, 4096);
    Codec c;
    plain += CompressSegment(chunk, level, &c).size();
    with += CompressSegment(chunk, level, &c, loaded->get()).size();
  }
  if (with * 10 > plain * 9) return nullptr;
  return std::move(loaded).value();
}

Result<std::unique_ptr<SegmentDictionary>> SegmentDictionary::Load(std::string bytes, int level) {
  const uint32_t id = ZDICT_getDictID(bytes.data(), bytes.size());
  if (id == 0) return Status::Corruption("segment dictionary: not a zstd dictionary");
  std::unique_ptr<SegmentDictionary> d(new SegmentDictionary());
  d->bytes_ = std::move(bytes);
  d->id_ = id;
  d->cdict_ = ZSTD_createCDict(d->bytes_.data(), d->bytes_.size(), level);
  d->ddict_ = ZSTD_createDDict(d->bytes_.data(), d->bytes_.size());
  if (!d->cdict_ || !d->ddict_) return Status::Corruption("segment dictionary: zstd cannot load it");
  return d;
}

SegmentDictionary::~SegmentDictionary() {
  ZSTD_freeCDict(static_cast<ZSTD_CDict*>(cdict_));
  ZSTD_freeDDict(static_cast<ZSTD_DDict*>(ddict_));
}

uint32_t SegmentDictionaryId(std::string_view blob) {
  return ZSTD_getDictID_fromFrame(blob.data(), blob.size());
}

std::string CompressSegment(std::string_view encoded, int level, Codec* codec, const SegmentDictionary* dict) {
  // One context per thread: creating one costs more than compressing a small segment.
  thread_local std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> cctx(ZSTD_createCCtx());
  ZSTD_CCtx_reset(cctx.get(), ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);
  if (dict) ZSTD_CCtx_refCDict(cctx.get(), static_cast<const ZSTD_CDict*>(dict->cdict_));
  std::string blob(ZSTD_compressBound(encoded.size()), '\0');
  const size_t n =
      ZSTD_compress2(cctx.get(), blob.data(), blob.size(), encoded.data(), encoded.size());
  if (ZSTD_isError(n) || n >= encoded.size()) {
    *codec = Codec::kRaw;
    return std::string(encoded);
  }
  blob.resize(n);
  *codec = dict ? Codec::kZstdDict : Codec::kZstd;
  return blob;
}

Status DecodeSegment(Codec codec, std::string_view blob, uint64_t first_seq, uint32_t count,
                     std::vector<StoredRecord>* out, const SegmentDictionary* dict) {
  std::string decompressed;
  std::string_view in = blob;
  if (codec == Codec::kZstdDict) {
    const uint32_t id = SegmentDictionaryId(blob);
    if (!dict || dict->id() != id) {
      return Status::Corruption(fmt::format("segment {}: needs zstd dictionary {}, which the store does not hold", first_seq, id));
    }
  }
  if (codec == Codec::kZstd || codec == Codec::kZstdDict) {
    const unsigned long long size = ZSTD_getFrameContentSize(blob.data(), blob.size());
    // The largest segment edgeferry writes is one record at the largest max_record_bytes
    // (256 MiB) plus its framing: a frame claiming more is damaged or crafted (a zstd
    // bomb in a hostile buffer.db), and is refused before it decodes.
    constexpr unsigned long long kMaxSegmentRawBytes = 272ull << 20;
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > kMaxSegmentRawBytes) {
      return Status::Corruption("segment: bad zstd frame header");
    }
    thread_local std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree> dctx(ZSTD_createDCtx());
    ZSTD_DCtx_reset(dctx.get(), ZSTD_reset_session_and_parameters);
    if (codec == Codec::kZstdDict) ZSTD_DCtx_refDDict(dctx.get(), static_cast<const ZSTD_DDict*>(dict->ddict_));
    // Streamed into a buffer that grows with what actually decodes: a damaged header
    // claiming 4 GiB must not allocate 4 GiB before the first byte fails.
    decompressed.resize(std::min<unsigned long long>(size, 1 << 20));
    ZSTD_inBuffer src{blob.data(), blob.size(), 0};
    size_t produced = 0;
    while (true) {
      ZSTD_outBuffer dst{decompressed.data(), decompressed.size(), produced};
      const size_t r = ZSTD_decompressStream(dctx.get(), &dst, &src);
      if (ZSTD_isError(r)) return Status::Corruption(fmt::format("segment: zstd: {}", ZSTD_getErrorName(r)));
      produced = dst.pos;
      if (r == 0) break;  // frame complete, checksum verified
      if (produced == decompressed.size()) {
        if (produced >= size) return Status::Corruption("segment: zstd: more data than the frame header says");
        decompressed.resize(std::min<unsigned long long>(size, 2 * decompressed.size()));
      } else if (src.pos == src.size) {
        return Status::Corruption("segment: zstd: short frame");
      }
    }
    if (produced != size || src.pos != src.size) {
      return Status::Corruption(src.pos != src.size ? "segment: zstd: trailing bytes after the frame"
                                                    : "segment: zstd: short frame");
    }
    in = decompressed;
  } else if (codec != Codec::kRaw) {
    return Status::Corruption(fmt::format("segment: unknown codec {}", static_cast<int>(codec)));
  }
  // A record takes at least 5 bytes: a damaged count cannot reserve more than the blob holds.
  out->reserve(out->size() + std::min<size_t>(count, in.size() / 5));
  int64_t ts = 0;
  for (uint32_t i = 0; i < count; ++i) {
    StoredRecord r;
    r.seq = first_seq + i;
    uint64_t zz = 0;
    if (!GetVarint(&in, &zz) || !GetBytes(&in, &r.record.source) ||
        !GetBytes(&in, &r.record.channel) || in.empty()) {
      return Status::Corruption(fmt::format("segment {}: record {} truncated", first_seq, i));
    }
    ts = static_cast<int64_t>(static_cast<uint64_t>(ts) + static_cast<uint64_t>(UnZigZag(zz)));
    r.record.ts_ns = ts;
    const auto type = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    const uint8_t ct = type & kTypeMask;
    if (ct > static_cast<uint8_t>(ContentType::kText) || (type & kUnsynced && type & kRebased)) {
      return Status::Corruption(fmt::format("segment {}: record {} bad content type", first_seq, i));
    }
    r.record.content_type = static_cast<ContentType>(ct);
    if (!GetTime(static_cast<uint8_t>(type & ~kTypeMask), &in, &r.record)) {
      return Status::Corruption(fmt::format("segment {}: record {} bad time", first_seq, i));
    }
    if (!GetBytes(&in, &r.record.payload)) {
      return Status::Corruption(fmt::format("segment {}: record {} truncated", first_seq, i));
    }
    out->push_back(std::move(r));
  }
  if (!in.empty()) return Status::Corruption(fmt::format("segment {}: trailing bytes", first_seq));
  return Status::Ok();
}

}  // namespace edgeferry::buffer
