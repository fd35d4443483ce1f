#pragma once
// AsyncLoader: whole batches of fixed-shape uint8 samples [B, H, W, C] made by worker threads
// from a user-supplied sample function, handed to one consumer (the trainer) in a fixed order.
//
// Threading model. `workers` threads (0: the consumer's own thread, inside next()) take the
// positions of the epoch's item order one by one, in increasing order, and call the sample
// function, which writes the sample straight into the slot of a batch buffer: position p goes to
// slot p % B of buffer p / B ("position batch" p / B). Everything about a sample that could vary
// with timing is fixed before it runs: the item (the epoch's permutation of 0..item_count-1, drawn
// from (seed, epoch)) and its seed (mixed from (seed, epoch, item) only).
//
// Ordering guarantee. The consumer decides which samples form batch k by scanning positions in
// increasing order, waiting for each one, and taking the first B that were not skipped (a sample
// function throws SkippableItemError for a bad item). A skip therefore shifts the later samples by
// one slot; the consumer moves them into place, one memcpy per sample, in its own thread (none
// while nothing was skipped in the epoch, and none while the skips so far are a multiple of B:
// about 1 ms per 7 MB mosaic, so bad slides cost a little consumer time for the rest of the
// epoch). So the batches, with their items, positions, seeds and bytes, are the same whatever the
// number of workers or their timing. Any other exception stops the epoch: next() throws an
// sg::Error naming the item when the scan reaches that position, i.e. deterministically.
//
// Memory bound. Workers only start positions whose position batch is below
// (consumer's scan position / B) + queue_depth, so the sample function never runs more than
// queue_depth batches ahead of the consumer. At most queue_depth + 1 buffers are in the loader
// (the window plus the batch being assembled) plus the batches the caller still holds; buffers
// come back to a pool when a Batch is destroyed, so a steady state allocates no host memory.
// With a CUDA target device the buffers are pinned (page-locked), so Batch::upload_async is a
// true asynchronous copy on the caller's copy stream; a buffer with an upload in flight is not
// written again before the copy has finished (its event is waited on first). When pinning fails
// (cudaMallocHost refused: page-locked memory is limited), the buffer and every later one are
// plain pageable memory instead, whose uploads finish before upload_async returns; the epoch goes
// on, and pinning_failure() says why for the run log.
//
// next(), start_epoch() and stop() are for one consumer thread; stats() and skipped_items() may
// be called from any thread.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/device.h"
#include "core/stream.h"
#include "core/tensor.h"

namespace sg::data {

// One sample's shape: [height, width, channels] uint8.
struct SampleShape {
  int height = 0;
  int width = 0;
  int channels = 3;
  size_t bytes() const { return static_cast<size_t>(height) * width * channels; }
  bool operator==(const SampleShape&) const = default;
};

// What the sample function is asked to make.
struct SampleRequest {
  int64_t item = 0;      // index into the dataset, 0..item_count-1
  int epoch = 0;
  int64_t position = 0;  // place in the epoch's item order
  uint64_t seed = 0;     // sample_seed(loader seed, epoch, item): for augmentation
};

// Where the sample function puts its results. `pixels` and `targets` point into the batch
// buffer; the function must write all of `pixels`.
struct SampleOutput {
  std::span<uint8_t> pixels;  // [H, W, C]
  std::span<float> targets;   // [target_count], zeroed before the call
  int32_t label = 0;
  std::string name;  // how errors and reports name the item (e.g. the slide's path); set it first
};

using SampleFunction = std::function<void(const SampleRequest&, SampleOutput&)>;

// A 64-bit seed that depends only on its arguments (splitmix64 finaliser rounds).
uint64_t sample_seed(uint64_t loader_seed, int epoch, int64_t item);
// The item order of an epoch: a permutation of 0..item_count-1 drawn from (seed, epoch) when
// shuffling, else 0, 1, 2, ...
std::vector<int64_t> epoch_order(int64_t item_count, uint64_t seed, int epoch, bool shuffle);

struct AsyncLoaderConfig {
  int batch_size = 8;
  SampleShape sample_shape;
  int target_count = 0;   // floats per sample in SampleOutput::targets / Batch::targets
  int workers = 2;        // threads; 0 runs the sample function in the consumer's thread
  // Batches the workers may run ahead of the consumer (>= 1). At most queue_depth * batch_size
  // samples are in progress, so keep that >= workers or some workers idle.
  int queue_depth = 2;
  bool shuffle = true;    // a fresh permutation every epoch; off: natural order
  bool drop_last = false; // drop a last batch with fewer than batch_size samples
  uint64_t seed = 0;
  Device device = Device::cpu();  // where batches will be uploaded: pinned buffers for CUDA
  // Used when no name was set by the sample function (it threw first): item -> name.
  std::function<std::string(int64_t)> item_name;
  // Tests only: called with the size before each pinned buffer is allocated; what it throws is
  // taken as cudaMallocHost's refusal.
  std::function<void(size_t bytes)> pinning_fault;
};

struct SkippedItem {
  int epoch = 0;
  int64_t item = 0;
  std::string name;
  std::string message;
};

struct LoaderStats {
  int64_t items_loaded = 0;    // samples delivered in batches
  int64_t items_skipped = 0;   // SkippableItemError
  int64_t batches = 0;
  int64_t samples_moved = 0;   // samples copied to close the gap left by a skip
  int64_t buffers_allocated = 0;
  double sample_seconds = 0;   // time spent in the sample function, summed over workers
  double wait_seconds = 0;     // time the consumer spent blocked in next()
  double consumer_seconds = 0; // from the first next() to the latest return from next()
  // The fraction of the consumer's time spent waiting for data.
  double wait_fraction() const { return consumer_seconds > 0 ? wait_seconds / consumer_seconds : 0.0; }
};

class BatchBufferPool;
struct BatchBuffer;

// A batch uploaded by Batch::upload_async: the tensors are valid on the device once `ready`
// has happened; call wait(compute_stream) before using them on another stream. The tensors
// belong to the copy stream; wait() also records the compute stream as a user, so the caching
// allocator does not hand their memory to the next upload before the compute stream's work on
// them (queued by the time the DeviceBatch is dropped) is done (core/allocator.h, "Streams").
struct DeviceBatch {
  Tensor pixels;   // u8 [B, H, W, C]
  Tensor labels;   // i32 [B]
  Tensor targets;  // f32 [B, target_count]; undefined when target_count is 0
  std::shared_ptr<Event> ready;
  void wait(const Stream& compute_stream) const {
    if (ready) ready->block(compute_stream);
    for (const Tensor* t : {&pixels, &labels, &targets}) t->record_stream(compute_stream);
  }
};

// One batch in host memory (pinned when the loader targets a CUDA device). Move-only; its
// buffer goes back to the loader's pool when it is destroyed.
class Batch {
 public:
  Batch(Batch&&) noexcept;
  Batch& operator=(Batch&&) noexcept;
  ~Batch();

