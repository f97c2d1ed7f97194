// The Node.js addon (N-API, node_api.h): a ring producer lane that writes
// sample batches (Writer), a named ring reader that hands records to
// JavaScript as Buffers over the mapping (Reader), and the decoders of sample
// and metric batches. Everything goes through the ring/, sample/ and metric/
// parts' own classes: the checks a C++ caller gets are the ones made here,
// and their error messages are thrown as they are.
//
// Threads: everything runs on the JavaScript thread that created the object.

#include <node_api.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ringpipe/metric/metric_record.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace {

using ringpipe::ring::Overflow;
using ringpipe::ring::Producer;
using ringpipe::ring::Reader;
using ringpipe::ring::Ring;
using ringpipe::ring::WriteStatus;
namespace sample = ringpipe::sample;
namespace metric = ringpipe::metric;

constexpr std::size_t kMaxTags = 64;             // as ingest keeps
constexpr std::size_t kStringBytes = 64 * 1024;  // every string field is a u16 length
constexpr std::size_t kDefaultBatchBytes = 64 * 1024;

// A failed napi call leaves an exception pending (or we raise one); the
// callbacks then return nullptr to JavaScript.
#define RP_CHECK(env, call)  \
  do {                       \
    if ((call) != napi_ok) { \
      throw_last_error(env); \
      return nullptr;        \
    }                        \
  } while (0)

void throw_last_error(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info* info = nullptr;
  napi_get_last_error_info(env, &info);
  napi_throw_error(env, nullptr,
                   info != nullptr && info->error_message != nullptr ? info->error_message : "napi call failed");
}

std::int64_t realtime_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Arguments of one call.
struct Args {
  std::array<napi_value, 8> v{};
  std::size_t n = 8;
  napi_value self = nullptr;
  void* data = nullptr;
};

bool get_args(napi_env env, napi_callback_info info, Args& a) {
  return napi_get_cb_info(env, info, &a.n, a.v.data(), &a.self, &a.data) == napi_ok;
}

bool is_type(napi_env env, napi_value v, napi_valuetype t) {
  napi_valuetype got = napi_undefined;
  return v != nullptr && napi_typeof(env, v, &got) == napi_ok && got == t;
}

// A UTF-8 copy of a JS string into `buf` (string_view into it); nullopt and a
// TypeError when it is not a string, a RangeError when it is too long.
std::optional<std::string_view> utf8(napi_env env, napi_value v, std::span<char> buf, const char* what) {
  if (!is_type(env, v, napi_string)) {
    napi_throw_type_error(env, nullptr, (std::string(what) + " must be a string").c_str());
    return std::nullopt;
  }
  std::size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf.data(), buf.size(), &len) != napi_ok) return std::nullopt;
  if (len + 1 >= buf.size()) {
    napi_throw_range_error(env, nullptr, (std::string(what) + " is longer than 65534 bytes").c_str());
    return std::nullopt;
  }
  return std::string_view(buf.data(), len);
}

double number_or(napi_env env, napi_value v, double dflt) {
  double d = dflt;
  if (is_type(env, v, napi_number)) napi_get_value_double(env, v, &d);
  return d;
}

napi_value make_number(napi_env env, double d) {
  napi_value out = nullptr;
  napi_create_double(env, d, &out);
  return out;
}

napi_value make_bigint(napi_env env, std::uint64_t u) {
  napi_value out = nullptr;
  napi_create_bigint_uint64(env, u, &out);
  return out;
}

napi_value make_string(napi_env env, std::string_view s) {
  napi_value out = nullptr;
  napi_create_string_utf8(env, s.data(), s.size(), &out);
  return out;
}

void set(napi_env env, napi_value obj, const char* key, napi_value v) { napi_set_named_property(env, obj, key, v); }

// ---------------------------------------------------------------- Writer

// One producer lane. Samples go straight into an open claim of the lane
// (BatchWriter over the claimed bytes); flush() finishes and publishes it as
// one sample-batch record. A claim that cannot be had (`drop`: the ring is
// full; `block`: still full after block_timeout) refuses the sample, which is
// counted in the lane's dropped_records and returned to the caller as false.
class Writer {
 public:
  static std::unique_ptr<Writer> open(const std::string& path, std::uint32_t source_id, std::size_t batch_bytes,
                                      std::chrono::nanoseconds block_timeout, std::string& error) {
    auto ring = Ring::open(path);
    if (!ring) {
      error = ring.error().message();
      return nullptr;
    }
    auto w = std::unique_ptr<Writer>(new Writer(std::move(*ring)));
    auto producer = Producer::attach(*w->ring_);
    if (!producer) {
      error = producer.error().message();
      return nullptr;
    }
    w->producer_.emplace(std::move(*producer));
    w->source_id_ = source_id;
    w->batch_bytes_ = std::min<std::size_t>(batch_bytes, w->producer_->max_record_bytes());
    w->block_timeout_ = block_timeout;
    return w;
  }

  // False when the sample was refused (counted) or does not fit even an empty batch.
  bool append(sample::Kind kind, std::string_view name, double value, double rate, std::span<const sample::Tag> tags,
              std::string_view str_value, std::int64_t ts_ns) noexcept {
    return append_with(
        [&](sample::BatchWriter& b) { return b.append(kind, name, value, rate, tags, str_value, ts_ns); });
  }
  // put(batch) appends one sample; when the open batch cannot take it, the
  // batch is published and put runs again on a new one.
  template <class Put>
  bool append_with(Put&& put) noexcept {
    if (ring_->truncated()) return refuse();
    if (batch_.has_value() && put(*batch_)) return true;
    if (batch_.has_value()) {
      if (batch_->empty()) return too_large();  // an empty batch does not hold it
      flush();
    }
    if (!open_batch()) return refuse();
    if (put(*batch_)) return true;
    return too_large();
  }

