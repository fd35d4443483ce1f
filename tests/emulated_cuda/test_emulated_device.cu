// The emulated CUDA device's own tests: what it must get right (barriers, warp intrinsics, inline
// PTX, streams, devices, memory), and, for every check a GPU does not give, a deliberately broken
// kernel or host call that the check catches (death tests: the emulator ends the process with a
// message naming the kernel or the call).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

#define EMU_CHECK(call) ASSERT_EQ((call), cudaSuccess) << #call << ": " << cudaGetErrorString(cudaGetLastError())

template <class T>
T* device_alloc(size_t count) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, count * sizeof(T)), cudaSuccess);
  return static_cast<T*>(p);
}

template <class T>
std::vector<T> to_host(const T* device, size_t count) {
  std::vector<T> host(count);
  EXPECT_EQ(cudaMemcpy(host.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return host;
}

// ---- Correct kernels: what the emulation must compute -------------------------------------------

__global__ void __launch_bounds__(256) block_reverse(const int* in, int* out) {
  __shared__ int tile[256];
  const int i = int(threadIdx.x);
  tile[i] = in[blockIdx.x * blockDim.x + i];
  __syncthreads();
  out[blockIdx.x * blockDim.x + i] = tile[blockDim.x - 1 - i];
}

TEST(EmulatedDevice, BarriersOrderSharedMemoryBetweenThreads) {
  const int n = 4 * 256;
  std::vector<int> host(n);
  for (int i = 0; i < n; ++i) host[size_t(i)] = i * 7 + 1;
  int* in = device_alloc<int>(n);
  int* out = device_alloc<int>(n);
  EMU_CHECK(cudaMemcpy(in, host.data(), n * sizeof(int), cudaMemcpyHostToDevice));
  block_reverse<<<4, 256>>>(in, out);
  EMU_CHECK(cudaGetLastError());
  const std::vector<int> result = to_host(out, n);
  for (int b = 0; b < 4; ++b)
    for (int i = 0; i < 256; ++i) ASSERT_EQ(result[size_t(b * 256 + i)], host[size_t(b * 256 + 255 - i)]);
  cudaFree(in);
  cudaFree(out);
}

__global__ void warp_intrinsics(int* out) {
  const int lane = int(threadIdx.x) % 32;
  int v = lane + 1;
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  out[threadIdx.x * 4 + 0] = v;                                                  // 528 in every lane
  out[threadIdx.x * 4 + 1] = __shfl_down_sync(0xffffffffu, lane, 3);            // lane + 3, or lane at the top
  out[threadIdx.x * 4 + 2] = __shfl_sync(0xffffffffu, lane * 10, 5);            // 50
  out[threadIdx.x * 4 + 3] = int(__ballot_sync(0xffffffffu, lane % 3 == 0)) + __syncthreads_or(lane == 7);
}

TEST(EmulatedDevice, WarpShufflesBallotsAndBarrierReductions) {
  int* out = device_alloc<int>(64 * 4);
  warp_intrinsics<<<1, 64>>>(out);
  EMU_CHECK(cudaGetLastError());
  const std::vector<int> r = to_host(out, 64 * 4);
  unsigned ballot = 0;
  for (int l = 0; l < 32; l += 3) ballot |= 1u << l;
  for (int t = 0; t < 64; ++t) {
    const int lane = t % 32;
    EXPECT_EQ(r[size_t(t * 4)], 528);
    EXPECT_EQ(r[size_t(t * 4 + 1)], lane + 3 < 32 ? lane + 3 : lane);
    EXPECT_EQ(r[size_t(t * 4 + 2)], 50);
    EXPECT_EQ(r[size_t(t * 4 + 3)], int(ballot) + 1);
  }
  cudaFree(out);
}

// One m16n8k16 tile through the inline PTX the kernels use: ldmatrix x4 (A, row-major), ldmatrix
// x2 .trans (B, k-major) and mma.sync, against a plain triple loop.
__global__ void mma_tile(const uint16_t* a, const uint16_t* b, float* d) {
  __shared__ __align__(16) uint16_t as[16][16];
  __shared__ __align__(16) uint16_t bs[16][8];
  const int lane = int(threadIdx.x);
  for (int i = lane; i < 256; i += 32) as[i / 16][i % 16] = a[i];
  for (int i = lane; i < 128; i += 32) bs[i / 8][i % 8] = b[i];
  __syncthreads();
  uint32_t ra[4], rb[2];
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(ra[0]), "=r"(ra[1]), "=r"(ra[2]), "=r"(ra[3])
               : "r"(uint32_t(__cvta_generic_to_shared(&as[lane % 16][(lane / 16) * 8]))));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(rb[0]), "=r"(rb[1])
               : "r"(uint32_t(__cvta_generic_to_shared(&bs[lane % 16][0]))));
  float acc[4] = {1.0f, 1.0f, 1.0f, 1.0f};
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
      : "r"(ra[0]), "r"(ra[1]), "r"(ra[2]), "r"(ra[3]), "r"(rb[0]), "r"(rb[1]));
  for (int i = 0; i < 4; ++i) d[(lane / 4 + (i / 2) * 8) * 8 + (lane % 4) * 2 + i % 2] = acc[i];
}

