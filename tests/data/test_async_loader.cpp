// AsyncLoader: every item once per epoch, the same batches (items, seeds, bytes) whatever the
// number of workers, per-epoch reshuffles, a bounded queue, clean shutdown, errors that name the
// item, skipped items, drop_last. The synthetic sample function writes a pattern of (item, seed)
// and sleeps a random little bit so that workers finish out of order.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "data/async_loader.h"
#include "data/errors.h"
#include "tests/support/testing.h"

namespace sg::data {
namespace {

constexpr SampleShape kShape{5, 3, 2};  // 30 bytes per sample

uint8_t pattern_byte(int64_t item, uint64_t seed, size_t i) {
  return static_cast<uint8_t>((seed >> (8 * (i % 8))) + static_cast<uint64_t>(item) * 31 + i * 7);
}

std::string slide_name(int64_t item) { return "slides/slide_" + std::to_string(item) + ".tiff"; }

// Sleeps 0..max_us microseconds, drawn from a per-thread generator seeded freshly: timings differ
// from run to run on purpose.
void random_sleep(int max_us) {
  thread_local std::mt19937 rng(std::random_device{}());
  std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, max_us)(rng)));
}

// Writes the pattern; label = item * 3; targets = {item, seed's low 16 bits}.
void pattern_sample(const SampleRequest& request, SampleOutput& out, int max_sleep_us = 300) {
  out.name = slide_name(request.item);
  random_sleep(max_sleep_us);
  for (size_t i = 0; i < out.pixels.size(); ++i) out.pixels[i] = pattern_byte(request.item, request.seed, i);
  out.label = static_cast<int32_t>(request.item * 3);
  if (out.targets.size() >= 2) {
    out.targets[0] = static_cast<float>(request.item);
    out.targets[1] = static_cast<float>(request.seed & 0xFFFF);
  }
}

AsyncLoaderConfig make_config(int batch_size, int workers, uint64_t seed = 1234) {
  AsyncLoaderConfig c;
  c.batch_size = batch_size;
  c.sample_shape = kShape;
  c.target_count = 2;
  c.workers = workers;
  c.queue_depth = 2;
  c.seed = seed;
  return c;
}

// Everything a batch holds, to compare runs.
struct BatchRecord {
  int epoch = 0;
  int64_t index = 0;
  std::vector<int64_t> items, positions;
  std::vector<uint64_t> seeds;
  std::vector<std::string> names;
  std::vector<int32_t> labels;
  std::vector<float> targets;
  std::vector<uint8_t> pixels;
  bool operator==(const BatchRecord&) const = default;
};

BatchRecord record_of(const Batch& b) {
  BatchRecord r;
  r.epoch = b.epoch();
  r.index = b.index();
  r.items = b.items();
  r.positions = b.positions();
  r.seeds = b.seeds();
  r.names = b.names();
  r.labels.assign(b.labels().begin(), b.labels().end());
  r.targets.assign(b.targets().begin(), b.targets().end());
  r.pixels.assign(b.pixels().begin(), b.pixels().end());
  return r;
}

std::vector<BatchRecord> run_epochs(AsyncLoader& loader, int epochs) {
  std::vector<BatchRecord> out;
  for (int e = 0; e < epochs; ++e) {
    loader.start_epoch(e);
    while (std::optional<Batch> b = loader.next()) out.push_back(record_of(*b));
  }
  return out;
}

// Checks a batch against what the pattern function must have written for its items.
void expect_batch_content(const BatchRecord& r, int epoch, uint64_t seed) {
  ASSERT_EQ(r.pixels.size(), r.items.size() * kShape.bytes());
  for (size_t s = 0; s < r.items.size(); ++s) {
    const int64_t item = r.items[s];
    EXPECT_EQ(r.seeds[s], sample_seed(seed, epoch, item));
    EXPECT_EQ(r.names[s], slide_name(item));
    EXPECT_EQ(r.labels[s], item * 3);
    EXPECT_EQ(r.targets[2 * s], static_cast<float>(item));
    EXPECT_EQ(r.targets[2 * s + 1], static_cast<float>(r.seeds[s] & 0xFFFF));
    for (size_t i = 0; i < kShape.bytes(); ++i)
      ASSERT_EQ(r.pixels[s * kShape.bytes() + i], pattern_byte(item, r.seeds[s], i))
          << "epoch " << epoch << " batch " << r.index << " sample " << s << " byte " << i;
  }
}