  // Publishes the open batch (one record); returns the samples published.
  std::uint32_t flush() noexcept {
    if (!batch_.has_value()) return 0;
    const std::uint32_t n = batch_->sample_count();
    if (n > 0) {
      producer_->finish(sample::kSampleBatchRecord, batch_->finish());
      producer_->publish();
      ++batches_;
      written_ += n;
    }
    batch_.reset();
    return n;
  }

  // The room left in the open batch, or -1 when none is open.
  [[nodiscard]] double room() noexcept {
    if (!batch_.has_value()) return -1;
    return static_cast<double>(claim_bytes_ - std::min(claim_bytes_, batch_->finish()));
  }

  // Opens a batch when none is: the room left in it, or -1 when the claim was
  // refused (counted as one refused sample, as append() counts it).
  double open() noexcept {
    if (ring_->truncated()) {
      refuse();
      return -1;
    }
    if (!batch_.has_value() && !open_batch()) {
      refuse();
      return -1;
    }
    return room();
  }

  // A series the JavaScript side writes by id: kind, name and tags kept here,
  // with the bytes one entry of it takes in a batch (nullopt: one entry never
  // fits an empty batch of batch_bytes).
  struct Series {
    sample::Kind kind{};
    std::string name;
    std::vector<std::string> text;  // key, value, key, value, ...
    std::vector<sample::Tag> tags;  // views into text
    std::size_t bytes = 0;
    std::vector<std::byte> entry;  // one entry of it as BatchWriter lays it out (value 0, rate 1)
  };
  std::optional<std::pair<std::uint32_t, std::size_t>> add_series(sample::Kind kind, std::string_view name,
                                                                  std::span<const sample::Tag> tags) {
    auto se = std::make_unique<Series>();
    se->kind = kind;
    se->name = name;
    se->text.reserve(tags.size() * 2);
    for (const sample::Tag& t : tags) {
      se->text.emplace_back(t.key);
      se->text.emplace_back(t.value);
    }
    se->tags.reserve(tags.size());
    for (std::size_t i = 0; i + 1 < se->text.size(); i += 2)
      se->tags.push_back(sample::Tag{se->text[i], se->text[i + 1]});
    // One entry's size, as BatchWriter lays it out: a batch of it less an empty batch.
    if (probe_.size() < batch_bytes_) probe_.resize(batch_bytes_);
    sample::BatchWriter probe(probe_, 0, 0);
    const std::size_t empty = probe.finish();
    if (!probe.append(kind, se->name, 0, 1, se->tags)) return std::nullopt;
    se->bytes = probe.finish() - empty;
    se->entry.assign(probe_.begin() + static_cast<std::ptrdiff_t>(empty),
                     probe_.begin() + static_cast<std::ptrdiff_t>(empty + se->bytes));
    series_.push_back(std::move(se));
    return std::pair{static_cast<std::uint32_t>(series_.size() - 1), series_.back()->bytes};
  }
  void clear_series() noexcept { series_.clear(); }

  // Appends staged samples (id, value, sample rate) of registered series;
  // returns those accepted (the others were refused or too large, counted).
  std::uint32_t write_staged(std::span<const double> staged) noexcept {
    std::uint32_t accepted = 0;
    for (std::size_t i = 0; i + 2 < staged.size(); i += 3) {
      const double id = staged[i];
      if (!(id >= 0 && id < static_cast<double>(series_.size()))) {
        too_large();  // not a series of this writer: never written
        continue;
      }
      // The series' entry encoded once at add_series, copied with this value and rate.
      const std::span<const std::byte> entry = series_[static_cast<std::size_t>(id)]->entry;
      const double value = staged[i + 1];
      const double rate = staged[i + 2];
      if (append_with([&](sample::BatchWriter& b) { return b.append_entry(entry, value, rate); })) ++accepted;
    }
    return accepted;
  }

  void close() noexcept {
    flush();
    producer_.reset();
  }
  [[nodiscard]] bool closed() const noexcept { return !producer_.has_value(); }
  [[nodiscard]] std::uint32_t pending() const noexcept { return batch_.has_value() ? batch_->sample_count() : 0; }
  [[nodiscard]] std::uint64_t written() const noexcept { return written_; }
  [[nodiscard]] std::uint64_t refused() const noexcept { return refused_; }
  [[nodiscard]] std::uint64_t too_large_count() const noexcept { return too_large_; }
  [[nodiscard]] std::uint64_t batches() const noexcept { return batches_; }
  [[nodiscard]] std::uint32_t lane() const noexcept { return producer_.has_value() ? producer_->lane() : 0; }
  [[nodiscard]] const Ring& ring() const noexcept { return *ring_; }

 private:
  explicit Writer(Ring ring) : ring_(std::make_unique<Ring>(std::move(ring))) {}

  bool open_batch() noexcept {
    WriteStatus st = WriteStatus::kOk;
    const std::span<std::byte> span = ring_->overflow() == Overflow::kBlock
                                          ? producer_->claim(batch_bytes_, block_timeout_, &st)
                                          : producer_->try_claim(batch_bytes_, &st);
    if (span.empty()) return false;
    claim_bytes_ = span.size();
    batch_.emplace(span, source_id_, realtime_ns());
    return true;
  }
  bool refuse() noexcept {
    ++refused_;
    producer_->count_dropped(1);
    return false;
  }
  bool too_large() noexcept {
    ++too_large_;
    return false;
  }