TEST(EmulatedDevice, InlinePtxLdmatrixAndMmaComputeATile) {
  std::vector<uint16_t> a(256), b(128);
  std::vector<float> af(256), bf(128);
  for (int i = 0; i < 256; ++i) af[size_t(i)] = float((i * 37) % 17 - 8) / 4.0f;
  for (int i = 0; i < 128; ++i) bf[size_t(i)] = float((i * 11) % 13 - 6) / 2.0f;
  for (int i = 0; i < 256; ++i) a[size_t(i)] = __half_as_ushort(__float2half_rn(af[size_t(i)]));
  for (int i = 0; i < 128; ++i) b[size_t(i)] = __half_as_ushort(__float2half_rn(bf[size_t(i)]));
  uint16_t* da = device_alloc<uint16_t>(256);
  uint16_t* db = device_alloc<uint16_t>(128);
  float* dd = device_alloc<float>(128);
  EMU_CHECK(cudaMemcpy(da, a.data(), 512, cudaMemcpyHostToDevice));
  EMU_CHECK(cudaMemcpy(db, b.data(), 256, cudaMemcpyHostToDevice));
  mma_tile<<<1, 32>>>(da, db, dd);
  const std::vector<float> d = to_host(dd, 128);
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) {
      float expected = 1.0f;
      for (int k = 0; k < 16; ++k) expected += af[size_t(m * 16 + k)] * bf[size_t(k * 8 + n)];
      EXPECT_FLOAT_EQ(d[size_t(m * 8 + n)], expected) << "m " << m << " n " << n;
    }
  cudaFree(da);
  cudaFree(db);
  cudaFree(dd);
}

// cp.async: the copy lands at the wait that covers it.
template <bool Wait>
__global__ void async_copy(const float* in, float* out) {
  __shared__ __align__(16) float s[32 * 4];
  const int t = int(threadIdx.x);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(uint32_t(__cvta_generic_to_shared(&s[t * 4]))),
               "l"(in + t * 4), "r"(16)
               : "memory");
  asm volatile("cp.async.commit_group;\n" ::: "memory");
  if (Wait) asm volatile("cp.async.wait_group 0;\n" ::: "memory");
  __syncthreads();
  out[t] = s[((t + 1) % 32) * 4];
  if (!Wait) asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

TEST(EmulatedDevice, AsyncCopiesLandAtTheirWait) {
  std::vector<float> host(128);
  for (int i = 0; i < 128; ++i) host[size_t(i)] = float(i);
  float* in = device_alloc<float>(128);
  float* out = device_alloc<float>(32);
  EMU_CHECK(cudaMemcpy(in, host.data(), 512, cudaMemcpyHostToDevice));
  async_copy<true><<<1, 32>>>(in, out);
  const std::vector<float> r = to_host(out, 32);
  for (int t = 0; t < 32; ++t) EXPECT_EQ(r[size_t(t)], float(((t + 1) % 32) * 4));
  cudaFree(in);
  cudaFree(out);
}

// ---- Streams run as a GPU runs them --------------------------------------------------------------

__global__ void fill_value(int* p, int n, int value) {
  for (int i = int(blockIdx.x * blockDim.x + threadIdx.x); i < n; i += int(gridDim.x * blockDim.x)) p[i] = value;
}

