// Out-of-memory messages (core/allocator.h): what was running (AllocationScope, nested, per
// thread), the request, the usage, the cap and the advice; ScopedMemoryLimit; the run-log lines.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "core/allocator.h"
#include "core/error.h"
#include "core/tensor.h"

namespace sg {
namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A cap 1 MiB above what the CPU allocator holds in tensors now: a 4 MiB request cannot fit.
size_t tight_cpu_limit() { return allocator_for(Device::cpu()).stats().in_use + (size_t(1) << 20); }

// Asks for 4 MiB under the cap and returns the error (fails the test when nothing is thrown).
OutOfMemoryError four_mib_over(size_t limit) {
  const ScopedMemoryLimit cap(Device::cpu(), limit);
  try {
    Tensor too_big = Tensor::empty({1 << 20}, DType::f32, Device::cpu(), "activations");
  } catch (const OutOfMemoryError& e) {
    return e;
  }
  ADD_FAILURE() << "a 4 MiB allocation under a cap of " << limit << " bytes succeeded";
  return OutOfMemoryError("nothing thrown");
}

TEST(OutOfMemory, MessageNamesScopeRequestUsageLimitAndAdvice) {
  const size_t limit = tight_cpu_limit();
  const AllocationScope step("training step 12 (epoch 2, batch 3/6)");
  const AllocationScope phase("forward");
  const OutOfMemoryError e = four_mib_over(limit);
  const std::string message = e.what();
  EXPECT_TRUE(contains(message, "out of memory on cpu during training step 12 (epoch 2, batch 3/6) > forward: "))
      << message;
  EXPECT_TRUE(contains(message, "activations needs 4.00 MiB (4194304 bytes)")) << message;
  EXPECT_TRUE(contains(message, "limit " + format_bytes(limit) + " (--memory-limit)")) << message;
  EXPECT_TRUE(contains(message, " in use (")) << message;
  // The default advice: checkpointing by its option and config key, the batch, the cap.
  EXPECT_TRUE(contains(message, "--checkpointing every")) << message;
  EXPECT_TRUE(contains(message, "config key checkpointing")) << message;
  EXPECT_TRUE(contains(message, "a smaller --batch")) << message;
  EXPECT_TRUE(contains(message, "a larger --memory-limit")) << message;

  const OutOfMemoryInfo& info = e.info();
  EXPECT_EQ(info.device, "cpu");
  EXPECT_EQ(info.scope, "training step 12 (epoch 2, batch 3/6) > forward");
  EXPECT_EQ(info.what, "activations");
  EXPECT_EQ(info.requested, size_t(4) << 20);
  EXPECT_EQ(info.limit, limit);
  EXPECT_LE(info.reserved, limit);
  EXPECT_GE(info.reserved, info.in_use);
}

TEST(OutOfMemory, WithoutScopeTheMessageStillNamesRequestAndLimit) {
  ASSERT_EQ(AllocationScope::current(), "");
  const size_t limit = tight_cpu_limit();
  const std::string message = four_mib_over(limit).what();
  EXPECT_TRUE(contains(message, "out of memory on cpu: activations needs 4.00 MiB")) << message;
  EXPECT_FALSE(contains(message, "during")) << message;
  EXPECT_TRUE(contains(message, "limit " + format_bytes(limit))) << message;
}

TEST(OutOfMemory, InnermostAdviceReplacesTheDefault) {
  const size_t limit = tight_cpu_limit();
  const AllocationScope outer("grading", "use a smaller --batch (outer advice)");
  {
    const AllocationScope inner("slide a, view 3 of 8", "inner advice");
    const std::string message = four_mib_over(limit).what();
    EXPECT_TRUE(contains(message, "To fit: inner advice")) << message;
    EXPECT_FALSE(contains(message, "outer advice")) << message;
    EXPECT_FALSE(contains(message, "--checkpointing")) << message;
  }
  {
    const AllocationScope inner("slide b, view 1 of 8");  // no advice of its own: the outer's
    const std::string message = four_mib_over(limit).what();
    EXPECT_TRUE(contains(message, "during grading > slide b, view 1 of 8: ")) << message;
    EXPECT_TRUE(contains(message, "To fit: use a smaller --batch (outer advice)")) << message;
  }
}

// An allocator whose system always refuses, as cudaMalloc does on a full card (core/cuda/runtime.cpp
// throws OutOfMemoryError with the card's free and total memory; the allocator adds the rest).
class RefusingAllocator final : public Allocator {
 public:
  RefusingAllocator() : Allocator(Device::cpu()) {}
  int attempts = 0;