  std::unique_ptr<Ring> ring_;  // the producer points at it: it never moves
  std::optional<Producer> producer_;
  std::optional<sample::BatchWriter> batch_;
  std::uint32_t source_id_ = 0;
  std::size_t batch_bytes_ = kDefaultBatchBytes;
  std::chrono::nanoseconds block_timeout_{0};
  std::uint64_t written_ = 0;
  std::uint64_t refused_ = 0;
  std::uint64_t too_large_ = 0;
  std::uint64_t batches_ = 0;
  std::size_t claim_bytes_ = 0;
  std::vector<std::unique_ptr<Series>> series_;
  std::vector<std::byte> probe_;
};

// The scratch a call decodes its strings and tags into (one per addon instance).
struct Scratch {
  std::vector<char> name = std::vector<char>(kStringBytes);
  std::vector<char> str = std::vector<char>(kStringBytes);
  std::vector<char> tag_text = std::vector<char>(4 * kStringBytes);
  std::vector<sample::Tag> tags;
};

Scratch& scratch() {
  static Scratch s;
  return s;
}

Writer* unwrap_writer(napi_env env, napi_value self) {
  void* p = nullptr;
  if (napi_unwrap(env, self, &p) != napi_ok || p == nullptr) {
    napi_throw_error(env, nullptr, "not a ringpipe Writer");
    return nullptr;
  }
  auto* w = static_cast<Writer*>(p);
  if (w->closed()) {
    napi_throw_error(env, nullptr, "the writer is closed");
    return nullptr;
  }
  return w;
}

// tags: undefined/null or a flat array [key, value, key, value, ...] of strings.
bool read_tags(napi_env env, napi_value v, Scratch& s) {
  s.tags.clear();
  if (v == nullptr || is_type(env, v, napi_undefined) || is_type(env, v, napi_null)) return true;
  bool is_array = false;
  napi_is_array(env, v, &is_array);
  if (!is_array) {
    napi_throw_type_error(env, nullptr, "tags must be a flat array of strings [key, value, ...]");
    return false;
  }
  std::uint32_t len = 0;
  napi_get_array_length(env, v, &len);
  if (len % 2 != 0 || len / 2 > kMaxTags) {
    napi_throw_range_error(env, nullptr, "tags must be key/value pairs, at most 64 of them");
    return false;
  }
  std::size_t used = 0;
  std::array<std::string_view, 2> kv;
  for (std::uint32_t i = 0; i < len; ++i) {
    napi_value e = nullptr;
    napi_get_element(env, v, i, &e);
    if (!is_type(env, e, napi_string)) {
      napi_throw_type_error(env, nullptr, "tag keys and values must be strings");
      return false;
    }
    std::size_t n = 0;
    const std::size_t room = s.tag_text.size() - used;
    napi_get_value_string_utf8(env, e, s.tag_text.data() + used, room, &n);
    if (n + 1 >= room || n >= kStringBytes) {
      napi_throw_range_error(env, nullptr, "tags are too long");
      return false;
    }
    kv[i % 2] = std::string_view(s.tag_text.data() + used, n);
    used += n;
    if (i % 2 == 1) s.tags.push_back(sample::Tag{kv[0], kv[1]});
  }
  return true;
}

bool read_kind(napi_env env, napi_value v, sample::Kind& kind) {
  std::uint32_t k = 0;
  if (!is_type(env, v, napi_number) || napi_get_value_uint32(env, v, &k) != napi_ok || k < 1 || k > 7) {
    napi_throw_range_error(env, nullptr, "kind must be 1..7 (counter .. set)");
    return false;
  }
  kind = static_cast<sample::Kind>(k);
  return true;
}

// new Writer(path, sourceId, batchBytes, blockTimeoutMs)
napi_value writer_new(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  std::vector<char> path_buf(4096);
  const auto path = utf8(env, a.v[0], path_buf, "path");
  if (!path) return nullptr;
  const auto source_id = static_cast<std::uint32_t>(number_or(env, a.v[1], 0));
  const double batch_bytes = number_or(env, a.v[2], kDefaultBatchBytes);
  const double block_ms = number_or(env, a.v[3], 100);
  if (batch_bytes < 128 || block_ms < 0) {
    napi_throw_range_error(env, nullptr, "batchBytes must be >= 128 and blockTimeoutMs >= 0");
    return nullptr;
  }
  std::string error;
  auto w = Writer::open(std::string(*path), source_id, static_cast<std::size_t>(batch_bytes),
                        std::chrono::nanoseconds(static_cast<std::int64_t>(block_ms * 1e6)), error);
  if (!w) {
    napi_throw_error(env, nullptr, error.c_str());
    return nullptr;
  }
  RP_CHECK(env, napi_wrap(
                    env, a.self, w.get(), [](napi_env, void* p, void*) { delete static_cast<Writer*>(p); }, nullptr,
                    nullptr));
  w.release();  // NOLINT(bugprone-unused-return-value): owned by the JS object now
  return a.self;
}

// append(kind, name, value, sampleRate, tags, strValue, timestampNs) -> bool
napi_value writer_append(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  Writer* w = unwrap_writer(env, a.self);
  if (w == nullptr) return nullptr;
  Scratch& s = scratch();
  sample::Kind kind{};
  if (!read_kind(env, a.v[0], kind)) return nullptr;
  const auto name = utf8(env, a.v[1], s.name, "name");
  if (!name) return nullptr;
  const double value = number_or(env, a.v[2], 0);
  const double rate = number_or(env, a.v[3], 1);
  if (!(rate > 0 && rate <= 1)) {
    napi_throw_range_error(env, nullptr, "sampleRate must be in (0, 1]");
    return nullptr;
  }
  if (!read_tags(env, a.v[4], s)) return nullptr;
  std::string_view str;
  if (kind == sample::Kind::kSet) {
    const auto member = utf8(env, a.v[5], s.str, "set member");
    if (!member) return nullptr;
    str = *member;
  }
  const auto ts = static_cast<std::int64_t>(number_or(env, a.v[6], 0));
  napi_value out = nullptr;
  napi_get_boolean(env, w->append(kind, *name, value, rate, s.tags, str, ts), &out);
  return out;
}

