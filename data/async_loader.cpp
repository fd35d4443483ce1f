#include "data/async_loader.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <map>

#include "core/cuda/runtime.h"
#include "core/error.h"
#include "data/errors.h"

namespace sg::data {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// splitmix64's finaliser: a bijection of 64-bit words with good avalanche.
uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// splitmix64 as a generator, for the epoch's permutation.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ull;
    uint64_t x = state_;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }
  // Uniform in [0, n) without modulo bias (rejects the top partial range).
  uint64_t below(uint64_t n) {
    const uint64_t threshold = (0 - n) % n;  // 2^64 mod n
    for (;;) {
      const uint64_t r = next();
      if (r >= threshold) return r % n;
    }
  }

 private:
  uint64_t state_;
};

constexpr size_t kAlign = 64;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

uint64_t sample_seed(uint64_t loader_seed, int epoch, int64_t item) {
  return mix64(mix64(mix64(loader_seed) ^ static_cast<uint64_t>(static_cast<uint32_t>(epoch))) ^
               static_cast<uint64_t>(item));
}

std::vector<int64_t> epoch_order(int64_t item_count, uint64_t seed, int epoch, bool shuffle) {
  SG_CHECK(item_count >= 0, "epoch_order: negative item count ", item_count);
  std::vector<int64_t> order(static_cast<size_t>(item_count));
  for (int64_t i = 0; i < item_count; ++i) order[static_cast<size_t>(i)] = i;
  if (!shuffle) return order;
  // A different stream from sample_seed's ("shuffle" in the first word), then Fisher-Yates.
  SplitMix64 rng(mix64(mix64(seed ^ 0x73687566666C65ull) ^ static_cast<uint64_t>(static_cast<uint32_t>(epoch))));
  for (int64_t i = item_count - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i) + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

// ---- host buffers --------------------------------------------------------------------------------

// Host memory for one batch, pinned or plain: [B, H, W, C] u8 pixels, then [B] i32 labels, then
// [B, T] f32 targets, each part starting on a 64-byte boundary.
struct BatchLayout {
  size_t sample_bytes = 0;
  int batch_size = 0;
  int target_count = 0;
  size_t labels_offset() const { return align_up(sample_bytes * static_cast<size_t>(batch_size)); }
  size_t targets_offset() const { return align_up(labels_offset() + sizeof(int32_t) * static_cast<size_t>(batch_size)); }
  size_t total_bytes() const {
    return targets_offset() + sizeof(float) * static_cast<size_t>(batch_size) * static_cast<size_t>(target_count);
  }
};

class HostMemory {
 public:
  HostMemory(size_t bytes, bool pinned) : bytes_(bytes), pinned_(pinned) {
    if (pinned_) {
      data_ = static_cast<uint8_t*>(cuda::host_malloc_pinned(bytes));
    } else {
      plain_ = std::make_unique_for_overwrite<uint8_t[]>(bytes);
      data_ = plain_.get();
    }
  }
  ~HostMemory() {
    if (pinned_ && data_) cuda::host_free_pinned(data_);
  }
  HostMemory(const HostMemory&) = delete;
  HostMemory& operator=(const HostMemory&) = delete;
  uint8_t* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  bool pinned() const { return pinned_; }

 private:
  std::unique_ptr<uint8_t[]> plain_;
  uint8_t* data_ = nullptr;
  size_t bytes_ = 0;
  bool pinned_ = false;
};

struct BatchBuffer {
  BatchBuffer(const BatchLayout& l, bool pinned) : layout(l), memory(l.total_bytes(), pinned) {}
  BatchLayout layout;
  HostMemory memory;
  // The last upload from this buffer; waited on before the buffer is written again.
  std::shared_ptr<Event> pending_upload;

  uint8_t* sample(int64_t slot) const { return memory.data() + static_cast<size_t>(slot) * layout.sample_bytes; }
  int32_t* labels() const { return reinterpret_cast<int32_t*>(memory.data() + layout.labels_offset()); }
  float* targets() const { return reinterpret_cast<float*>(memory.data() + layout.targets_offset()); }
  float* targets(int64_t slot) const { return targets() + static_cast<size_t>(slot) * layout.target_count; }
};

class BatchBufferPool {
 public:
  BatchBufferPool(BatchLayout layout, bool pinned, std::function<void(size_t)> pinning_fault)
      : layout_(layout), pinned_(pinned), pinning_fault_(std::move(pinning_fault)) {}
  std::unique_ptr<BatchBuffer> acquire() {
    bool pin = false;
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        auto buffer = std::move(free_.back());
        free_.pop_back();
        return buffer;
      }
      ++allocated_;
      pin = pinned_ && pinning_failure_.empty();
    }
    if (pin) {
      try {
        if (pinning_fault_) pinning_fault_(layout_.total_bytes());
        return std::make_unique<BatchBuffer>(layout_, true);
      } catch (const std::exception& e) {
        // Page-locked memory is a limited resource (ulimit -l, other processes, a container's
        // cap): copies from pageable memory are slower, not wrong, so the epoch goes on. No later
        // buffer tries again: a refusal is rarely followed by success, and each costs a call.
        std::lock_guard lock(mutex_);
        if (pinning_failure_.empty())
          pinning_failure_ = detail::concat("page-locked memory for a ", layout_.total_bytes(),
                                            "-byte batch buffer was refused (", e.what(), ")");
      }
    }
    return std::make_unique<BatchBuffer>(layout_, false);
  }
  std::string pinning_failure() const {
    std::lock_guard lock(mutex_);
    return pinning_failure_;
  }
  void release(std::unique_ptr<BatchBuffer> buffer) noexcept {
    std::lock_guard lock(mutex_);
    try {
      free_.push_back(std::move(buffer));
    } catch (...) {  // no room to keep it: it is freed instead
    }
  }
  int64_t allocated() const {
    std::lock_guard lock(mutex_);
    return allocated_;
  }
  bool pinned() const { return pinned_; }

 private:
  BatchLayout layout_;
  bool pinned_;
  std::function<void(size_t)> pinning_fault_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<BatchBuffer>> free_;
  int64_t allocated_ = 0;
  std::string pinning_failure_;  // non-empty: pinning failed once; buffers are pageable from then on
};