// What the batches must be: the epoch order without the bad items, cut into batches.
std::vector<std::vector<int64_t>> expected_batches(int64_t count, const AsyncLoaderConfig& c, int epoch,
                                                   const std::set<int64_t>& bad) {
  std::vector<int64_t> good;
  for (int64_t item : epoch_order(count, c.seed, epoch, c.shuffle))
    if (!bad.count(item)) good.push_back(item);
  std::vector<std::vector<int64_t>> batches;
  for (size_t i = 0; i < good.size(); i += static_cast<size_t>(c.batch_size)) {
    const size_t end = std::min(good.size(), i + static_cast<size_t>(c.batch_size));
    if (c.drop_last && end - i < static_cast<size_t>(c.batch_size)) break;
    batches.emplace_back(good.begin() + static_cast<std::ptrdiff_t>(i), good.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return batches;
}

TEST(AsyncLoader, EveryItemOncePerEpoch) {
  const int64_t count = 37;
  const AsyncLoaderConfig c = make_config(4, 3);
  AsyncLoader loader(c, count, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o); });
  for (int epoch = 0; epoch < 2; ++epoch) {
    loader.start_epoch(epoch);
    std::vector<int64_t> seen;
    std::vector<int> sizes;
    int64_t index = 0;
    while (std::optional<Batch> b = loader.next()) {
      EXPECT_EQ(b->epoch(), epoch);
      EXPECT_EQ(b->index(), index++);
      sizes.push_back(b->size());
      seen.insert(seen.end(), b->items().begin(), b->items().end());
      expect_batch_content(record_of(*b), epoch, c.seed);
      EXPECT_EQ(b->positions().front(), (b->index()) * 4);  // nothing skipped: positions are contiguous
    }
    EXPECT_FALSE(loader.next().has_value()) << "the epoch stays ended";
    std::vector<int64_t> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> all(count);
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(sorted, all) << "epoch " << epoch;
    EXPECT_EQ(seen, epoch_order(count, c.seed, epoch, true));
    ASSERT_EQ(sizes.size(), 10u);
    for (size_t i = 0; i < 9; ++i) EXPECT_EQ(sizes[i], 4);
    EXPECT_EQ(sizes[9], 1) << "37 = 9 * 4 + 1: a short last batch";
  }
  const LoaderStats s = loader.stats();
  EXPECT_EQ(s.items_loaded, 2 * count);
  EXPECT_EQ(s.batches, 20);
  EXPECT_EQ(s.items_skipped, 0);
  EXPECT_EQ(s.samples_moved, 0);
  EXPECT_GT(s.sample_seconds, 0.0);
  EXPECT_GE(s.consumer_seconds, s.wait_seconds);
}

TEST(AsyncLoader, SameBatchesWhateverTheWorkers) {
  const int64_t count = 45;
  std::vector<BatchRecord> reference;
  for (int workers : {0, 1, 2, 4}) {
    SCOPED_TRACE(::testing::Message() << "workers " << workers);
    AsyncLoaderConfig c = make_config(4, workers);
    c.queue_depth = 3;
    AsyncLoader loader(c, count, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o); });
    const std::vector<BatchRecord> batches = run_epochs(loader, 3);
    if (reference.empty()) {
      reference = batches;
      for (const BatchRecord& r : batches) expect_batch_content(r, r.epoch, c.seed);
      ASSERT_EQ(reference.size(), 3u * 12u);
    } else {
      ASSERT_EQ(batches.size(), reference.size());
      for (size_t i = 0; i < batches.size(); ++i) EXPECT_TRUE(batches[i] == reference[i]) << "batch " << i;
    }
  }
}