// bulk(kind, name, Float64Array values, tags, sampleRate, Float64Array|BigInt64Array timestampsNs?) -> accepted
napi_value writer_bulk(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  Writer* w = unwrap_writer(env, a.self);
  if (w == nullptr) return nullptr;
  Scratch& s = scratch();
  sample::Kind kind{};
  if (!read_kind(env, a.v[0], kind) || kind == sample::Kind::kSet) {
    if (kind == sample::Kind::kSet) napi_throw_range_error(env, nullptr, "bulk does not take sets");
    return nullptr;
  }
  const auto name = utf8(env, a.v[1], s.name, "name");
  if (!name) return nullptr;
  bool typed = false;
  napi_is_typedarray(env, a.v[2], &typed);
  napi_typedarray_type vt{};
  std::size_t n = 0;
  void* vdata = nullptr;
  if (typed) napi_get_typedarray_info(env, a.v[2], &vt, &n, &vdata, nullptr, nullptr);
  if (!typed || vt != napi_float64_array) {
    napi_throw_type_error(env, nullptr, "values must be a Float64Array");
    return nullptr;
  }
  if (!read_tags(env, a.v[3], s)) return nullptr;
  const double rate = number_or(env, a.v[4], 1);
  if (!(rate > 0 && rate <= 1)) {
    napi_throw_range_error(env, nullptr, "sampleRate must be in (0, 1]");
    return nullptr;
  }
  const void* tdata = nullptr;
  napi_typedarray_type tt{};
  if (a.v[5] != nullptr && !is_type(env, a.v[5], napi_undefined) && !is_type(env, a.v[5], napi_null)) {
    bool ttyped = false;
    napi_is_typedarray(env, a.v[5], &ttyped);
    std::size_t tn = 0;
    void* p = nullptr;
    if (ttyped) napi_get_typedarray_info(env, a.v[5], &tt, &tn, &p, nullptr, nullptr);
    if (!ttyped || (tt != napi_float64_array && tt != napi_bigint64_array) || tn != n) {
      napi_throw_type_error(env, nullptr, "timestamps must be a Float64Array or BigInt64Array as long as values");
      return nullptr;
    }
    tdata = p;
  }
  const auto* values = static_cast<const double*>(vdata);
  std::uint32_t accepted = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t ts = 0;
    if (tdata != nullptr)
      ts = tt == napi_bigint64_array ? static_cast<const std::int64_t*>(tdata)[i]
                                     : static_cast<std::int64_t>(static_cast<const double*>(tdata)[i]);
    if (w->append(kind, *name, values[i], rate, s.tags, {}, ts)) ++accepted;
  }
  napi_value out = nullptr;
  napi_create_uint32(env, accepted, &out);
  return out;
}

// addSeries(kind, name, tags) -> {id, bytes}, or null when one sample of it never fits a batch.
// The same checks and errors as append().
napi_value writer_add_series(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  Writer* w = unwrap_writer(env, a.self);
  if (w == nullptr) return nullptr;
  Scratch& s = scratch();
  sample::Kind kind{};
  if (!read_kind(env, a.v[0], kind)) return nullptr;
  if (kind == sample::Kind::kSet) {
    napi_throw_range_error(env, nullptr, "a set's member goes with each sample: use append");
    return nullptr;
  }
  const auto name = utf8(env, a.v[1], s.name, "name");
  if (!name) return nullptr;
  if (!read_tags(env, a.v[2], s)) return nullptr;
  const auto added = w->add_series(kind, *name, s.tags);
  napi_value out = nullptr;
  if (!added) {
    napi_get_null(env, &out);
    return out;
  }
  napi_create_object(env, &out);
  set(env, out, "id", make_number(env, added->first));
  set(env, out, "bytes", make_number(env, static_cast<double>(added->second)));
  return out;
}

// clearSeries(): forgets the registered series (their ids are not to be written again).
napi_value writer_clear_series(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  Writer* w = unwrap_writer(env, a.self);
  if (w == nullptr) return nullptr;
  w->clear_series();
  return nullptr;
}

// write(Float64Array staged, n): appends n staged samples [id, value, sampleRate, ...] -> accepted.
napi_value writer_write(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  Writer* w = unwrap_writer(env, a.self);
  if (w == nullptr) return nullptr;
  bool typed = false;
  napi_is_typedarray(env, a.v[0], &typed);
  napi_typedarray_type t{};
  std::size_t len = 0;
  void* data = nullptr;
  if (typed) napi_get_typedarray_info(env, a.v[0], &t, &len, &data, nullptr, nullptr);
  if (!typed || t != napi_float64_array) {
    napi_throw_type_error(env, nullptr, "staged samples must be a Float64Array");
    return nullptr;
  }
  const double n = number_or(env, a.v[1], 0);
  if (!(n >= 0 && n * 3 <= static_cast<double>(len))) {
    napi_throw_range_error(env, nullptr, "more staged samples than the array holds");
    return nullptr;
  }
  const std::span<const double> staged(static_cast<const double*>(data), static_cast<std::size_t>(n) * 3);
  napi_value out = nullptr;
  napi_create_uint32(env, w->write_staged(staged), &out);
  return out;
}

// open() -> the room (bytes) left in the open batch, claiming one when none is open; -1: refused (counted).
napi_value writer_open(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  Writer* w = unwrap_writer(env, a.self);
  if (w == nullptr) return nullptr;
  return make_number(env, w->open());
}