// ---- Batch ---------------------------------------------------------------------------------------

Batch::Batch(std::shared_ptr<BatchBufferPool> pool, std::unique_ptr<BatchBuffer> buffer, SampleShape shape,
             int batch_size, int target_count)
    : pool_(std::move(pool)),
      buffer_(std::move(buffer)),
      shape_(shape),
      batch_size_(batch_size),
      target_count_(target_count) {}

Batch::Batch(Batch&&) noexcept = default;

Batch& Batch::operator=(Batch&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = std::move(other.pool_);
    buffer_ = std::move(other.buffer_);
    shape_ = other.shape_;
    batch_size_ = other.batch_size_;
    target_count_ = other.target_count_;
    epoch_ = other.epoch_;
    index_ = other.index_;
    items_ = std::move(other.items_);
    positions_ = std::move(other.positions_);
    seeds_ = std::move(other.seeds_);
    names_ = std::move(other.names_);
  }
  return *this;
}

Batch::~Batch() { release(); }

void Batch::release() noexcept {
  if (pool_ && buffer_) pool_->release(std::move(buffer_));
  buffer_.reset();
}

bool Batch::pinned() const { return buffer_ && buffer_->memory.pinned(); }

std::span<const uint8_t> Batch::pixels() const {
  SG_CHECK(buffer_, "Batch::pixels: the batch was moved from");
  return {buffer_->sample(0), shape_.bytes() * static_cast<size_t>(size())};
}

std::span<const uint8_t> Batch::sample(int i) const {
  SG_CHECK(buffer_, "Batch::sample: the batch was moved from");
  SG_CHECK(i >= 0 && i < size(), "Batch::sample: index ", i, " outside a batch of ", size());
  return {buffer_->sample(i), shape_.bytes()};
}

std::span<const int32_t> Batch::labels() const {
  SG_CHECK(buffer_, "Batch::labels: the batch was moved from");
  return {buffer_->labels(), static_cast<size_t>(size())};
}