TEST(AsyncLoader, ReshufflesEveryEpochReproducibly) {
  const int64_t count = 64;
  const AsyncLoaderConfig c = make_config(8, 2, 99);
  const auto items_of = [](const std::vector<BatchRecord>& batches, int epoch) {
    std::vector<int64_t> items;
    for (const BatchRecord& b : batches)
      if (b.epoch == epoch) items.insert(items.end(), b.items.begin(), b.items.end());
    return items;
  };
  AsyncLoader first(c, count, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o, 50); });
  const std::vector<BatchRecord> a = run_epochs(first, 3);
  EXPECT_NE(items_of(a, 0), items_of(a, 1));
  EXPECT_NE(items_of(a, 1), items_of(a, 2));
  std::vector<int64_t> natural(count);
  std::iota(natural.begin(), natural.end(), 0);
  EXPECT_NE(items_of(a, 0), natural);

  // The same seed gives the same epochs, also when an epoch is started directly.
  AsyncLoader second(c, count, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o, 50); });
  EXPECT_EQ(run_epochs(second, 3), a);
  AsyncLoader direct(c, count, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o, 50); });
  direct.start_epoch(2);
  std::vector<BatchRecord> epoch2;
  while (std::optional<Batch> b = direct.next()) epoch2.push_back(record_of(*b));
  EXPECT_EQ(items_of(epoch2, 2), items_of(a, 2));

  // Another seed, another order; no shuffle, the natural order every epoch.
  AsyncLoader other(make_config(8, 2, 100), count, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o, 50); });
  EXPECT_NE(items_of(run_epochs(other, 1), 0), items_of(a, 0));
  AsyncLoaderConfig plain = c;
  plain.shuffle = false;
  AsyncLoader ordered(plain, count, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o, 50); });
  const std::vector<BatchRecord> unshuffled = run_epochs(ordered, 2);
  EXPECT_EQ(items_of(unshuffled, 0), natural);
  EXPECT_EQ(items_of(unshuffled, 1), natural);
}

TEST(AsyncLoader, SampleSeedsDependOnlyOnSeedEpochAndItem) {
  EXPECT_EQ(sample_seed(1, 2, 3), sample_seed(1, 2, 3));
  std::set<uint64_t> seeds;
  for (uint64_t s : {0u, 1u})
    for (int e : {0, 1, 2})
      for (int64_t item : {0, 1, 2, 1000}) seeds.insert(sample_seed(s, e, item));
  EXPECT_EQ(seeds.size(), 2u * 3u * 4u) << "every (seed, epoch, item) gets its own seed";
}

TEST(AsyncLoader, QueueIsBounded) {
  // A slow consumer: the workers fill the queue, but never start a sample more than queue_depth
  // batches past the batch the consumer is asking for.
  const int64_t count = 120;
  AsyncLoaderConfig c = make_config(4, 4);
  c.queue_depth = 3;
  std::atomic<int64_t> requested{0};  // next() calls started
  std::atomic<int64_t> max_ahead{-100};
  AsyncLoader loader(c, count, [&](const SampleRequest& r, SampleOutput& o) {
    const int64_t ahead = r.position / c.batch_size - requested.load();  // batch requested[-1] is the one wanted
    int64_t seen = max_ahead.load();
    while (ahead > seen && !max_ahead.compare_exchange_weak(seen, ahead)) {
    }
    pattern_sample(r, o, 20);
  });
  for (int epoch = 0; epoch < 2; ++epoch) {
    loader.start_epoch(epoch);
    requested = 0;
    for (;;) {
      ++requested;
      std::optional<Batch> b = loader.next();
      if (!b) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // "compute"
    }
  }
  // While the consumer holds batch k (requested = k + 1), batches k+1 .. k+queue_depth may be made.
  EXPECT_LE(max_ahead.load(), c.queue_depth - 1);
  EXPECT_EQ(max_ahead.load(), c.queue_depth - 1) << "the workers did fill the queue while the consumer was slow";
  const LoaderStats s = loader.stats();
  EXPECT_LE(s.buffers_allocated, c.queue_depth + 1) << "the window + the batch the consumer holds";
  const int64_t allocated_after_two_epochs = s.buffers_allocated;
  run_epochs(loader, 1);
  EXPECT_EQ(loader.stats().buffers_allocated, allocated_after_two_epochs) << "buffers are recycled";
}