TEST(EmulatedDevice, WorkOnAnotherStreamRunsOnlyWhenSomethingWaitsForIt) {
  cudaStream_t producer, consumer;
  EMU_CHECK(cudaStreamCreateWithFlags(&producer, cudaStreamNonBlocking));
  EMU_CHECK(cudaStreamCreateWithFlags(&consumer, cudaStreamNonBlocking));
  int* data = device_alloc<int>(64);
  EMU_CHECK(cudaMemset(data, 0, 64 * sizeof(int)));
  EMU_CHECK(cudaDeviceSynchronize());
  std::vector<int> host(64, -1);
  // Without an event the consumer's copy does not wait for the producer's kernel: it reads zeros.
  fill_value<<<1, 64, 0, producer>>>(data, 64, 5);
  EMU_CHECK(cudaMemcpyAsync(host.data(), data, 64 * sizeof(int), cudaMemcpyDeviceToHost, consumer));
  EXPECT_EQ(host[0], 0) << "a copy on another stream waited for work it was never told to wait for";
  EMU_CHECK(cudaStreamSynchronize(producer));
  // With the event it sees the kernel's values.
  cudaEvent_t done;
  EMU_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  fill_value<<<1, 64, 0, producer>>>(data, 64, 9);
  EMU_CHECK(cudaEventRecord(done, producer));
  EMU_CHECK(cudaStreamWaitEvent(consumer, done, 0));
  EMU_CHECK(cudaMemcpyAsync(host.data(), data, 64 * sizeof(int), cudaMemcpyDeviceToHost, consumer));
  EXPECT_EQ(host[0], 9);
  EXPECT_EQ(host[63], 9);
  // The legacy default stream does not wait for non-blocking streams either.
  fill_value<<<1, 64, 0, producer>>>(data, 64, 11);
  EMU_CHECK(cudaMemcpy(host.data(), data, 64 * sizeof(int), cudaMemcpyDeviceToHost));
  EXPECT_EQ(host[0], 9);
  EMU_CHECK(cudaDeviceSynchronize());
  EMU_CHECK(cudaMemcpy(host.data(), data, 64 * sizeof(int), cudaMemcpyDeviceToHost));
  EXPECT_EQ(host[0], 11);
  cudaEventDestroy(done);
  cudaStreamDestroy(producer);
  cudaStreamDestroy(consumer);
  cudaFree(data);
}

TEST(EmulatedDevice, PinnedSourceIsReadWhenTheCopyRunsAndPageableWhenItIsQueued) {
  cudaStream_t s;
  EMU_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  int* device = device_alloc<int>(1);
  int* pinned = nullptr;
  EMU_CHECK(cudaMallocHost(reinterpret_cast<void**>(&pinned), sizeof(int)));
  int pageable = 1, back = 0;
  *pinned = 1;
  EMU_CHECK(cudaMemcpyAsync(device, pinned, sizeof(int), cudaMemcpyHostToDevice, s));
  *pinned = 2;  // too early: the copy has not run
  EMU_CHECK(cudaStreamSynchronize(s));
  EMU_CHECK(cudaMemcpy(&back, device, sizeof(int), cudaMemcpyDeviceToHost));
  EXPECT_EQ(back, 2);
  EMU_CHECK(cudaMemcpyAsync(device, &pageable, sizeof(int), cudaMemcpyHostToDevice, s));
  pageable = 3;  // fine: pageable memory was staged when the copy was queued
  EMU_CHECK(cudaStreamSynchronize(s));
  EMU_CHECK(cudaMemcpy(&back, device, sizeof(int), cudaMemcpyDeviceToHost));
  EXPECT_EQ(back, 1);
  cudaFreeHost(pinned);
  cudaFree(device);
  cudaStreamDestroy(s);
}

TEST(EmulatedDevice, APersonalityWithTwoDevicesAndItsMemory) {
  int count = 0;
  EMU_CHECK(cudaGetDeviceCount(&count));
  EXPECT_EQ(count, 2);
  cudaDeviceProp prop{};
  EMU_CHECK(cudaGetDeviceProperties(&prop, 0));
  EXPECT_NE(std::string(prop.name).find("emulated CUDA device"), std::string::npos) << prop.name;
  size_t free_bytes = 0, total = 0;
  EMU_CHECK(cudaMemGetInfo(&free_bytes, &total));
  EXPECT_EQ(total, prop.totalGlobalMem);
  EXPECT_LT(free_bytes, total);
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, total), cudaErrorMemoryAllocation);
  EXPECT_NE(std::string(cudaGetErrorString(cudaGetLastError())).find("cudaMalloc"), std::string::npos);
}