std::span<const float> Batch::targets() const {
  SG_CHECK(buffer_, "Batch::targets: the batch was moved from");
  return {buffer_->targets(), static_cast<size_t>(size()) * static_cast<size_t>(target_count_)};
}

namespace {
// Copies host bytes into a fresh tensor on `device`, allocated for `stream` (the copy's); `wait`
// makes the copy finish before returning.
Tensor tensor_from_host(const void* src, Shape shape, DType dtype, Device device, const Stream& stream, bool wait) {
  Tensor t = Tensor::empty(std::move(shape), dtype, device, stream, "loader batch");
  if (t.nbytes() == 0) return t;
  if (device.is_cpu()) {
    std::memcpy(t.data(), src, t.nbytes());
  } else {
    const DeviceGuard on_device(device);  // a default stream is the legacy stream of `device`
    cuda::memcpy_async(t.data(), src, t.nbytes(), stream.handle());
    if (wait) stream.synchronize(device);
  }
  return t;
}
}  // namespace

Tensor Batch::to_device(Device device, const Stream& stream) const {
  SG_CHECK(buffer_, "Batch::to_device: the batch was moved from");
  return tensor_from_host(buffer_->sample(0), Shape{size(), shape_.height, shape_.width, shape_.channels}, DType::u8,
                          device, stream, /*wait=*/true);
}

DeviceBatch Batch::upload_async(Device device, const Stream& copy_stream) {
  SG_CHECK(buffer_, "Batch::upload_async: the batch was moved from");
  // Pageable memory cannot be copied asynchronously: then each copy finishes before the next.
  const bool wait = !buffer_->memory.pinned();
  DeviceBatch out;
  out.pixels = tensor_from_host(buffer_->sample(0), Shape{size(), shape_.height, shape_.width, shape_.channels},
                                DType::u8, device, copy_stream, wait);
  out.labels = tensor_from_host(buffer_->labels(), Shape{size()}, DType::i32, device, copy_stream, wait);
  if (target_count_ > 0)
    out.targets = tensor_from_host(buffer_->targets(), Shape{size(), target_count_}, DType::f32, device, copy_stream,
                                   wait);
  out.ready = std::make_shared<Event>(device, /*timing=*/false);
  out.ready->record(copy_stream);
  buffer_->pending_upload = out.ready;
  return out;
}

// ---- AsyncLoader ---------------------------------------------------------------------------------

namespace {
enum class SampleStatus : uint8_t { waiting, running, good, skipped, failed };

struct PositionRecord {
  SampleStatus status = SampleStatus::waiting;
  std::string name;
  std::string message;  // skipped or failed: the sample function's message
};
}  // namespace

struct AsyncLoader::State {
  bool started = false;
  bool active = false;    // positions of the current epoch may be dispatched
  bool stopping = false;
  bool halted = false;    // a sample failed: dispatch no further positions this epoch
  int epoch = 0;
  uint64_t generation = 0;
  std::vector<int64_t> order;           // position -> item
  std::vector<PositionRecord> records;  // by position
  int64_t next_dispatch = 0;            // positions below were handed to a worker
  int running = 0;                      // sample functions in progress
  std::map<int64_t, std::unique_ptr<BatchBuffer>> position_batches;  // p / B -> its buffer

  // The consumer's side.
  int64_t scan = 0;            // next position to examine
  int64_t destination = -1;    // position batch whose buffer becomes the batch being assembled
  std::vector<int64_t> gathered;  // its positions so far
  int64_t batch_index = 0;
  bool epoch_done = false;
  std::string failure;  // non-empty: the epoch failed with this message
  bool clock_started = false;
  Clock::time_point first_next;

  LoaderStats stats;
  std::vector<SkippedItem> skipped;
};