 protected:
  void* system_allocate(size_t bytes) override {
    ++attempts;
    OutOfMemoryInfo info;
    info.requested = bytes;
    info.device_free = size_t(100) << 20;
    info.device_total = size_t(8) << 30;
    throw OutOfMemoryError("cudaMalloc refused it: cuda:0 has 100.00 MiB free of 8.00 GiB", info);
  }
  void system_free(void*, size_t) noexcept override {}
  bool caches() const override { return true; }
};

TEST(OutOfMemory, SystemRefusalWithoutCapNamesScopeAndTheDevicesFreeMemory) {
  RefusingAllocator allocator;
  const AllocationScope scope("training step 4 (epoch 1 of 2, batch 4/9)");
  try {
    (void)allocator.allocate(size_t(3) << 20, "conv2d output");
    FAIL() << "the refusing allocator returned memory";
  } catch (const OutOfMemoryError& e) {
    const std::string message = e.what();
    EXPECT_TRUE(contains(message, "out of memory on cpu during training step 4 (epoch 1 of 2, batch 4/9): conv2d "
                                  "output needs 4.00 MiB (4194304 bytes) but cudaMalloc refused it: cuda:0 has "
                                  "100.00 MiB free of 8.00 GiB; "))
        << message;  // 3 MiB rounded up to the 2 MiB granule of large blocks
    EXPECT_TRUE(contains(message, "no --memory-limit set")) << message;
    EXPECT_TRUE(contains(message, "--checkpointing every")) << message;
    EXPECT_EQ(e.info().device_free, size_t(100) << 20);
    EXPECT_EQ(e.info().device_total, size_t(8) << 30);
    EXPECT_EQ(e.info().requested, size_t(4) << 20);
    EXPECT_EQ(e.info().limit, 0u);
  }
  EXPECT_EQ(allocator.attempts, 2);  // once, then again after giving the cached blocks back
  EXPECT_EQ(allocator.stats().reserved, 0u);
}

TEST(AllocationScopeTest, NestsRelabelsAndCloses) {
  EXPECT_EQ(AllocationScope::current(), "");
  {
    AllocationScope step("training step 1");
    EXPECT_EQ(AllocationScope::current(), "training step 1");
    {
      AllocationScope phase("forward");
      EXPECT_EQ(AllocationScope::current(), "training step 1 > forward");
      phase.relabel("backward");
      EXPECT_EQ(AllocationScope::current(), "training step 1 > backward");
      {
        const AllocationScope unnamed("");  // an empty label adds nothing
        EXPECT_EQ(AllocationScope::current(), "training step 1 > backward");
      }
    }
    EXPECT_EQ(AllocationScope::current(), "training step 1");
    step.relabel("training step 2");
    EXPECT_EQ(AllocationScope::current(), "training step 2");
    EXPECT_EQ(AllocationScope::current_advice(), "");
    step.relabel("loading the weights", "raise the cap");
    EXPECT_EQ(AllocationScope::current(), "loading the weights");
    EXPECT_EQ(AllocationScope::current_advice(), "raise the cap");
  }
  EXPECT_EQ(AllocationScope::current(), "");
}

TEST(AllocationScopeTest, IsPerThread) {
  const size_t limit = tight_cpu_limit();
  const AllocationScope main_scope("main thread: training step 7");
  std::string seen_in_worker, worker_message;
  bool worker_threw = false;
  std::thread worker([&] {
    seen_in_worker = AllocationScope::current();  // none of the main thread's
    const AllocationScope scope("loader worker: slide x");
    const ScopedMemoryLimit cap(Device::cpu(), limit);
    try {
      Tensor too_big = Tensor::empty({1 << 20}, DType::f32, Device::cpu(), "activations");
    } catch (const OutOfMemoryError& e) {
      worker_threw = true;
      worker_message = e.what();
    }
  });
  worker.join();
  EXPECT_EQ(seen_in_worker, "");
  ASSERT_TRUE(worker_threw);
  EXPECT_TRUE(contains(worker_message, "during loader worker: slide x: ")) << worker_message;
  EXPECT_FALSE(contains(worker_message, "main thread")) << worker_message;
  EXPECT_EQ(AllocationScope::current(), "main thread: training step 7");  // the worker's scope is not ours
}

TEST(OutOfMemory, ScopedMemoryLimitPutsThePreviousCapBack) {
  Allocator& cpu = allocator_for(Device::cpu());
  ASSERT_EQ(cpu.stats().limit, 0u);
  {
    const ScopedMemoryLimit outer(Device::cpu(), size_t(8) << 30);
    EXPECT_EQ(cpu.stats().limit, size_t(8) << 30);
    {
      const ScopedMemoryLimit inner(Device::cpu(), size_t(4) << 30);
      EXPECT_EQ(cpu.stats().limit, size_t(4) << 30);
    }
    EXPECT_EQ(cpu.stats().limit, size_t(8) << 30);
  }
  EXPECT_EQ(cpu.stats().limit, 0u);
  // After the error the cap is gone and the same request succeeds.
  (void)four_mib_over(tight_cpu_limit());
  EXPECT_EQ(cpu.stats().limit, 0u);
  Tensor fits = Tensor::empty({1 << 20}, DType::f32);
  EXPECT_TRUE(fits.defined());
}

TEST(OutOfMemory, RunLogLinesNameLimitAndPeak) {
  EXPECT_EQ(memory_limit_text(Device::cpu(), 0), "memory on cpu: no limit (--memory-limit not set)");
  EXPECT_TRUE(contains(memory_limit_text(Device::cpu(), size_t(512) << 20), "limit 512.00 MiB (--memory-limit"));
  MemoryStats stats;
  stats.peak_reserved = size_t(300) << 20;
  stats.peak_in_use = size_t(280) << 20;
  stats.limit = size_t(400) << 20;
  EXPECT_EQ(memory_peak_text(Device::cpu(), stats),
            "memory on cpu: peak 300.00 MiB reserved (280.00 MiB in tensors) of the 400.00 MiB limit (75%)");
  stats.limit = 0;
  EXPECT_EQ(memory_peak_text(Device::cpu(), stats), "memory on cpu: peak 300.00 MiB reserved (280.00 MiB in tensors), no limit");
}

}  // namespace
}  // namespace sg
