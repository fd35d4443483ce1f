// The caching allocator's stream rules (core/allocator.h, "Streams"): the bookkeeping on a fake
// device with counted events (runs everywhere), then on CUDA: a block freed while a kernel on one
// stream still reads it is not overwritten by another stream's work first. On a GPU that runs
// queued work late (the emulated device, issue 13), the old allocator fails these with wrong data.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <vector>

#include "core/allocator.h"
#include "core/error.h"
#include "core/stream.h"
#include "core/tensor.h"
#include "kernels/tensor_ops.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

// Opaque handles for the fake device (never dereferenced).
cuda::StreamHandle fake_stream(uintptr_t n) { return reinterpret_cast<cuda::StreamHandle>(n * 16); }

// An allocator with streams whose events only count: what was recorded where, who waited on what.
class FakeStreamAllocator final : public Allocator {
 public:
  struct Call {
    cuda::StreamHandle stream;
    cuda::EventHandle event;
    bool operator==(const Call&) const = default;
  };

  FakeStreamAllocator() : Allocator(Device::cuda(0)) {}
  ~FakeStreamAllocator() override {
    release_cached();
    destroy_pooled_events();
    for (void* p : held_) std::free(p);  // blocks a test still held at its end (LeakSanitizer)
  }

  void drop_pool() { destroy_pooled_events(); }

  std::vector<Call> records, waits;
  std::set<cuda::StreamHandle> gone;  // streams that no longer exist
  bool fail_record = false, fail_wait = false;
  int events_created = 0, events_destroyed = 0, system_allocations = 0, system_frees = 0;

 protected:
  void* system_allocate(size_t bytes) override {
    ++system_allocations;
    void* p = std::aligned_alloc(256, bytes);
    held_.insert(p);
    return p;
  }
  void system_free(void* ptr, size_t) noexcept override {
    ++system_frees;
    held_.erase(ptr);
    std::free(ptr);
  }
  std::set<void*> held_;
  bool caches() const override { return true; }
  bool tracks_streams() const override { return true; }
  cuda::EventHandle create_event() override {
    ++events_created;
    return reinterpret_cast<cuda::EventHandle>(uintptr_t(0x1000 + 16 * events_created));
  }
  void destroy_event(cuda::EventHandle) noexcept override { ++events_destroyed; }
  bool record_event(cuda::EventHandle event, cuda::StreamHandle stream) override {
    if (fail_record) throw Error("cudaEventRecord failed (test)");
    if (gone.count(stream)) return false;
    records.push_back({stream, event});
    return true;
  }
  void wait_event(cuda::StreamHandle stream, cuda::EventHandle event) override {
    if (fail_wait) throw Error("cudaStreamWaitEvent failed (test)");
    waits.push_back({stream, event});
  }
};

const cuda::StreamHandle kCopy = fake_stream(1), kCompute = fake_stream(2), kOther = fake_stream(3);
constexpr size_t kBytes = 4096;

TEST(AllocatorStreams, OneStreamRecordsAndWaitsForNothing) {
  FakeStreamAllocator a;
  void* p = a.allocate(kBytes, "t", kCompute);
  a.deallocate(p, kBytes, kCompute);
  EXPECT_EQ(a.allocate(kBytes, "t", kCompute), p);  // the cached block, no wait: stream order
  a.deallocate(p, kBytes, kCompute);
  EXPECT_TRUE(a.records.empty());
  EXPECT_TRUE(a.waits.empty());
  EXPECT_EQ(a.events_created, 0);
  EXPECT_EQ(a.stats().stream_waits, 0u);
  EXPECT_EQ(a.stats().cache_hits, 1u);
}

TEST(AllocatorStreams, ASecondStreamWaitsForTheFirstBeforeReusingItsBlock) {
  FakeStreamAllocator a;
  void* p = a.allocate(kBytes, "t", kCompute);
  a.deallocate(p, kBytes, kCompute);  // one stream known so far: no event at the free
  EXPECT_TRUE(a.records.empty());
  EXPECT_EQ(a.allocate(kBytes, "t", kCopy), p);
  // Recorded on the block's stream when the second stream took it, and waited on by that one.
  ASSERT_EQ(a.records.size(), 1u);
  EXPECT_EQ(a.records[0].stream, kCompute);
  ASSERT_EQ(a.waits.size(), 1u);
  EXPECT_EQ(a.waits[0], (FakeStreamAllocator::Call{kCopy, a.records[0].event}));
  EXPECT_EQ(a.stats().stream_waits, 1u);
}