TEST(AsyncLoader, StopsPromptlyMidEpoch) {
  const int64_t count = 10000;
  const auto slow = [](const SampleRequest& r, SampleOutput& o) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    pattern_sample(r, o, 0);
  };
  const auto started = std::chrono::steady_clock::now();
  {
    AsyncLoader loader(make_config(4, 4), count, slow);
    loader.start_epoch(0);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(loader.next().has_value());
    // The consumer stops early: the destructor stops and joins the workers.
  }
  std::optional<Batch> held;  // a batch that outlives its loader
  {
    AsyncLoader loader(make_config(4, 2), count, slow);
    ASSERT_TRUE(loader.next().has_value());  // next() starts epoch 0 by itself
    held = loader.next();
    loader.stop();
    EXPECT_FALSE(loader.next().has_value()) << "after stop(), next() ends";
    loader.stop();  // idempotent
  }
  ASSERT_TRUE(held.has_value());
  expect_batch_content(record_of(*held), 0, 1234);
  held.reset();
  { AsyncLoader never_used(make_config(4, 3), count, slow); }
  {
    AsyncLoader restarted(make_config(4, 3), count, slow);
    restarted.start_epoch(0);
    ASSERT_TRUE(restarted.next().has_value());
    restarted.start_epoch(1);  // abandons epoch 0 in the middle
    std::optional<Batch> b = restarted.next();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->epoch(), 1);
    EXPECT_EQ(b->index(), 0);
    expect_batch_content(record_of(*b), 1, 1234);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_LT(seconds, 2.0) << "10000 items of 5 ms: stopping must not wait for the epoch";
}

TEST(AsyncLoader, WorkerErrorSurfacesWithTheItemName) {
  for (int workers : {0, 1, 3}) {
    SCOPED_TRACE(::testing::Message() << "workers " << workers);
    AsyncLoaderConfig c = make_config(4, workers);
    c.shuffle = false;
    AsyncLoader loader(c, 40, [](const SampleRequest& r, SampleOutput& o) {
      pattern_sample(r, o, 100);
      if (r.item == 13 && r.epoch == 0) throw std::runtime_error("JPEG decoder: premature end of data");
    });
    int batches = 0;
    std::string message;
    try {
      while (loader.next()) ++batches;
    } catch (const Error& e) {
      message = e.what();
    }
    EXPECT_EQ(batches, 3) << "batches 0-2 come whole; batch 3 holds item 13";
    EXPECT_NE(message.find(slide_name(13)), std::string::npos) << message;
    EXPECT_NE(message.find("JPEG decoder: premature end of data"), std::string::npos) << message;
    EXPECT_THROW(loader.next(), Error) << "the failed epoch keeps failing";
    // A new epoch starts clean.
    loader.start_epoch(1);
    int after = 0;
    while (loader.next()) ++after;
    EXPECT_EQ(after, 10);
  }
}

TEST(AsyncLoader, WorkerErrorDoesNotHangShutdown) {
  // Slow samples, an early failure: the error comes out quickly and the destructor does not wait
  // for the rest of the epoch. Also every item failing at once, with all workers busy.
  const auto started = std::chrono::steady_clock::now();
  for (int64_t failing : {int64_t{2}, int64_t{-1}}) {
    AsyncLoaderConfig c = make_config(4, 4);
    c.shuffle = false;
    AsyncLoader loader(c, 5000, [failing](const SampleRequest& r, SampleOutput& o) {
      o.name = slide_name(r.item);
      if (failing < 0 || r.item == failing) throw std::runtime_error("boom");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      pattern_sample(r, o, 0);
    });
    EXPECT_THROW(loader.next(), Error);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_LT(seconds, 2.0);
}

TEST(AsyncLoader, ErrorBeforeTheNameIsSetUsesTheItemNameFunction) {
  AsyncLoaderConfig c = make_config(2, 2);
  c.item_name = [](int64_t item) { return "train_images/" + std::to_string(item) + ".tiff"; };
  AsyncLoader loader(c, 6, [](const SampleRequest& r, SampleOutput& o) {
    if (r.item == 4) throw Error("cannot open file");
    pattern_sample(r, o, 10);
  });
  try {
    while (loader.next()) {
    }
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train_images/4.tiff"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cannot open file"), std::string::npos) << e.what();
  }
}