AsyncLoader::AsyncLoader(AsyncLoaderConfig config, int64_t item_count, SampleFunction sample)
    : config_(std::move(config)), item_count_(item_count), sample_(std::move(sample)), state_(std::make_unique<State>()) {
  const SampleShape& s = config_.sample_shape;
  SG_CHECK(item_count_ >= 0, "AsyncLoader: negative item count ", item_count_);
  SG_CHECK(config_.batch_size >= 1, "AsyncLoader: batch size must be at least 1, got ", config_.batch_size);
  SG_CHECK(s.height > 0 && s.width > 0 && s.channels > 0, "AsyncLoader: bad sample shape [", s.height, ", ", s.width,
           ", ", s.channels, "]");
  SG_CHECK(config_.target_count >= 0, "AsyncLoader: negative target count ", config_.target_count);
  SG_CHECK(config_.workers >= 0, "AsyncLoader: negative worker count ", config_.workers);
  SG_CHECK(config_.queue_depth >= 1, "AsyncLoader: queue depth must be at least 1 batch, got ", config_.queue_depth);
  SG_CHECK(static_cast<bool>(sample_), "AsyncLoader: no sample function");
  const BatchLayout layout{s.bytes(), config_.batch_size, config_.target_count};
  const bool pinned = config_.device.is_cuda() && cuda_available();
  pool_ = std::make_shared<BatchBufferPool>(layout, pinned, config_.pinning_fault);
  threads_.reserve(static_cast<size_t>(config_.workers));
  try {
    for (int i = 0; i < config_.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
  } catch (...) {
    stop();
    throw;
  }
}

AsyncLoader::~AsyncLoader() { stop(); }

void AsyncLoader::stop() {
  {
    std::lock_guard lock(mutex_);
    state_->stopping = true;
    state_->active = false;
  }
  work_ready_.notify_all();
  sample_done_.notify_all();
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  std::lock_guard lock(mutex_);
  for (auto& [index, buffer] : state_->position_batches) pool_->release(std::move(buffer));
  state_->position_batches.clear();
}

int AsyncLoader::epoch() const {
  std::lock_guard lock(mutex_);
  return state_->epoch;
}

int64_t AsyncLoader::batches_per_epoch() const {
  const int64_t b = config_.batch_size;
  return config_.drop_last ? item_count_ / b : (item_count_ + b - 1) / b;
}

LoaderStats AsyncLoader::stats() const {
  std::lock_guard lock(mutex_);
  LoaderStats s = state_->stats;
  s.buffers_allocated = pool_->allocated();
  return s;
}

std::string AsyncLoader::pinning_failure() const { return pool_->pinning_failure(); }

std::vector<SkippedItem> AsyncLoader::skipped_items() const {
  std::lock_guard lock(mutex_);
  return state_->skipped;
}

void AsyncLoader::start_epoch(int epoch) {
  std::unique_lock lock(mutex_);
  start_epoch_locked(lock, epoch);
}

void AsyncLoader::start_epoch_locked(std::unique_lock<std::mutex>& lock, int epoch) {
  State& st = *state_;
  SG_CHECK(!st.stopping, "AsyncLoader::start_epoch: the loader was stopped");
  // Let the samples in progress finish (they write into buffers about to be recycled).
  st.active = false;
  ++st.generation;
  sample_done_.wait(lock, [&] { return st.running == 0; });
  for (auto& [index, buffer] : st.position_batches) pool_->release(std::move(buffer));
  st.position_batches.clear();
  st.order = epoch_order(item_count_, config_.seed, epoch, config_.shuffle);
  st.records.assign(static_cast<size_t>(item_count_), PositionRecord{});
  st.next_dispatch = 0;
  st.scan = 0;
  st.destination = -1;
  st.gathered.clear();
  st.batch_index = 0;
  st.epoch_done = false;
  st.halted = false;
  st.failure.clear();
  st.epoch = epoch;
  st.started = true;
  st.active = true;
  work_ready_.notify_all();
}

bool AsyncLoader::dispatchable_locked() const {
  const State& st = *state_;
  const int64_t b = config_.batch_size;
  return st.active && !st.stopping && !st.halted && st.next_dispatch < item_count_ &&
         st.next_dispatch / b < st.scan / b + config_.queue_depth;
}

// Runs the next position's sample; called with the lock held and dispatchable_locked() true,
// returns with the lock held. The sample function runs unlocked.
void AsyncLoader::run_next_position(std::unique_lock<std::mutex>& lock) {
  State& st = *state_;
  const int64_t b = config_.batch_size;
  const int64_t position = st.next_dispatch++;
  const uint64_t generation = st.generation;
  const int64_t item = st.order[static_cast<size_t>(position)];
  const SampleRequest request{item, st.epoch, position, sample_seed(config_.seed, st.epoch, item)};
  ++st.running;
  st.records[static_cast<size_t>(position)].status = SampleStatus::running;

  SampleStatus status = SampleStatus::good;
  std::string message;
  SampleOutput output;
  BatchBuffer* buffer = nullptr;
  std::shared_ptr<Event> pending_upload;
  try {
    auto& slot = st.position_batches[position / b];
    if (!slot) slot = pool_->acquire();
    buffer = slot.get();
    pending_upload = buffer->pending_upload;
  } catch (const std::exception& e) {
    status = SampleStatus::failed;
    message = e.what();
  }

  lock.unlock();
  const Clock::time_point start = Clock::now();
  if (status == SampleStatus::good) {
    const int64_t slot = position % b;
    output.pixels = {buffer->sample(slot), config_.sample_shape.bytes()};
    output.targets = {buffer->targets(slot), static_cast<size_t>(config_.target_count)};
    try {
      // The previous upload out of this pooled buffer may still be reading it (an asynchronous
      // copy from pinned memory): wait for it before the first write of any kind into the
      // buffer, the zeroed targets included.
      if (pending_upload) pending_upload->synchronize();
      std::fill(output.targets.begin(), output.targets.end(), 0.0f);
      sample_(request, output);
      buffer->labels()[slot] = output.label;
    } catch (const SkippableItemError& e) {
      status = SampleStatus::skipped;
      message = e.what();
    } catch (const std::exception& e) {
      status = SampleStatus::failed;
      message = e.what();
    } catch (...) {
      status = SampleStatus::failed;
      message = "unknown exception (not derived from std::exception)";
    }
  }
  const double seconds = seconds_since(start);
  std::string name = std::move(output.name);
  if (name.empty()) {
    try {
      name = config_.item_name ? config_.item_name(item) : "item " + std::to_string(item);
    } catch (...) {
      name = "item " + std::to_string(item);
    }
  }
  lock.lock();

  st.stats.sample_seconds += seconds;
  --st.running;
  if (generation == st.generation) {
    PositionRecord& record = st.records[static_cast<size_t>(position)];
    record.status = status;
    record.name = std::move(name);
    record.message = std::move(message);
    if (status == SampleStatus::failed) st.halted = true;  // the epoch ends at this item
  }
  sample_done_.notify_all();
}

void AsyncLoader::worker_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    work_ready_.wait(lock, [&] { return state_->stopping || dispatchable_locked(); });
    if (state_->stopping) return;
    run_next_position(lock);
  }
}