TEST(AllocatorStreams, WithTwoStreamsEveryFreeRecordsAnEventOnlyOtherStreamsWaitFor) {
  FakeStreamAllocator a;
  void* keep = a.allocate(kBytes, "t", kCopy);
  void* p = a.allocate(kBytes, "t", kCompute);  // a second stream: events from now on
  a.deallocate(p, kBytes, kCompute);
  ASSERT_EQ(a.records.size(), 1u);
  EXPECT_EQ(a.records[0].stream, kCompute);
  const cuda::EventHandle event = a.records[0].event;

  EXPECT_EQ(a.allocate(kBytes, "t", kCompute), p);  // same stream: no wait
  EXPECT_TRUE(a.waits.empty());
  a.deallocate(p, kBytes, kCompute);
  ASSERT_EQ(a.records.size(), 2u);
  EXPECT_EQ(a.records[1].event, event) << "the event went back to the pool and was recorded again";
  EXPECT_EQ(a.events_created, 1);

  EXPECT_EQ(a.allocate(kBytes, "t", kCopy), p);  // another stream: waits for the free's event
  ASSERT_EQ(a.waits.size(), 1u);
  EXPECT_EQ(a.waits[0], (FakeStreamAllocator::Call{kCopy, event}));
  EXPECT_EQ(a.stats().stream_waits, 1u);
  a.deallocate(p, kBytes, kCopy);
  a.deallocate(keep, kBytes, kCopy);
}

TEST(AllocatorStreams, RecordedStreamsAreWaitedForEvenOnTheBlocksOwnStream) {
  FakeStreamAllocator a;
  // The loader's pattern: allocated for the copy stream, read by kernels on the compute stream.
  void* p = a.allocate(kBytes, "upload", kCopy);
  const std::vector<cuda::StreamHandle> used_on{kCompute};
  a.deallocate(p, kBytes, kCopy, used_on);
  ASSERT_EQ(a.records.size(), 2u);
  EXPECT_EQ(a.records[0].stream, kCopy);
  EXPECT_EQ(a.records[1].stream, kCompute);

  // The next upload on the copy stream gets the block only after the compute stream's event.
  EXPECT_EQ(a.allocate(kBytes, "upload", kCopy), p);
  ASSERT_EQ(a.waits.size(), 1u);
  EXPECT_EQ(a.waits[0], (FakeStreamAllocator::Call{kCopy, a.records[1].event}));

  // On the compute stream it would wait for the copy stream's instead.
  a.deallocate(p, kBytes, kCopy, used_on);
  a.waits.clear();
  EXPECT_EQ(a.allocate(kBytes, "t", kCompute), p);
  ASSERT_EQ(a.waits.size(), 1u);
  EXPECT_EQ(a.waits[0].stream, kCompute);
  EXPECT_EQ(a.waits[0].event, a.records[2].event);
  EXPECT_EQ(a.records[2].stream, kCopy);
}

TEST(AllocatorStreams, PrefersABlockOfTheAskingStream) {
  FakeStreamAllocator a;
  void* on_copy = a.allocate(kBytes, "t", kCopy);
  void* on_compute = a.allocate(kBytes, "t", kCompute);
  a.deallocate(on_copy, kBytes, kCopy);
  a.deallocate(on_compute, kBytes, kCompute);
  EXPECT_EQ(a.allocate(kBytes, "t", kCompute), on_compute);
  EXPECT_EQ(a.allocate(kBytes, "t", kCopy), on_copy);
  EXPECT_TRUE(a.waits.empty());
  EXPECT_EQ(a.stats().stream_waits, 0u);
}

TEST(AllocatorStreams, AStreamThatIsGoneNeedsNoEvent) {
  FakeStreamAllocator a;
  void* keep = a.allocate(kBytes, "t", kCompute);
  void* p = a.allocate(kBytes, "t", kOther);
  a.gone.insert(kOther);  // destroyed (a Stream synchronises first): its work is done
  a.deallocate(p, kBytes, kOther);
  EXPECT_TRUE(a.records.empty());
  EXPECT_EQ(a.allocate(kBytes, "t", kCompute), p);
  EXPECT_TRUE(a.waits.empty());
  a.deallocate(p, kBytes, kCompute);
  a.deallocate(keep, kBytes, kCompute);
}

TEST(AllocatorStreams, ABlockWhoseEventCannotBeRecordedGoesBackToTheSystem) {
  FakeStreamAllocator a;
  void* keep = a.allocate(kBytes, "t", kCopy);
  void* p = a.allocate(kBytes, "t", kCompute);
  const size_t reserved = a.stats().reserved;
  a.fail_record = true;
  a.deallocate(p, kBytes, kCompute);  // noexcept: falls back to freeing it
  EXPECT_EQ(a.system_frees, 1);
  EXPECT_EQ(a.stats().reserved, reserved - Allocator::round_size(kBytes));
  a.fail_record = false;
  const int allocations = a.system_allocations;
  void* q = a.allocate(kBytes, "t", kCopy);  // nothing cached: a fresh block
  EXPECT_EQ(a.system_allocations, allocations + 1);
  a.deallocate(q, kBytes, kCopy);
  a.deallocate(keep, kBytes, kCopy);
}