TEST(AsyncLoader, SkipsBadItemsTheSameWayWhateverTheWorkers) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  const int64_t count = 53;
  // Fixed bad items (a run of three crosses a batch boundary) plus random ones.
  std::set<int64_t> bad = {3, 10, 11, 12, 25, 52};
  for (int i = 0; i < 8; ++i) bad.insert(rng.integer(0, count - 1));
  for (bool drop_last : {false, true})
    for (bool shuffle : {true, false}) {
      std::vector<BatchRecord> reference;
      for (int workers : {0, 1, 2, 4}) {
        SCOPED_TRACE(::testing::Message() << "workers " << workers << " drop_last " << drop_last << " shuffle "
                                          << shuffle);
        AsyncLoaderConfig c = make_config(4, workers);
        c.drop_last = drop_last;
        c.shuffle = shuffle;
        AsyncLoader loader(c, count, [&](const SampleRequest& r, SampleOutput& o) {
          pattern_sample(r, o, 200);
          if (bad.count(r.item)) throw SkippableItemError("not a slide: bad magic");
        });
        const std::vector<BatchRecord> batches = run_epochs(loader, 2);
        // The composition: the epoch order without the bad items.
        std::vector<std::vector<int64_t>> expected = expected_batches(count, c, 0, bad);
        const std::vector<std::vector<int64_t>> expected1 = expected_batches(count, c, 1, bad);
        expected.insert(expected.end(), expected1.begin(), expected1.end());
        ASSERT_EQ(batches.size(), expected.size());
        for (size_t i = 0; i < batches.size(); ++i) {
          EXPECT_EQ(batches[i].items, expected[i]) << "batch " << i;
          expect_batch_content(batches[i], batches[i].epoch, c.seed);  // moved samples kept their bytes
        }
        const LoaderStats s = loader.stats();
        EXPECT_EQ(s.items_skipped, 2 * static_cast<int64_t>(bad.size()));
        const std::vector<SkippedItem> skipped = loader.skipped_items();
        ASSERT_EQ(skipped.size(), 2 * bad.size());
        std::vector<int64_t> skipped_epoch0;
        for (const SkippedItem& item : skipped) {
          EXPECT_EQ(item.name, slide_name(item.item));
          EXPECT_NE(item.message.find("not a slide: bad magic"), std::string::npos);
          if (item.epoch == 0) skipped_epoch0.push_back(item.item);
        }
        std::vector<int64_t> bad_in_order;
        for (int64_t item : epoch_order(count, c.seed, 0, shuffle))
          if (bad.count(item)) bad_in_order.push_back(item);
        EXPECT_EQ(skipped_epoch0, bad_in_order) << "reported in the epoch's order";
        EXPECT_LE(s.buffers_allocated, c.queue_depth + 1) << "skips do not widen the window";
        if (reference.empty()) {
          reference = batches;
          EXPECT_GT(s.samples_moved, 0) << "skips in the middle move later samples into place";
        } else {
          EXPECT_TRUE(batches == reference);
        }
      }
    }
}

TEST(AsyncLoader, AllItemsBadEndsTheEpochEmpty) {
  AsyncLoader loader(make_config(4, 2), 9, [](const SampleRequest& r, SampleOutput& o) {
    o.name = slide_name(r.item);
    throw SkippableItemError("all white");
  });
  EXPECT_FALSE(loader.next().has_value());
  EXPECT_EQ(loader.stats().items_skipped, 9);
}