// room() -> the room (bytes) left in the open batch; -1: none is open.
napi_value writer_room(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  Writer* w = unwrap_writer(env, a.self);
  if (w == nullptr) return nullptr;
  return make_number(env, w->room());
}

napi_value writer_flush(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  Writer* w = unwrap_writer(env, a.self);
  if (w == nullptr) return nullptr;
  napi_value out = nullptr;
  napi_create_uint32(env, w->flush(), &out);
  return out;
}

napi_value writer_close(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  void* p = nullptr;
  if (napi_unwrap(env, a.self, &p) == napi_ok && p != nullptr) static_cast<Writer*>(p)->close();
  return nullptr;
}

napi_value writer_stats(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  void* p = nullptr;
  if (napi_unwrap(env, a.self, &p) != napi_ok || p == nullptr) return nullptr;
  const auto* w = static_cast<const Writer*>(p);
  napi_value o = nullptr;
  napi_create_object(env, &o);
  set(env, o, "written", make_number(env, static_cast<double>(w->written())));
  set(env, o, "refused", make_number(env, static_cast<double>(w->refused())));
  set(env, o, "tooLarge", make_number(env, static_cast<double>(w->too_large_count())));
  set(env, o, "batches", make_number(env, static_cast<double>(w->batches())));
  set(env, o, "pending", make_number(env, w->pending()));
  set(env, o, "lane", make_number(env, w->lane()));
  set(env, o, "overflow", make_string(env, ringpipe::ring::overflow_name(w->ring().overflow())));
  return o;
}

// ---------------------------------------------------------------- Reader

struct ReaderBox {
  std::unique_ptr<Ring> ring;
  std::optional<Reader> reader;
};

ReaderBox* unwrap_reader(napi_env env, napi_value self) {
  void* p = nullptr;
  if (napi_unwrap(env, self, &p) != napi_ok || p == nullptr) {
    napi_throw_error(env, nullptr, "not a ringpipe Reader");
    return nullptr;
  }
  auto* r = static_cast<ReaderBox*>(p);
  if (!r->reader.has_value()) {
    napi_throw_error(env, nullptr, "the reader is closed");
    return nullptr;
  }
  return r;
}

// new Reader(path, name, start ('oldest'|'latest'), durable)
napi_value reader_new(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  std::vector<char> path_buf(4096);
  std::vector<char> name_buf(256);
  std::vector<char> start_buf(16);
  const auto path = utf8(env, a.v[0], path_buf, "path");
  if (!path) return nullptr;
  const auto name = utf8(env, a.v[1], name_buf, "name");
  if (!name) return nullptr;
  ringpipe::ring::ReaderOptions o;
  if (is_type(env, a.v[2], napi_string)) {
    const auto start = utf8(env, a.v[2], start_buf, "start");
    if (!start) return nullptr;
    if (*start == "latest") {
      o.start = ringpipe::ring::StartAt::kLatest;
    } else if (*start != "oldest") {
      napi_throw_range_error(env, nullptr, "start must be 'oldest' or 'latest'");
      return nullptr;
    }
  }
  if (is_type(env, a.v[3], napi_boolean)) napi_get_value_bool(env, a.v[3], &o.durable);
  auto box = std::make_unique<ReaderBox>();
  auto ring = Ring::open(std::string(*path));
  if (!ring) {
    napi_throw_error(env, nullptr, ring.error().message().c_str());
    return nullptr;
  }
  box->ring = std::make_unique<Ring>(std::move(*ring));
  auto reader = Reader::attach(*box->ring, *name, o);
  if (!reader) {
    napi_throw_error(env, nullptr, reader.error().message().c_str());
    return nullptr;
  }
  box->reader.emplace(std::move(*reader));
  RP_CHECK(env, napi_wrap(
                    env, a.self, box.get(), [](napi_env, void* p, void*) { delete static_cast<ReaderBox*>(p); },
                    nullptr, nullptr));
  box.release();  // NOLINT(bugprone-unused-return-value): owned by the JS object now
  return a.self;
}

// poll(callback(type, buffer, lane, seq) -> false to stop, maxRecords) -> records handed over.
// The Buffer views the record in the mapping; its ArrayBuffer is detached when
// the callback returns, so a view kept past it reads as empty, never stale bytes.
napi_value reader_poll(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  ReaderBox* box = unwrap_reader(env, a.self);
  if (box == nullptr) return nullptr;
  if (!is_type(env, a.v[0], napi_function)) {
    napi_throw_type_error(env, nullptr, "poll needs a callback");
    return nullptr;
  }
  const double max = number_or(env, a.v[1], 1024);
  napi_value undefined = nullptr;
  napi_get_undefined(env, &undefined);
  bool failed = false;
  const std::size_t n = box->reader->poll_while(
      [&](const ringpipe::ring::RecordView& v) -> bool {
        napi_value ab = nullptr;
        // A zero-length record still gets its own (empty) buffer.
        void* data = const_cast<std::byte*>(v.payload.data());  // NOLINT: read-only by contract (see README)
        if (napi_create_external_arraybuffer(env, data, v.payload.size(), nullptr, nullptr, &ab) != napi_ok) {
          failed = true;
          return false;
        }
        napi_value buf = nullptr;
        napi_create_typedarray(env, napi_uint8_array, v.payload.size(), ab, 0, &buf);
        std::array<napi_value, 4> argv = {make_number(env, v.type), buf, make_number(env, v.lane),
                                          make_bigint(env, v.seq)};
        napi_value ret = nullptr;
        const napi_status st = napi_call_function(env, undefined, a.v[0], argv.size(), argv.data(), &ret);
        napi_detach_arraybuffer(env, ab);
        if (st != napi_ok) {
          failed = true;  // the exception stays pending; this record stays unread
          return false;
        }
        bool stop = false;
        if (is_type(env, ret, napi_boolean)) {
          bool b = true;
          napi_get_value_bool(env, ret, &b);
          stop = !b;
        }
        return !stop;
      },
      max > 0 ? static_cast<std::size_t>(max) : 1);
  if (failed) {
    throw_last_error(env);
    return nullptr;
  }
  napi_value out = nullptr;
  napi_create_uint32(env, static_cast<std::uint32_t>(n), &out);
  return out;
}