TEST(AllocatorStreams, AFailedWaitThrowsAndKeepsTheBlockCached) {
  FakeStreamAllocator a;
  void* keep = a.allocate(kBytes, "t", kCopy);
  void* p = a.allocate(kBytes, "t", kCompute);
  a.deallocate(p, kBytes, kCompute);
  a.fail_wait = true;
  EXPECT_THROW(a.allocate(kBytes, "t", kCopy), Error);
  EXPECT_EQ(a.stats().in_use, Allocator::round_size(kBytes));  // only `keep`
  a.fail_wait = false;
  EXPECT_EQ(a.allocate(kBytes, "t", kCopy), p);  // still cached, with its event
  ASSERT_EQ(a.waits.size(), 1u);
  EXPECT_EQ(a.waits[0].event, a.records[0].event);
  a.deallocate(p, kBytes, kCopy);
  a.deallocate(keep, kBytes, kCopy);
}

TEST(AllocatorStreams, EventsArePooledAndAllDestroyed) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  FakeStreamAllocator a;
  const cuda::StreamHandle streams[] = {kCopy, kCompute, kOther};
  std::vector<std::pair<void*, cuda::StreamHandle>> live;
  for (int i = 0; i < 400; ++i) {
    if (live.empty() || (live.size() < 6 && rng.integer(0, 1) == 0)) {
      const cuda::StreamHandle s = streams[rng.integer(0, 2)];
      live.push_back({a.allocate(kBytes, "t", s), s});
    } else {
      const size_t k = size_t(rng.integer(0, int64_t(live.size()) - 1));
      const std::vector<cuda::StreamHandle> used_on{streams[rng.integer(0, 2)]};
      a.deallocate(live[k].first, kBytes, live[k].second, used_on);
      live.erase(live.begin() + std::ptrdiff_t(k));
    }
  }
  // At most 6 blocks are ever cached, each with at most two events, plus one recorded lazily.
  EXPECT_LE(a.events_created, 2 * 6 + 1);
  EXPECT_GT(a.events_created, 0);
  for (auto& [ptr, s] : live) a.deallocate(ptr, kBytes, s);
  a.release_cached();
  EXPECT_EQ(a.stats().reserved, 0u);
  EXPECT_EQ(a.events_destroyed, 0) << "released blocks give their events back to the pool";
  a.drop_pool();
  EXPECT_EQ(a.events_destroyed, a.events_created);
}

TEST(AllocatorStreams, CpuTensorsHaveNoStreams) {
  Allocator& cpu = allocator_for(Device::cpu());
  const MemoryStats before = cpu.stats();
  const Stream default_stream;
  const StreamScope scope(default_stream);
  EXPECT_EQ(StreamScope::current(Device::cpu()), nullptr);
  EXPECT_EQ(StreamScope::current(Device::cuda(0)), nullptr) << "a default stream's scope is the default stream";
  {
    Tensor t = Tensor::empty({1000}, DType::f32, Device::cpu(), default_stream, "t");
    t.record_stream(default_stream);  // nothing on the CPU
  }
  Tensor again = Tensor::empty({1000}, DType::f32);
  EXPECT_EQ(cpu.stats().stream_waits, before.stream_waits);
}

// ---- CUDA (the emulated device runs these everywhere once it exists) -------------------------

// A size no other test leaves in the cache, so the block freed below is the one handed out next.
constexpr int64_t kFloats = (int64_t(3) << 20) / 4 + 4096 + 17;

std::vector<float> host_values(const Tensor& t, const Stream& stream, Device device) {
  stream.synchronize(device);  // Tensor::to_floats copies on the default stream
  return t.to_floats();
}