TEST(AsyncLoader, HeldBatchesKeepTheirBytes) {
  // The caller keeps every batch of two epochs: the pool grows instead of reusing a held buffer.
  AsyncLoaderConfig c = make_config(3, 3);
  AsyncLoader loader(c, 31, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o, 100); });
  std::vector<Batch> held;
  for (int epoch = 0; epoch < 2; ++epoch) {
    loader.start_epoch(epoch);
    while (std::optional<Batch> b = loader.next()) held.push_back(std::move(*b));
  }
  ASSERT_EQ(held.size(), 22u);
  for (const Batch& b : held) expect_batch_content(record_of(b), b.epoch(), c.seed);
  EXPECT_GE(loader.stats().buffers_allocated, 22);
  // Given back, they are reused: a third epoch allocates nothing.
  const int64_t allocated = loader.stats().buffers_allocated;
  held.clear();
  run_epochs(loader, 1);
  EXPECT_EQ(loader.stats().buffers_allocated, allocated);
}

TEST(AsyncLoader, DropLast) {
  for (int workers : {0, 2}) {
    AsyncLoaderConfig c = make_config(4, workers);
    c.drop_last = true;
    AsyncLoader dropping(c, 10, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o, 50); });
    std::vector<int> sizes;
    while (std::optional<Batch> b = dropping.next()) sizes.push_back(b->size());
    EXPECT_EQ(sizes, (std::vector<int>{4, 4}));
    EXPECT_EQ(dropping.batches_per_epoch(), 2);

    c.drop_last = false;
    AsyncLoader keeping(c, 10, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o, 50); });
    sizes.clear();
    while (std::optional<Batch> b = keeping.next()) sizes.push_back(b->size());
    EXPECT_EQ(sizes, (std::vector<int>{4, 4, 2}));
    EXPECT_EQ(keeping.batches_per_epoch(), 3);
  }
}

TEST(AsyncLoader, NoWorkersRunsInTheCallersThread) {
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> elsewhere{0}, calls{0};
  AsyncLoader loader(make_config(3, 0), 10, [&](const SampleRequest& r, SampleOutput& o) {
    if (std::this_thread::get_id() != caller) ++elsewhere;
    ++calls;
    pattern_sample(r, o, 0);
  });
  EXPECT_EQ(calls.load(), 0) << "nothing runs before next()";
  ASSERT_TRUE(loader.next().has_value());
  EXPECT_EQ(calls.load(), 3) << "exactly one batch made on demand";
  while (loader.next()) {
  }
  EXPECT_EQ(calls.load(), 10);
  EXPECT_EQ(elsewhere.load(), 0);
}

TEST(AsyncLoader, BatchToHostTensors) {
  AsyncLoader loader(make_config(4, 2), 6, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o, 0); });
  std::optional<Batch> b = loader.next();
  ASSERT_TRUE(b.has_value());
  EXPECT_FALSE(b->pinned()) << "a CPU target needs no page-locked memory";
  const Tensor t = b->to_device(Device::cpu());
  EXPECT_EQ(t.shape(), (Shape{4, kShape.height, kShape.width, kShape.channels}));
  EXPECT_EQ(t.dtype(), DType::u8);
  EXPECT_TRUE(std::equal(b->pixels().begin(), b->pixels().end(), t.data_as<uint8_t>()));

  Stream copy_stream;
  DeviceBatch d = b->upload_async(Device::cpu(), copy_stream);
  d.wait(Stream{});
  EXPECT_EQ(d.pixels.shape(), t.shape());
  EXPECT_TRUE(std::equal(b->pixels().begin(), b->pixels().end(), d.pixels.data_as<uint8_t>()));
  EXPECT_EQ(d.labels.shape(), (Shape{4}));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(d.labels.data_as<int32_t>()[i], b->items()[static_cast<size_t>(i)] * 3);
  EXPECT_EQ(d.targets.shape(), (Shape{4, 2}));
  EXPECT_EQ(d.targets.data_as<float>()[2], static_cast<float>(b->items()[1]));
}