std::optional<Batch> AsyncLoader::next() {
  const Clock::time_point entered = Clock::now();
  std::unique_lock lock(mutex_);
  State& st = *state_;
  if (!st.clock_started) {
    st.clock_started = true;
    st.first_next = entered;
  }
  // Every way out of next() counts its time as time the consumer waited for data.
  struct WaitClock {
    State& st;
    Clock::time_point entered;
    ~WaitClock() {
      const Clock::time_point now = Clock::now();
      st.stats.wait_seconds += std::chrono::duration<double>(now - entered).count();
      st.stats.consumer_seconds = std::chrono::duration<double>(now - st.first_next).count();
    }
  } wait_clock{st, entered};

  if (st.stopping) return std::nullopt;
  if (!st.started) start_epoch_locked(lock, 0);
  if (!st.failure.empty()) throw Error(st.failure);
  if (st.epoch_done) return std::nullopt;

  const int64_t b = config_.batch_size;
  const size_t sample_bytes = config_.sample_shape.bytes();
  const auto release_position_batch = [&](int64_t index) {
    auto it = st.position_batches.find(index);
    if (it == st.position_batches.end()) return;
    pool_->release(std::move(it->second));
    st.position_batches.erase(it);
  };

  for (;;) {
    // Take finished positions in order until the batch is full or one is still in progress.
    const int64_t scan_before = st.scan;
    while (st.scan < item_count_ && static_cast<int64_t>(st.gathered.size()) < b) {
      const int64_t p = st.scan;
      PositionRecord& record = st.records[static_cast<size_t>(p)];
      if (record.status == SampleStatus::waiting || record.status == SampleStatus::running) break;
      const int64_t item = st.order[static_cast<size_t>(p)];
      if (record.status == SampleStatus::failed) {
        st.failure = detail::concat("AsyncLoader: ", record.name, " (item ", item, ", epoch ", st.epoch,
                                    "): ", record.message);
        st.epoch_done = true;
        st.active = false;
        throw Error(st.failure);
      }
      if (record.status == SampleStatus::skipped) {
        ++st.stats.items_skipped;
        st.skipped.push_back(SkippedItem{st.epoch, item, record.name, record.message});
      } else {
        if (st.destination < 0) st.destination = p / b;
        // Its place in the batch being assembled: different from where it was made once an
        // earlier position was skipped. The place is never after p, and everything between
        // has been taken or skipped, so the copy overwrites nothing still needed.
        const int64_t slot = static_cast<int64_t>(st.gathered.size());
        if (st.destination * b + slot != p) {
          const BatchBuffer& from = *st.position_batches.at(p / b);
          const BatchBuffer& to = *st.position_batches.at(st.destination);
          std::memcpy(to.sample(slot), from.sample(p % b), sample_bytes);
          to.labels()[slot] = from.labels()[p % b];
          std::memcpy(to.targets(slot), from.targets(p % b), sizeof(float) * static_cast<size_t>(config_.target_count));
          ++st.stats.samples_moved;
        }
        st.gathered.push_back(p);
      }
      ++st.scan;
      // A position batch the scan has passed holds nothing more that is needed.
      if (st.scan % b == 0 && p / b != st.destination) release_position_batch(p / b);
    }
    if (st.scan != scan_before) work_ready_.notify_all();  // the window moved on
    if (static_cast<int64_t>(st.gathered.size()) == b || st.scan == item_count_) break;
    if (config_.workers == 0) {
      // Makes the position at the scan, which nothing else makes.
      SG_CHECK(dispatchable_locked() && st.next_dispatch == st.scan, "AsyncLoader::next: internal error: position ",
               st.scan, " cannot be made (next to make: ", st.next_dispatch, ")");
      run_next_position(lock);
    } else {
      sample_done_.wait(lock, [&] {
        const SampleStatus s = st.records[static_cast<size_t>(st.scan)].status;
        return st.stopping || (s != SampleStatus::waiting && s != SampleStatus::running);
      });
      if (st.stopping) return std::nullopt;
    }
  }

  const auto gathered = static_cast<int64_t>(st.gathered.size());
  if (gathered == 0 || (gathered < b && config_.drop_last)) {
    st.epoch_done = true;
    for (auto& [index, buffer] : st.position_batches) pool_->release(std::move(buffer));
    st.position_batches.clear();
    st.gathered.clear();
    st.destination = -1;
    return std::nullopt;
  }

  auto node = st.position_batches.extract(st.destination);
  Batch batch(pool_, std::move(node.mapped()), config_.sample_shape, config_.batch_size, config_.target_count);
  batch.epoch_ = st.epoch;
  batch.index_ = st.batch_index++;
  batch.items_.reserve(st.gathered.size());
  for (int64_t p : st.gathered) {
    const int64_t item = st.order[static_cast<size_t>(p)];
    batch.items_.push_back(item);
    batch.positions_.push_back(p);
    batch.seeds_.push_back(sample_seed(config_.seed, st.epoch, item));
    batch.names_.push_back(std::move(st.records[static_cast<size_t>(p)].name));
  }
  st.stats.items_loaded += gathered;
  ++st.stats.batches;
  st.gathered.clear();
  st.destination = -1;
  if (st.scan == item_count_) {
    // The epoch's last batch: nothing is left to make.
    for (auto& [index, buffer] : st.position_batches) pool_->release(std::move(buffer));
    st.position_batches.clear();
  }
  return batch;
}

}  // namespace sg::data