TEST(CudaAllocatorStreams, ABlockFreedWhileAKernelReadsItIsNotOverwrittenByAnotherStreamFirst) {
  SG_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  Allocator& allocator = allocator_for(gpu);
  allocator.release_cached();
  Stream a = Stream::create(gpu), b = Stream::create(gpu);
  Tensor out = Tensor::empty({kFloats}, DType::f32, gpu, a, "out");
  const void* block = nullptr;
  {
    Tensor src = Tensor::empty({kFloats}, DType::f32, gpu, a, "src");
    fill_(src, 1.0f, a);
    scale(src, 2.0f, out, a);  // queued on a, reads src
    block = src.data();
  }  // freed as soon as queued, as the layers' scratch and activations are
  const size_t waits = allocator.stats().stream_waits;
  Tensor dst = Tensor::empty({kFloats}, DType::f32, gpu, b, "dst");
  ASSERT_EQ(dst.data(), block) << "the freed block was not reused: this test would show nothing";
  EXPECT_EQ(allocator.stats().stream_waits, waits + 1);
  fill_(dst, 7.0f, b);
  // A device that runs b's fill first (before a's scale has read src) makes out 14, not 2.
  b.synchronize(gpu);
  a.synchronize(gpu);
  const std::vector<float> got = host_values(out, a, gpu);
  for (size_t i = 0; i < got.size(); i += 4099) ASSERT_EQ(got[i], 2.0f) << "element " << i;
  EXPECT_EQ(got.back(), 2.0f);
  EXPECT_EQ(host_values(dst, b, gpu).front(), 7.0f);
}

TEST(CudaAllocatorStreams, AnUploadReadOnTheComputeStreamIsNotOverwrittenByTheNextUpload) {
  SG_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  Allocator& allocator = allocator_for(gpu);
  allocator.release_cached();
  Stream copy = Stream::create(gpu), compute = Stream::create(gpu);
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Tensor host = testing::random_tensor(rng, {kFloats}, DType::f32);
  Tensor out = Tensor::empty({kFloats}, DType::f32, gpu, compute, "out");
  const void* block = nullptr;
  {
    Tensor upload = Tensor::empty({kFloats}, DType::f32, gpu, copy, "upload");
    upload.copy_from(host, copy);
    Event ready(gpu, /*timing=*/false);
    ready.record(copy);
    ready.block(compute);
    upload.record_stream(compute);  // as DeviceBatch::wait does
    scale(upload, 2.0f, out, compute);
    block = upload.data();
  }
  // The next upload, on the block's own stream: it must still wait for the compute stream.
  Tensor next = Tensor::empty({kFloats}, DType::f32, gpu, copy, "next upload");
  ASSERT_EQ(next.data(), block) << "the freed block was not reused: this test would show nothing";
  fill_(next, 7.0f, copy);
  copy.synchronize(gpu);
  compute.synchronize(gpu);
  const std::vector<float> got = host_values(out, compute, gpu);
  const std::vector<float> expected = host.to_floats();
  for (size_t i = 0; i < got.size(); i += 4099) ASSERT_EQ(got[i], 2.0f * expected[i]) << "element " << i;
}

TEST(CudaAllocatorStreams, ReuseOnTheSameStreamWaitsForNothing) {
  SG_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  Allocator& allocator = allocator_for(gpu);
  allocator.release_cached();
  Stream s = Stream::create(gpu);
  Tensor out = Tensor::empty({kFloats}, DType::f32, gpu, s, "out");
  const void* block = nullptr;
  {
    Tensor src = Tensor::empty({kFloats}, DType::f32, gpu, s, "src");
    fill_(src, 3.0f, s);
    scale(src, 2.0f, out, s);
    block = src.data();
  }
  const size_t waits = allocator.stats().stream_waits;
  Tensor again = Tensor::empty({kFloats}, DType::f32, gpu, s, "again");
  ASSERT_EQ(again.data(), block);
  EXPECT_EQ(allocator.stats().stream_waits, waits);
  fill_(again, 5.0f, s);  // stream order: after the scale
  const std::vector<float> got = host_values(out, s, gpu);
  EXPECT_EQ(got.front(), 6.0f);
  EXPECT_EQ(got.back(), 6.0f);
}

TEST(CudaAllocatorStreams, ScopesAndATensorThatOutlivesItsStream) {
  SG_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  allocator_for(gpu).release_cached();  // no block of this size cached by earlier tests in this process
  Tensor survivor;
  {
    Stream s = Stream::create(gpu);
    const StreamScope scope(s);
    EXPECT_EQ(StreamScope::current(gpu), s.handle());
    EXPECT_EQ(StreamScope::current(Device::cpu()), nullptr);
    survivor = Tensor::empty({kFloats}, DType::f32, gpu);  // for s, through the scope
    fill_(survivor, 4.0f, s);
  }  // s synchronises and goes; the tensor stays
  EXPECT_EQ(StreamScope::current(gpu), nullptr);
  EXPECT_EQ(survivor.to_floats().back(), 4.0f);
  const void* block = survivor.data();
  survivor = Tensor();  // freed after its stream: nothing to record
  Tensor next = Tensor::empty({kFloats}, DType::f32, gpu, Stream{}, "next");
  EXPECT_EQ(next.data(), block);
}

}  // namespace
}  // namespace sg