TEST(AsyncLoader, BatchUploadsToTheGpu) {
  SG_REQUIRE_CUDA();
  AsyncLoaderConfig c = make_config(4, 2);
  c.device = Device::cuda(0);
  AsyncLoader loader(c, 12, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o, 0); });
  const Stream copy_stream = Stream::create(c.device);
  const Stream compute_stream = Stream::create(c.device);
  while (std::optional<Batch> b = loader.next()) {
    EXPECT_TRUE(b->pinned());
    DeviceBatch d = b->upload_async(c.device, copy_stream);
    d.wait(compute_stream);
    compute_stream.synchronize(c.device);
    const Tensor back = d.pixels.to(Device::cpu());
    EXPECT_TRUE(std::equal(b->pixels().begin(), b->pixels().end(), back.data_as<uint8_t>()));
    const Tensor sync = b->to_device(c.device, compute_stream).to(Device::cpu());
    EXPECT_TRUE(std::equal(b->pixels().begin(), b->pixels().end(), sync.data_as<uint8_t>()));
  }
}

// Every batch is uploaded asynchronously and given back to the pool at once, before its copy has
// run: the loader reuses the pooled buffer for a later batch while the copy out of it may still be
// queued. Nothing may be written into the buffer before that copy is done (the worker waits for
// the buffer's last upload first), so every uploaded batch holds its own pixels, labels and
// targets. On a device that runs queued work lazily (the emulated one), zeroing a reused buffer's
// targets before that wait makes the earlier batch's copy read zeros.
TEST(AsyncLoader, AsyncUploadsKeepEveryBatchsTargets) {
  SG_REQUIRE_CUDA();
  struct Expected {
    std::vector<uint8_t> pixels;
    std::vector<int32_t> labels;
    std::vector<float> targets;
  };
  for (int workers : {0, 2}) {  // 0: the reuse happens in next(), in a fixed order
    SCOPED_TRACE(::testing::Message() << workers << " workers");
    AsyncLoaderConfig c = make_config(4, workers);
    c.queue_depth = 1;  // few buffers, so each one is reused soon
    c.device = Device::cuda(0);
    AsyncLoader loader(c, 24, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o, 0); });
    const Stream copy_stream = Stream::create(c.device);
    std::vector<DeviceBatch> uploaded;
    std::vector<Expected> expected;
    while (std::optional<Batch> b = loader.next()) {
      ASSERT_TRUE(b->pinned());
      expected.push_back({{b->pixels().begin(), b->pixels().end()},
                          {b->labels().begin(), b->labels().end()},
                          {b->targets().begin(), b->targets().end()}});
      uploaded.push_back(b->upload_async(c.device, copy_stream));
      b.reset();  // back to the pool with its copy possibly still queued
    }
    ASSERT_EQ(uploaded.size(), 6u);
    EXPECT_GT(loader.stats().batches, loader.stats().buffers_allocated) << "buffers were reused";
    copy_stream.synchronize(c.device);
    for (size_t k = 0; k < uploaded.size(); ++k) {
      SCOPED_TRACE(::testing::Message() << "batch " << k);
      const Tensor pixels = uploaded[k].pixels.to(Device::cpu(), copy_stream);
      const Tensor labels = uploaded[k].labels.to(Device::cpu(), copy_stream);
      const Tensor targets = uploaded[k].targets.to(Device::cpu(), copy_stream);
      EXPECT_TRUE(std::equal(expected[k].pixels.begin(), expected[k].pixels.end(), pixels.data_as<uint8_t>()));
      EXPECT_TRUE(std::equal(expected[k].labels.begin(), expected[k].labels.end(), labels.data_as<int32_t>()));
      const std::vector<float> got(targets.data_as<float>(), targets.data_as<float>() + targets.numel());
      EXPECT_EQ(got, expected[k].targets);
    }
  }
}