  int size() const { return static_cast<int>(items_.size()); }  // <= batch_size (last batch)
  int epoch() const { return epoch_; }
  int64_t index() const { return index_; }  // k for the k-th batch of the epoch
  const SampleShape& sample_shape() const { return shape_; }
  int target_count() const { return target_count_; }
  bool pinned() const;  // page-locked host memory (the loader targets a CUDA device)

  std::span<const uint8_t> pixels() const;  // [size, H, W, C]
  std::span<const uint8_t> sample(int i) const;  // [H, W, C]
  std::span<const int32_t> labels() const;  // [size]
  std::span<const float> targets() const;   // [size, target_count]
  const std::vector<int64_t>& items() const { return items_; }
  const std::vector<int64_t>& positions() const { return positions_; }
  const std::vector<uint64_t>& seeds() const { return seeds_; }
  const std::vector<std::string>& names() const { return names_; }

  // u8 [size, H, W, C] on `device`, the copy finished when this returns (a host Tensor on the CPU).
  Tensor to_device(Device device, const Stream& stream = {}) const;
  // Queues the copies on `copy_stream` and returns at once (CUDA, pinned buffers); the result's
  // `ready` event is recorded after them. The buffer is not reused before the copy finishes.
  // On the CPU the copies are done before it returns and `ready` waits for nothing.
  DeviceBatch upload_async(Device device, const Stream& copy_stream);

 private:
  friend class AsyncLoader;
  Batch(std::shared_ptr<BatchBufferPool> pool, std::unique_ptr<BatchBuffer> buffer, SampleShape shape,
        int batch_size, int target_count);
  void release() noexcept;

  std::shared_ptr<BatchBufferPool> pool_;
  std::unique_ptr<BatchBuffer> buffer_;
  SampleShape shape_;
  int batch_size_ = 0;
  int target_count_ = 0;
  int epoch_ = 0;
  int64_t index_ = 0;
  std::vector<int64_t> items_;
  std::vector<int64_t> positions_;
  std::vector<uint64_t> seeds_;
  std::vector<std::string> names_;
};

class AsyncLoader {
 public:
  AsyncLoader(AsyncLoaderConfig config, int64_t item_count, SampleFunction sample);
  ~AsyncLoader();  // stop()
  AsyncLoader(const AsyncLoader&) = delete;
  AsyncLoader& operator=(const AsyncLoader&) = delete;

  // Abandons the current epoch (waiting for samples in progress) and starts `epoch`. next()
  // before any start_epoch starts epoch 0.
  void start_epoch(int epoch);
  // The next batch of the epoch; nullopt at its end (and after stop()). Throws sg::Error naming
  // the item when the sample function failed for an item of this batch (and again on every call
  // until start_epoch).
  std::optional<Batch> next();
  // Stops the workers (each finishes the sample in hand) and joins them. Idempotent.
  void stop();

  int epoch() const;
  const AsyncLoaderConfig& config() const { return config_; }
  int64_t item_count() const { return item_count_; }
  // Batches per epoch when nothing is skipped.
  int64_t batches_per_epoch() const;
  LoaderStats stats() const;
  std::vector<SkippedItem> skipped_items() const;  // in scan order, all epochs
  // Why batch buffers are pageable although the loader targets a CUDA device ("" while pinning
  // works, and for a CPU target). Any thread.
  std::string pinning_failure() const;

 private:
  struct State;
  void worker_loop();
  bool dispatchable_locked() const;
  void run_next_position(std::unique_lock<std::mutex>& lock);
  void start_epoch_locked(std::unique_lock<std::mutex>& lock, int epoch);

  AsyncLoaderConfig config_;
  int64_t item_count_;
  SampleFunction sample_;
  std::shared_ptr<BatchBufferPool> pool_;
  std::unique_ptr<State> state_;  // guarded by mutex_
  mutable std::mutex mutex_;
  std::condition_variable work_ready_;   // workers wait for dispatchable positions
  std::condition_variable sample_done_;  // the consumer and start_epoch wait for samples
  std::vector<std::thread> threads_;
};

}  // namespace sg::data