napi_value reader_wait(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  ReaderBox* box = unwrap_reader(env, a.self);
  if (box == nullptr) return nullptr;
  const double ms = number_or(env, a.v[0], 0);
  const bool ready = box->reader->wait(std::chrono::nanoseconds(static_cast<std::int64_t>(ms * 1e6)));
  napi_value out = nullptr;
  napi_get_boolean(env, ready, &out);
  return out;
}

napi_value reader_close(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  void* p = nullptr;
  if (napi_unwrap(env, a.self, &p) == napi_ok && p != nullptr) static_cast<ReaderBox*>(p)->reader.reset();
  return nullptr;
}

napi_value reader_stats(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  ReaderBox* box = unwrap_reader(env, a.self);
  if (box == nullptr) return nullptr;
  const auto st = box->reader->stats();
  napi_value o = nullptr;
  napi_create_object(env, &o);
  set(env, o, "name", make_string(env, st.name));
  set(env, o, "records", make_number(env, static_cast<double>(st.records)));
  set(env, o, "bytes", make_number(env, static_cast<double>(st.bytes)));
  set(env, o, "lappedRecords", make_number(env, static_cast<double>(st.lapped_records)));
  set(env, o, "tornRecords", make_number(env, static_cast<double>(st.torn_records)));
  set(env, o, "corruptRecords", make_number(env, static_cast<double>(st.corrupt_records)));
  set(env, o, "lagBytes", make_number(env, static_cast<double>(st.lag_bytes)));
  return o;
}

// ---------------------------------------------------------------- ring stats, decoders

// ringStats(path): the counters of every lane (the `ringpipe ring stat` figures).
napi_value ring_stats(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return nullptr;
  std::vector<char> path_buf(4096);
  const auto path = utf8(env, a.v[0], path_buf, "path");
  if (!path) return nullptr;
  auto ring = Ring::open(std::string(*path));
  if (!ring) {
    napi_throw_error(env, nullptr, ring.error().message().c_str());
    return nullptr;
  }
  const auto st = ring->stats();
  napi_value o = nullptr;
  napi_create_object(env, &o);
  set(env, o, "overflow", make_string(env, ringpipe::ring::overflow_name(st.overflow)));
  set(env, o, "lanes", make_number(env, st.lanes));
  napi_value lanes = nullptr;
  napi_create_array_with_length(env, st.lane.size(), &lanes);
  for (std::size_t i = 0; i < st.lane.size(); ++i) {
    const auto& l = st.lane[i];
    napi_value lo = nullptr;
    napi_create_object(env, &lo);
    set(env, lo, "lane", make_number(env, l.lane));
    napi_value owned = nullptr;
    napi_get_boolean(env, l.owned, &owned);
    set(env, lo, "owned", owned);
    set(env, lo, "ownerPid", make_number(env, l.owner_pid));
    set(env, lo, "records", make_number(env, static_cast<double>(l.records)));
    set(env, lo, "droppedRecords", make_number(env, static_cast<double>(l.dropped_records)));
    set(env, lo, "recoveredClaims", make_number(env, static_cast<double>(l.recovered_claims)));
    napi_set_element(env, lanes, static_cast<std::uint32_t>(i), lo);
  }
  set(env, o, "lane", lanes);
  return o;
}

bool bytes_of(napi_env env, napi_value v, std::span<const std::byte>& out) {
  bool typed = false;
  napi_is_typedarray(env, v, &typed);
  if (typed) {
    napi_typedarray_type t{};
    std::size_t len = 0;
    void* data = nullptr;
    napi_get_typedarray_info(env, v, &t, &len, &data, nullptr, nullptr);
    if (t == napi_uint8_array) {
      out = {static_cast<const std::byte*>(data), len};
      return true;
    }
  }
  bool is_ab = false;
  napi_is_arraybuffer(env, v, &is_ab);
  if (is_ab) {
    void* data = nullptr;
    std::size_t len = 0;
    napi_get_arraybuffer_info(env, v, &data, &len);
    out = {static_cast<const std::byte*>(data), len};
    return true;
  }
  napi_throw_type_error(env, nullptr, "expected a Buffer, Uint8Array or ArrayBuffer");
  return false;
}

// The bytes of a call's first argument; nullopt with a JavaScript exception pending.
std::optional<std::span<const std::byte>> bytes_arg(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, a)) return std::nullopt;
  std::span<const std::byte> bytes;
  if (!bytes_of(env, a.v[0], bytes)) return std::nullopt;
  return bytes;
}

// A decoded batch's `error`: null when it decoded whole, else the reason's name.
napi_value decode_error(napi_env env, bool ok, std::string_view name) {
  napi_value err = nullptr;
  if (ok) {
    napi_get_null(env, &err);
  } else {
    err = make_string(env, name);
  }
  return err;
}

// A sample batch's header fields both sample decoders return: sourceId, receivedNs.
void set_sample_header(napi_env env, napi_value out, const sample::BatchHeader& h) {
  set(env, out, "sourceId", make_number(env, h.source_id));
  set(env, out, "receivedNs", make_bigint(env, static_cast<std::uint64_t>(h.received_ns)));
}