TEST(AsyncLoader, TheNextUploadDoesNotOverwriteABatchTheComputeStreamStillReads) {
  SG_REQUIRE_CUDA();
  AsyncLoaderConfig c = make_config(4, 1);
  c.sample_shape = {64, 48, 3};  // 36 KiB batches: a block size no other tensor here has
  c.device = Device::cuda(0);
  AsyncLoader loader(c, 8, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o, 0); });
  const Stream copy_stream = Stream::create(c.device);
  const Stream compute_stream = Stream::create(c.device);
  std::optional<Batch> first = loader.next(), second = loader.next();
  ASSERT_TRUE(first && second);
  allocator_for(c.device).release_cached();
  Tensor read;  // what the compute stream read of the first batch
  const void* block = nullptr;
  {
    DeviceBatch d = first->upload_async(c.device, copy_stream);
    d.wait(compute_stream);
    read = Tensor::empty(d.pixels.shape(), DType::u8, c.device, compute_stream, "read");
    read.copy_from(d.pixels, compute_stream);  // queued on the compute stream
    block = d.pixels.data();
  }  // dropped as soon as the compute stream's work is queued, as a training loop does
  DeviceBatch next = second->upload_async(c.device, copy_stream);
  ASSERT_EQ(next.pixels.data(), block) << "the freed block was not reused: this test would show nothing";
  // A device that runs the copy stream first would let the second batch overwrite the first
  // before the compute stream read it.
  copy_stream.synchronize(c.device);
  compute_stream.synchronize(c.device);
  const Tensor back = read.to(Device::cpu());
  EXPECT_TRUE(std::equal(first->pixels().begin(), first->pixels().end(), back.data_as<uint8_t>()));
}

TEST(AsyncLoader, ACpuTargetNeverAsksForPinnedMemory) {
  AsyncLoaderConfig c = make_config(4, 2);
  std::atomic<int> asked{0};
  c.pinning_fault = [&](size_t) { ++asked; };
  AsyncLoader loader(c, 8, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o, 0); });
  while (std::optional<Batch> b = loader.next()) EXPECT_FALSE(b->pinned());
  EXPECT_EQ(asked.load(), 0);
  EXPECT_EQ(loader.pinning_failure(), "");
}

TEST(AsyncLoader, PinningFailureFallsBackToPageableMemory) {
  SG_REQUIRE_CUDA();
  AsyncLoaderConfig c = make_config(4, 2);
  c.device = Device::cuda(0);
  std::atomic<int> faults{0};
  c.pinning_fault = [&](size_t) {
    ++faults;
    throw OutOfMemoryError("cudaMallocHost refused it (test)");
  };
  AsyncLoader loader(c, 12, [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o, 0); });
  EXPECT_EQ(loader.pinning_failure(), "");
  const Stream copy_stream = Stream::create(c.device);
  int batches = 0;
  while (std::optional<Batch> b = loader.next()) {
    EXPECT_FALSE(b->pinned());
    DeviceBatch d = b->upload_async(c.device, copy_stream);  // pageable: done when it returns
    const Tensor back = d.pixels.to(Device::cpu());
    EXPECT_TRUE(std::equal(b->pixels().begin(), b->pixels().end(), back.data_as<uint8_t>()));
    ++batches;
  }
  EXPECT_EQ(batches, 3) << "the epoch goes on without pinned memory";
  EXPECT_EQ(faults.load(), 1) << "pinning is not tried again after a refusal";
  EXPECT_NE(loader.pinning_failure().find("cudaMallocHost refused it (test)"), std::string::npos)
      << loader.pinning_failure();
}

TEST(AsyncLoader, RejectsBadConfigs) {
  const auto fn = [](const SampleRequest& r, SampleOutput& o) { pattern_sample(r, o, 0); };
  AsyncLoaderConfig c = make_config(0, 1);
  EXPECT_THROW(AsyncLoader(c, 10, fn), Error);
  c = make_config(2, 1);
  c.queue_depth = 0;
  EXPECT_THROW(AsyncLoader(c, 10, fn), Error);
  c = make_config(2, 1);
  c.sample_shape = {0, 3, 3};
  EXPECT_THROW(AsyncLoader(c, 10, fn), Error);
  EXPECT_THROW(AsyncLoader(make_config(2, 1), 10, SampleFunction{}), Error);
}

}  // namespace
}  // namespace sg::data