TEST(EmulatedDevice, BadLaunchesAndCopiesAreErrorsNamingTheCall) {
  int* data = device_alloc<int>(16);
  fill_value<<<1, 2048>>>(data, 16, 1);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorInvalidConfiguration)).find("2048 threads per block"),
            std::string::npos);
  fill_value<<<1, 32, 64 << 10>>>(data, 16, 1);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorInvalidValue)).find("dynamic shared memory"), std::string::npos);
  int host[16];
  EXPECT_EQ(cudaMemcpy(data, host, sizeof host, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_NE(std::string(cudaGetErrorString(cudaGetLastError())).find("cudaMemcpy: the kind says device -> host"),
            std::string::npos);
  EXPECT_EQ(cudaMemcpy(host, data, 17 * sizeof(int), cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_NE(std::string(cudaGetErrorString(cudaGetLastError())).find("not inside one cudaMalloc block"),
            std::string::npos);
  EXPECT_EQ(cudaFree(host), cudaErrorInvalidValue);
  (void)cudaGetLastError();
  // A launch on a stream of another device than the current one.
  cudaStream_t other;
  EMU_CHECK(cudaSetDevice(1));
  EMU_CHECK(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking));
  EMU_CHECK(cudaSetDevice(0));
  fill_value<<<1, 32, 0, other>>>(data, 16, 1);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidResourceHandle);
  cudaStreamDestroy(other);
  cudaFree(data);
}

// ---- Broken kernels and host code: each caught, with a message naming it --------------------------

using EmulatedDeviceDeathTest = ::testing::Test;

__global__ void read_past_the_end(const float* in, float* out, int n) { out[threadIdx.x] = in[int(threadIdx.x) + n]; }

TEST_F(EmulatedDeviceDeathTest, OutOfBoundsGlobalReadIsCaught) {
  float* in = device_alloc<float>(64);
  float* out = device_alloc<float>(64);
  EXPECT_DEATH(
      {
        read_past_the_end<<<1, 64>>>(in, out, 64);
        cudaDeviceSynchronize();
      },
      "use-after-poison|outside every cudaMalloc block");
}

__global__ void misaligned_vector_load(const float* in, float* out) {
  const float4 v = *reinterpret_cast<const float4*>(in + 1);
  out[0] = v.x;
}

TEST_F(EmulatedDeviceDeathTest, MisalignedVectorLoadIsCaught) {
  float* in = device_alloc<float>(64);
  float* out = device_alloc<float>(64);
  EXPECT_DEATH(
      {
        misaligned_vector_load<<<1, 1>>>(in, out);
        cudaDeviceSynchronize();
      },
      "misaligned");
}

__global__ void racy_neighbour_read(float* out) {
  __shared__ float s[64];
  s[threadIdx.x] = float(threadIdx.x);
  out[threadIdx.x] = s[threadIdx.x > 0 ? threadIdx.x - 1 : 0];  // a __syncthreads is missing
}

TEST_F(EmulatedDeviceDeathTest, SharedMemoryRaceIsCaught) {
  float* out = device_alloc<float>(64);
  EXPECT_DEATH(
      {
        racy_neighbour_read<<<1, 64>>>(out);
        cudaDeviceSynchronize();
      },
      "kernel .*racy_neighbour_read.*data race: reads shared memory offset [0-9]+, which thread \\(0,0,0\\) wrote "
      "since the last __syncthreads");
}

__global__ void racy_write_after_read(float* out) {
  __shared__ float s[64];
  s[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = s[(threadIdx.x + 1) % 64];
  s[threadIdx.x] = 2.0f;  // a neighbour may still read the old value: a barrier is missing
}

TEST_F(EmulatedDeviceDeathTest, WriteAfterAnotherThreadsReadIsCaught) {
  float* out = device_alloc<float>(64);
  EXPECT_DEATH(
      {
        racy_write_after_read<<<1, 64>>>(out);
        cudaDeviceSynchronize();
      },
      "data race: writes shared memory offset [0-9]+, which .* read since the last __syncthreads");
}

__global__ void reads_unwritten_shared(float* out) {
  __shared__ float s[64];
  if (threadIdx.x < 32) s[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];
}

TEST_F(EmulatedDeviceDeathTest, ReadOfSharedMemoryNoThreadWroteIsCaught) {
  float* out = device_alloc<float>(64);
  EXPECT_DEATH(
      {
        reads_unwritten_shared<<<1, 64>>>(out);
        cudaDeviceSynchronize();
      },
      "thread \\(32,0,0\\).*no thread of this block has written \\(uninitialised shared memory\\)");
}

__global__ void barrier_in_a_branch(float* out) {
  __shared__ float s[64];
  if (threadIdx.x >= 32) return;
  s[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = s[31 - threadIdx.x];
}

TEST_F(EmulatedDeviceDeathTest, ThreadsThatMissABarrierAreCaught) {
  float* out = device_alloc<float>(64);
  EXPECT_DEATH(
      {
        barrier_in_a_branch<<<1, 64>>>(out);
        cudaDeviceSynchronize();
      },
      "32 of the block's 64 threads exited without reaching the __syncthreads");
}

TEST_F(EmulatedDeviceDeathTest, MissingAsyncCopyWaitIsCaught) {
  float* in = device_alloc<float>(128);
  float* out = device_alloc<float>(32);
  EXPECT_DEATH(
      {
        async_copy<false><<<1, 32>>>(in, out);
        cudaDeviceSynchronize();
      },
      "async_copy.*uninitialised shared memory");
}

__global__ void __launch_bounds__(128) bounded_kernel(float* out) { out[threadIdx.x] = 0.0f; }

TEST_F(EmulatedDeviceDeathTest, LaunchBeyondLaunchBoundsIsCaught) {
  float* out = device_alloc<float>(256);
  EXPECT_DEATH(
      {
        bounded_kernel<<<1, 256>>>(out);
        cudaDeviceSynchronize();
      },
      "bounded_kernel.*launched with 256 threads per block, more than its __launch_bounds__\\(128\\)");
}

__global__ void too_much_static_shared(float* out) {
  __shared__ float big[16 * 1024];  // 64 KiB: more than a GTX 1050 Ti, a T4 or an H100 give without opt-in
  big[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = big[threadIdx.x];
}

TEST_F(EmulatedDeviceDeathTest, TooMuchSharedMemoryIsCaught) {
  float* out = device_alloc<float>(32);
  EXPECT_DEATH(
      {
        too_much_static_shared<<<1, 32>>>(out);
        cudaDeviceSynchronize();
      },
      "too_much_static_shared.*65536 bytes of static .* allows 49152 per block");
}

TEST_F(EmulatedDeviceDeathTest, HostDereferenceOfDevicePointerIsCaught) {
  float* p = device_alloc<float>(16);
  EXPECT_DEATH({ std::printf("%f\n", double(p[3])); }, "host code accessed device memory of cuda:0");
}

TEST_F(EmulatedDeviceDeathTest, HostPointerGivenToAKernelIsCaught) {
  std::vector<int> host(64);
  EXPECT_DEATH(
      {
        fill_value<<<1, 64>>>(host.data(), 64, 1);
        cudaDeviceSynchronize();
      },
      "fill_value.*writes 4 bytes of host memory .*a host pointer where a device pointer is needed");
}

TEST_F(EmulatedDeviceDeathTest, PointerOfAnotherDeviceIsCaught) {
  EXPECT_EQ(cudaSetDevice(1), cudaSuccess);
  int* other = device_alloc<int>(64);
  EXPECT_EQ(cudaSetDevice(0), cudaSuccess);
  EXPECT_DEATH(
      {
        fill_value<<<1, 64>>>(other, 64, 1);
        cudaDeviceSynchronize();
      },
      "fill_value.* on cuda:0: writes memory of cuda:1");
}

__global__ void traps(float* out) {
  if (threadIdx.x == 3) __trap();
  out[threadIdx.x] = 1.0f;
}

TEST_F(EmulatedDeviceDeathTest, TrapIsCaught) {
  float* out = device_alloc<float>(32);
  EXPECT_DEATH(
      {
        traps<<<1, 32>>>(out);
        cudaDeviceSynchronize();
      },
      "traps.*thread \\(3,0,0\\).*executed __trap\\(\\)");
}

__global__ void shuffle_with_an_exited_lane(int* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, int(threadIdx.x), 1);
}

TEST_F(EmulatedDeviceDeathTest, WarpCollectiveMissingALaneIsCaught) {
  int* out = device_alloc<int>(32);
  EXPECT_DEATH(
      {
        shuffle_with_an_exited_lane<<<1, 32>>>(out);
        cudaDeviceSynchronize();
      },
      "waits for lane 5, which has exited");
}

}  // namespace