// decodeSampleBatch(bytes) -> {formatVersion, sourceId, receivedNs, samples: [...], error}
napi_value decode_sample_batch(napi_env env, napi_callback_info info) {
  const auto bytes = bytes_arg(env, info);
  if (!bytes) return nullptr;
  sample::BatchReader r(*bytes);
  napi_value samples = nullptr;
  napi_create_array(env, &samples);
  std::uint32_t i = 0;
  while (auto s = r.next()) {
    napi_value o = nullptr;
    napi_create_object(env, &o);
    set(env, o, "kind", make_string(env, sample::kind_name(s->kind)));
    set(env, o, "name", make_string(env, s->name));
    set(env, o, "value", make_number(env, s->value));
    set(env, o, "sampleRate", make_number(env, s->sample_rate));
    set(env, o, "timestampNs", make_bigint(env, static_cast<std::uint64_t>(s->timestamp_ns)));
    if (s->kind == sample::Kind::kSet) set(env, o, "member", make_string(env, s->str_value));
    napi_value tags = nullptr;
    napi_create_object(env, &tags);
    s->for_each_tag([&](const sample::Tag& t) {
      napi_value key = make_string(env, t.key);
      napi_set_property(env, tags, key, make_string(env, t.value));
    });
    set(env, o, "tags", tags);
    napi_set_element(env, samples, i++, o);
  }
  napi_value out = nullptr;
  napi_create_object(env, &out);
  set_sample_header(env, out, r.header());
  set(env, out, "samples", samples);
  set(env, out, "error",
      decode_error(env, r.error() == sample::DecodeError::kNone, sample::decode_error_name(r.error())));
  return out;
}

// Creates a typed array over a copy of `bytes` (one N-API allocation).
template <typename T>
napi_value typed_copy(napi_env env, napi_typedarray_type type, std::span<const T> items) {
  void* data = nullptr;
  napi_value ab = nullptr;
  if (napi_create_arraybuffer(env, items.size_bytes(), &data, &ab) != napi_ok) return nullptr;
  if (!items.empty()) std::memcpy(data, items.data(), items.size_bytes());
  napi_value out = nullptr;
  napi_create_typedarray(env, type, items.size(), ab, 0, &out);
  return out;
}

// decodeSampleColumns(bytes) -> {sourceId, receivedNs, error, count, kinds: Uint8Array,
//   numbers: Float64Array [value, rate]..., timestamps: BigUint64Array (each run of equal
//   timestamps once), timeRefs: Uint32Array (per sample, its run in timestamps), refs:
//   Uint32Array [name, member, firstTag, tagCount]..., tags: Uint32Array [key, value]...,
//   strings: [...]}
// The decoder's columns, for index.js to build the sample objects from: a
// batch costs a few N-API calls plus one per distinct string, not a dozen per
// sample. Strings are indices into `strings` (each distinct string of the
// batch once); member is 0xffffffff but for sets. Checked by BatchReader as
// decodeSampleBatch is.
napi_value decode_sample_columns(napi_env env, napi_callback_info info) {
  const auto bytes = bytes_arg(env, info);
  if (!bytes) return nullptr;
  struct Columns {
    std::vector<std::uint8_t> kinds;
    std::vector<double> numbers;
    std::vector<std::uint64_t> timestamps;
    std::vector<std::uint32_t> time_refs;
    std::vector<std::uint32_t> refs;
    std::vector<std::uint32_t> tags;
    std::vector<std::string_view> strings;
    std::unordered_map<std::string_view, std::uint32_t> index;
  };
  static thread_local Columns columns;  // reused: its capacity stays
  Columns& c = columns;
  c.kinds.clear();
  c.numbers.clear();
  c.timestamps.clear();
  c.time_refs.clear();
  c.refs.clear();
  c.tags.clear();
  c.strings.clear();
  c.index.clear();
  auto str = [&c](std::string_view v) {
    const auto [it, added] = c.index.try_emplace(v, static_cast<std::uint32_t>(c.strings.size()));
    if (added) c.strings.push_back(v);
    return it->second;
  };
  // Runs of samples of one series are the rule: a name, or the whole tag
  // bytes, equal to the previous sample's take its indices without a lookup.
  std::string_view last_name;
  std::uint32_t last_name_ref = 0;
  std::span<const std::byte> last_tags;
  std::uint32_t last_first_tag = 0;
  std::uint32_t last_tag_count = 0;
  bool first = true;
  sample::BatchReader r(*bytes);
  while (auto smp = r.next()) {
    c.kinds.push_back(static_cast<std::uint8_t>(smp->kind));
    c.numbers.push_back(smp->value);
    c.numbers.push_back(smp->sample_rate);
    // A batch's samples mostly share one timestamp (or none): JavaScript then
    // makes one BigInt per run instead of one per sample.
    const auto ts = static_cast<std::uint64_t>(smp->timestamp_ns);
    if (c.timestamps.empty() || c.timestamps.back() != ts) c.timestamps.push_back(ts);
    c.time_refs.push_back(static_cast<std::uint32_t>(c.timestamps.size() - 1));
    if (first || smp->name != last_name) {
      last_name = smp->name;
      last_name_ref = str(smp->name);
    }
    c.refs.push_back(last_name_ref);
    c.refs.push_back(smp->kind == sample::Kind::kSet ? str(smp->str_value) : 0xffffffffU);
    const bool same_tags = !first && smp->tag_count == last_tag_count && smp->tag_bytes.size() == last_tags.size() &&
                           std::equal(smp->tag_bytes.begin(), smp->tag_bytes.end(), last_tags.begin());
    if (!same_tags) {
      last_first_tag = static_cast<std::uint32_t>(c.tags.size() / 2);
      last_tag_count = 0;
      smp->for_each_tag([&](const sample::Tag& t) {
        c.tags.push_back(str(t.key));
        c.tags.push_back(str(t.value));
        ++last_tag_count;
      });
      last_tags = smp->tag_bytes;
    }
    c.refs.push_back(last_first_tag);
    c.refs.push_back(last_tag_count);
    first = false;
  }
  napi_value strings = nullptr;
  napi_create_array_with_length(env, c.strings.size(), &strings);
  for (std::size_t i = 0; i < c.strings.size(); ++i) {
    napi_set_element(env, strings, static_cast<std::uint32_t>(i), make_string(env, c.strings[i]));
  }
  napi_value out = nullptr;
  napi_create_object(env, &out);
  set_sample_header(env, out, r.header());
  set(env, out, "error",
      decode_error(env, r.error() == sample::DecodeError::kNone, sample::decode_error_name(r.error())));
  set(env, out, "count", make_number(env, static_cast<double>(c.kinds.size())));
  set(env, out, "kinds", typed_copy<std::uint8_t>(env, napi_uint8_array, c.kinds));
  set(env, out, "numbers", typed_copy<double>(env, napi_float64_array, c.numbers));
  set(env, out, "timestamps", typed_copy<std::uint64_t>(env, napi_biguint64_array, c.timestamps));
  set(env, out, "timeRefs", typed_copy<std::uint32_t>(env, napi_uint32_array, c.time_refs));
  set(env, out, "refs", typed_copy<std::uint32_t>(env, napi_uint32_array, c.refs));
  set(env, out, "tags", typed_copy<std::uint32_t>(env, napi_uint32_array, c.tags));
  set(env, out, "strings", strings);
  return out;
}

// decodeMetricBatch(bytes) -> {shard, instanceId, flushSeq, entries: [...], error}
napi_value decode_metric_batch(napi_env env, napi_callback_info info) {
  const auto bytes = bytes_arg(env, info);
  if (!bytes) return nullptr;
  metric::MetricBatchReader r(*bytes);
  napi_value entries = nullptr;
  napi_create_array(env, &entries);
  std::uint32_t i = 0;
  while (auto e = r.next()) {
    napi_value o = nullptr;
    napi_create_object(env, &o);
    set(env, o, "kind", make_string(env, metric::entry_kind_name(e->kind)));
    if (e->kind == metric::EntryKind::kSeries || e->kind == metric::EntryKind::kExpire) {
      set(env, o, "type", make_string(env, metric::metric_type_name(e->type)));
      set(env, o, "name", make_string(env, e->name));
      set(env, o, "help", make_string(env, e->help));
      napi_value labels = nullptr;
      napi_create_object(env, &labels);
      e->for_each_label([&](const metric::Label& l) {
        napi_value key = make_string(env, l.name);
        napi_set_property(env, labels, key, make_string(env, l.value));
      });
      set(env, o, "labels", labels);
    }
    set(env, o, "key", make_bigint(env, e->key));
    napi_value values = nullptr;
    napi_create_array_with_length(env, e->value_count, &values);
    for (std::uint16_t k = 0; k < e->value_count; ++k) napi_set_element(env, values, k, make_number(env, e->value(k)));
    set(env, o, "values", values);
    napi_set_element(env, entries, i++, o);
  }
  napi_value out = nullptr;
  napi_create_object(env, &out);
  const auto& h = r.header();
  set(env, out, "shard", make_number(env, h.shard));
  set(env, out, "shardCount", make_number(env, h.shard_count));
  set(env, out, "instanceId", make_bigint(env, h.instance_id));
  set(env, out, "flushSeq", make_bigint(env, h.flush_seq));
  set(env, out, "entries", entries);
  set(env, out, "error",
      decode_error(env, r.error() == metric::MetricDecodeError::kNone, metric::metric_decode_error_name(r.error())));
  return out;
}

// bufferAddress(bytes) -> BigInt: where a view's bytes are (tests prove zero copy with it).
napi_value buffer_address(napi_env env, napi_callback_info info) {
  const auto bytes = bytes_arg(env, info);
  if (!bytes) return nullptr;
  return make_bigint(env, reinterpret_cast<std::uintptr_t>(bytes->data()));
}

napi_value define_class(napi_env env, const char* name, napi_callback ctor,
                        std::span<const napi_property_descriptor> methods) {
  napi_value cls = nullptr;
  napi_define_class(env, name, NAPI_AUTO_LENGTH, ctor, nullptr, methods.size(), methods.data(), &cls);
  return cls;
}

constexpr napi_property_descriptor method(const char* name, napi_callback f) {
  return {name, nullptr, f, nullptr, nullptr, nullptr, napi_default_method, nullptr};
}

napi_value init(napi_env env, napi_value exports) {
  const std::array writer_methods = {method("append", writer_append),
                                     method("bulk", writer_bulk),
                                     method("flush", writer_flush),
                                     method("close", writer_close),
                                     method("stats", writer_stats),
                                     method("addSeries", writer_add_series),
                                     method("clearSeries", writer_clear_series),
                                     method("write", writer_write),
                                     method("open", writer_open),
                                     method("room", writer_room)};
  const std::array reader_methods = {method("poll", reader_poll), method("wait", reader_wait),
                                     method("close", reader_close), method("stats", reader_stats)};
  set(env, exports, "Writer", define_class(env, "Writer", writer_new, writer_methods));
  set(env, exports, "Reader", define_class(env, "Reader", reader_new, reader_methods));
  // Plain functions of the module: enumerable, as exports usually are.
  std::array functions = {method("ringStats", ring_stats), method("decodeSampleBatch", decode_sample_batch),
                          method("decodeSampleColumns", decode_sample_columns),
                          method("decodeMetricBatch", decode_metric_batch), method("bufferAddress", buffer_address)};
  for (auto& f : functions) f.attributes = napi_enumerable;
  napi_define_properties(env, exports, functions.size(), functions.data());
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
