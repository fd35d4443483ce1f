// Kernel execution on the emulated device (see executor.h): grids, blocks of fibers, barriers,
// warp collectives, shared memory with a per-byte record of who wrote and read it since the last
// barrier, and the load/store hooks that check every access of the kernel translation units.
#include "tests/emulated_cuda/executor.h"

#include <link.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unistd.h>

#include "tests/emulated_cuda/machine.h"

#include "tests/emulated_cuda/sanitizers.h"
#if SG_EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

// The switch between fibers: saves the callee-saved registers and the floating-point control
// words on the current stack, stores the stack pointer in *save, and continues on `next` (a stack
// pointer saved by an earlier switch, or prepared by prepare_stack). x86-64 System V only.
extern "C" void sg_emu_switch_context(void** save, void* next);
extern "C" void sg_emu_fiber_trampoline();
asm(R"(
  .text
  .globl sg_emu_switch_context
  .type sg_emu_switch_context,@function
sg_emu_switch_context:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size sg_emu_switch_context,.-sg_emu_switch_context

  .globl sg_emu_fiber_trampoline
  .type sg_emu_fiber_trampoline,@function
sg_emu_fiber_trampoline:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size sg_emu_fiber_trampoline,.-sg_emu_fiber_trampoline
)");

namespace sg_emu {

// The dynamic shared memory of the running block; in the section with every static __shared__.
alignas(128) __attribute__((section("sg_emu_shared"), used)) static unsigned char g_dynamic_shared[228 << 10];

}  // namespace sg_emu

extern "C" {
extern unsigned char __start_sg_emu_shared[];
extern unsigned char __stop_sg_emu_shared[];
}

namespace sg_emu {
namespace {

constexpr size_t kStackBytes = size_t(256) << 10;
constexpr uint16_t kManyReaders = 0xffff;

enum class Wait { runnable, barrier, warp, done };

struct ThreadState {
  uint3 index{};
  int linear = 0;
  void* sp = nullptr;         // saved stack pointer while switched out
  unsigned char* stack = nullptr;
  Wait wait = Wait::runnable;
  const char* file = nullptr;  // where it waits
  int line = 0;
  int predicate = 0, reduced = 0;  // __syncthreads_or / _and / _count
  int reduce_how = -1;
  WarpPost* post = nullptr;
  void* fake_stack = nullptr;  // AddressSanitizer's, while switched out
  int in_emulator = 0;         // EmulatorScope depth: the hooks ignore emulator code
  std::vector<AsyncCopy> open_group;
  std::vector<std::vector<AsyncCopy>> committed_groups;
};

// Per byte of shared memory: the last write and the reads since it, as (block serial, barrier
// epoch, thread). Entries of an earlier block are stale by their serial, so nothing is cleared.
struct ByteRecord {
  uint32_t write_serial = 0, write_epoch = 0;
  uint32_t read_serial = 0, read_epoch = 0;
  uint16_t writer = 0, reader = 0;
};

struct Launch {
  std::shared_ptr<KernelBody> body;
  dim3 grid, block;
  size_t dynamic_shared = 0;
  int device = 0;
  const char* kernel_name = nullptr;  // from the kernel's entry hook
  std::vector<std::pair<const void*, size_t>> static_shared;
  size_t static_shared_bytes = 0;
  bool entry_checked = false;
  // The parameter block, read once before any thread runs: the body's accessors are compiled in
  // the kernel's (hooked) translation unit, so the hooks must not call them.
  uintptr_t parameters = 0;
  size_t parameter_bytes = 0;
};

struct Block {
  Launch* launch = nullptr;
  uint3 index{};
  dim3 dim, grid;
  std::vector<ThreadState> threads;
  void* scheduler_sp = nullptr;
  const void* scheduler_stack_bottom = nullptr;
  size_t scheduler_stack_size = 0;
  uint32_t serial = 0;
  uint32_t epoch = 1;
};

thread_local ThreadState* t_thread = nullptr;
thread_local Block* t_block = nullptr;

uint32_t g_block_serial = 0;
std::vector<ByteRecord>& shadow() {
  static std::vector<ByteRecord> records(size_t(__stop_sg_emu_shared - __start_sg_emu_shared));
  return records;
}

// Stacks for up to 1024 threads, reserved once, each with a guard page at its low end.
unsigned char* stack_for(int thread) {
  static unsigned char* stacks = [] {
    void* p = mmap(nullptr, kStackBytes * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) {
      std::perror("emulated CUDA device: reserving fiber stacks");
      std::abort();
    }
    for (int i = 0; i < 1024; ++i) mprotect(static_cast<unsigned char*>(p) + size_t(i) * kStackBytes, 4096, PROT_NONE);
    return static_cast<unsigned char*>(p);
  }();
  return stacks + size_t(thread) * kStackBytes;
}

// Address ranges of every loaded object's segments: device code may read the program's own
// constants (tables, string literals), never other host memory.
struct ImageRanges {
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
};
const ImageRanges& images() {
  static const ImageRanges result = [] {
    ImageRanges r;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
          auto* out = static_cast<ImageRanges*>(data);
          for (int i = 0; i < info->dlpi_phnum; ++i) {
            const ElfW(Phdr)& ph = info->dlpi_phdr[i];
            if (ph.p_type != PT_LOAD) continue;
            const uintptr_t begin = info->dlpi_addr + ph.p_vaddr;
            out->ranges.emplace_back(begin, begin + ph.p_memsz);
          }
          return 0;
        },
        &r);
    return r;
  }();
  return result;
}

std::string kernel_name() {
  if (t_block && t_block->launch->kernel_name) return t_block->launch->kernel_name;
  return "a kernel";
}

std::string thread_text(const ThreadState& t) {
  std::ostringstream s;
  s << "thread (" << t.index.x << "," << t.index.y << "," << t.index.z << ")";
  if (t_block) s << " of block (" << t_block->index.x << "," << t_block->index.y << "," << t_block->index.z << ")";
  return s.str();
}

[[noreturn]] void device_fault(const std::string& what) {
  if (t_thread) ++t_thread->in_emulator;  // building the message must not call the hooks again
  std::ostringstream s;
  s << "kernel " << kernel_name();
  if (t_thread) s << ", " << thread_text(*t_thread);
  if (t_block) s << " on cuda:" << t_block->launch->device;
  s << ": " << what;
  fault(s.str());
}

// ---- Fibers -------------------------------------------------------------------------------------------
void switch_to_scheduler(ThreadState& t) {
#if SG_EMU_ASAN
  __sanitizer_start_switch_fiber(&t.fake_stack, t_block->scheduler_stack_bottom, t_block->scheduler_stack_size);
#endif
  sg_emu_switch_context(&t.sp, t_block->scheduler_sp);
#if SG_EMU_ASAN
  __sanitizer_finish_switch_fiber(t.fake_stack, &t_block->scheduler_stack_bottom, &t_block->scheduler_stack_size);
#endif
}

void resume(ThreadState& t) {
  t_thread = &t;
#if SG_EMU_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, t.stack + 4096, kStackBytes - 4096);
#endif
  sg_emu_switch_context(&t_block->scheduler_sp, t.sp);
#if SG_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
  t_thread = nullptr;
}

void check_async_copies_done(const ThreadState& t) {
  if (!t.open_group.empty() || !t.committed_groups.empty())
    device_fault("it ended with cp.async copies that no cp.async.wait_group waited for (" +
                 std::to_string(t.committed_groups.size()) + " committed groups, " +
                 std::to_string(t.open_group.size()) + " uncommitted copies)");
}

extern "C" void sg_emu_fiber_main(ThreadState* t) {
#if SG_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &t_block->scheduler_stack_bottom, &t_block->scheduler_stack_size);
#endif
  try {
    t_block->launch->body->run();
  } catch (const std::exception& e) {
    device_fault(std::string("an exception escaped device code: ") + e.what());
  } catch (...) {
    device_fault("an exception escaped device code");
  }
  check_async_copies_done(*t);
  t->wait = Wait::done;
#if SG_EMU_ASAN
  __sanitizer_start_switch_fiber(nullptr, t_block->scheduler_stack_bottom, t_block->scheduler_stack_size);
#endif
  void* unused = nullptr;
  sg_emu_switch_context(&unused, t_block->scheduler_sp);
  std::abort();  // a finished fiber is never resumed
}

void prepare(ThreadState& t, int linear) {
  t.stack = stack_for(linear);
  auto* top = reinterpret_cast<uint64_t*>(t.stack + kStackBytes);  // 16-byte aligned
  top[-1] = reinterpret_cast<uint64_t>(&sg_emu_fiber_trampoline);     // "return address" of the first switch
  top[-2] = 0;                                                        // rbp
  top[-3] = 0;                                                        // rbx
  top[-4] = reinterpret_cast<uint64_t>(&t);                           // r12: the argument
  top[-5] = reinterpret_cast<uint64_t>(&sg_emu_fiber_main);           // r13: the function
  top[-6] = 0;                                                        // r14
  top[-7] = 0;                                                        // r15
  top[-8] = uint64_t(0x1f80) | (uint64_t(0x037f) << 32);              // mxcsr, x87 control word
  t.sp = &top[-8];
}

// ---- Scheduling --------------------------------------------------------------------------------------
std::string where(const ThreadState& t) {
  switch (t.wait) {
    case Wait::barrier: return std::string("waits at __syncthreads (") + t.file + ":" + std::to_string(t.line) + ")";
    case Wait::warp:
      return std::string("waits at a warp collective (") + t.post->file + ":" + std::to_string(t.post->line) + ")";
    case Wait::done: return "has exited";
    case Wait::runnable: return "is runnable";
  }
  return "";
}

[[noreturn]] void deadlock(Block& b, const std::string& why) {
  std::ostringstream s;
  s << why << "; thread states:";
  int shown = 0;
  for (size_t i = 0; i < b.threads.size() && shown < 8; ++i) {
    const ThreadState& t = b.threads[i];
    if (i > 0 && t.wait == b.threads[i - 1].wait && t.line == b.threads[i - 1].line && t.wait != Wait::warp) continue;
    s << "\n  " << thread_text(t) << " " << where(t);
    ++shown;
  }
  t_thread = nullptr;
  device_fault(s.str());
}

// Resolves the warp collectives whose lanes have all arrived; true when any thread became runnable.
bool resolve_warps(Block& b) {
  bool progressed = false;
  const int n = int(b.threads.size());
  for (int w0 = 0; w0 < n; w0 += 32) {
    WarpPost* lanes[32] = {};
    unsigned arrived = 0;
    const int lanes_here = std::min(32, n - w0);
    for (int l = 0; l < lanes_here; ++l) {
      ThreadState& t = b.threads[size_t(w0 + l)];
      if (t.wait == Wait::warp) {
        lanes[l] = t.post;
        arrived |= 1u << l;
      }
    }
    if (!arrived) continue;
    // Resolve the collective of the lowest waiting lane when all of its mask has arrived.
    const int first = __builtin_ctz(arrived);
    const WarpPost& p = *lanes[first];
    const unsigned exists = lanes_here == 32 ? 0xffffffffu : ((1u << lanes_here) - 1u);
    if (p.mask & ~exists) {
      t_thread = &b.threads[size_t(w0 + first)];
      device_fault("a warp collective at " + std::string(p.file) + ":" + std::to_string(p.line) + " names lanes (mask 0x" +
                   [&] {
                     std::ostringstream h;
                     h << std::hex << p.mask;
                     return h.str();
                   }() + ") that this warp does not have");
    }
    if ((p.mask & arrived) != p.mask) {
      for (int l = 0; l < lanes_here; ++l)
        if ((p.mask >> l & 1u) && b.threads[size_t(w0 + l)].wait == Wait::done) {
          t_thread = &b.threads[size_t(w0 + first)];
          device_fault("a warp collective at " + std::string(p.file) + ":" + std::to_string(p.line) + " waits for lane " +
                       std::to_string(l) + ", which has exited");
        }
      continue;
    }
    for (int l = 0; l < 32; ++l) {
      if (!(p.mask >> l & 1u)) continue;
      const WarpPost& q = *lanes[l];
      if (q.kind != p.kind || q.mask != p.mask) {
        t_thread = &b.threads[size_t(w0 + l)];
        device_fault("lanes of one warp meet at different warp collectives: lane " + std::to_string(first) + " at " +
                     p.file + ":" + std::to_string(p.line) + ", lane " + std::to_string(l) + " at " + q.file + ":" +
                     std::to_string(q.line) + " (or with different masks)");
      }
    }
    WarpPost* selected[32] = {};
    for (int l = 0; l < 32; ++l)
      if (p.mask >> l & 1u) selected[l] = lanes[l];
    t_thread = nullptr;
    p.resolve(selected, p.mask);
    for (int l = 0; l < 32; ++l)
      if (p.mask >> l & 1u) b.threads[size_t(w0 + l)].wait = Wait::runnable;
    progressed = true;
  }
  return progressed;
}

void run_block(Block& b) {
  const int n = int(b.threads.size());
  for (int i = 0; i < n; ++i) {
    ThreadState& t = b.threads[size_t(i)];
    t.wait = Wait::runnable;
    t.file = nullptr;
    t.line = 0;
    t.predicate = t.reduced = 0;
    t.reduce_how = -1;
    t.post = nullptr;
    t.fake_stack = nullptr;
    t.in_emulator = 0;
    t.open_group.clear();
    t.committed_groups.clear();
    t.linear = i;
    t.index = uint3{unsigned(i) % b.dim.x, (unsigned(i) / b.dim.x) % b.dim.y, unsigned(i) / (b.dim.x * b.dim.y)};
    prepare(t, i);
  }
  for (;;) {
    bool ran = false;
    for (ThreadState& t : b.threads)
      if (t.wait == Wait::runnable) {
        resume(t);
        ran = true;
      }
    if (resolve_warps(b)) continue;
    if (ran) continue;
    int done = 0, at_barrier = 0;
    for (const ThreadState& t : b.threads) {
      done += t.wait == Wait::done;
      at_barrier += t.wait == Wait::barrier;
    }
    if (done == n) return;
    if (at_barrier + done == n) {
      if (done > 0)
        deadlock(b, std::to_string(done) + " of the block's " + std::to_string(n) +
                        " threads exited without reaching the __syncthreads the others wait at (every thread of a "
                        "block must reach each barrier)");
      const ThreadState& first = b.threads[0];
      for (const ThreadState& t : b.threads)
        if (t.line != first.line || t.file != first.file || t.reduce_how != first.reduce_how)
          deadlock(b, "threads of one block wait at different __syncthreads calls");
      int any = 0, all = 1, count = 0;
      for (const ThreadState& t : b.threads) {
        any |= t.predicate != 0;
        all &= t.predicate != 0;
        count += t.predicate != 0;
      }
      const int reduced = first.reduce_how == 0 ? any : first.reduce_how == 1 ? all : count;
      ++b.epoch;
      for (ThreadState& t : b.threads) {
        t.reduced = reduced;
        t.wait = Wait::runnable;
      }
      continue;
    }
    deadlock(b, "the block cannot go on (a barrier or warp collective that some threads never reach)");
  }
}

void execute(Launch& launch) {
  launch.parameters = reinterpret_cast<uintptr_t>(launch.body->parameters());
  launch.parameter_bytes = launch.body->parameter_bytes();
  const dim3 g = launch.grid, d = launch.block;
  Block b;
  b.launch = &launch;
  b.dim = d;
  b.grid = g;
  b.threads.resize(size_t(d.x) * d.y * d.z);
  Block* const saved_block = t_block;
  t_block = &b;
  for (unsigned z = 0; z < g.z; ++z)
    for (unsigned y = 0; y < g.y; ++y)
      for (unsigned x = 0; x < g.x; ++x) {
        b.index = uint3{x, y, z};
        b.serial = ++g_block_serial;
        b.epoch = 1;
        run_block(b);
      }
  t_block = saved_block;
}

// ---- Memory access checks -------------------------------------------------------------------------
std::string thread_name(uint16_t linear) {
  const ThreadState& o = t_block->threads[linear];
  return "thread (" + std::to_string(o.index.x) + "," + std::to_string(o.index.y) + "," + std::to_string(o.index.z) +
         ")";
}

// The faults of the hooks: cold and out of line, so the hot path keeps a frame without locals
// (AddressSanitizer poisons and unpoisons the frame of every call that has some).
enum class SharedFault { write_after_write, write_after_read, uninitialised, read_after_write };
[[noreturn, gnu::noinline, gnu::cold]] void shared_fault(SharedFault kind, uintptr_t offset, uint16_t who) {
  if (t_thread) ++t_thread->in_emulator;
  const std::string at = " shared memory offset " + std::to_string(offset) + ", which ";
  switch (kind) {
    case SharedFault::write_after_write:
      device_fault("data race: writes" + at + thread_name(who) + " also wrote since the last __syncthreads");
    case SharedFault::write_after_read:
      device_fault("data race: writes" + at + (who == kManyReaders ? std::string("other threads") : thread_name(who)) +
                   " read since the last __syncthreads");
    case SharedFault::uninitialised:
      device_fault("reads" + at + "no thread of this block has written (uninitialised shared memory)");
    case SharedFault::read_after_write:
      device_fault("data race: reads" + at + thread_name(who) +
                   " wrote since the last __syncthreads (a __syncthreads is missing between them)");
  }
  std::abort();
}

[[noreturn, gnu::noinline, gnu::cold]] void access_fault(const void* address, size_t bytes, bool write, int what,
                                                         int device) {
  if (t_thread) ++t_thread->in_emulator;
  std::ostringstream s;
  switch (what) {
    case 0: s << "a misaligned " << bytes << "-byte shared-memory access at " << address; break;
    case 1: s << "a misaligned " << bytes << "-byte global-memory access at " << address; break;
    case 2: s << (write ? "writes" : "reads") << " memory of cuda:" << device << " (a pointer of another device)"; break;
    default:
      s << (write ? "writes " : "reads ") << bytes << " bytes of host memory at " << address
        << " (a host pointer where a device pointer is needed)";
  }
  device_fault(s.str());
}

// Per byte of the access: the record of the last write and the reads since it.
void shared_check(int thread, uintptr_t offset, size_t bytes, bool write) {
  ByteRecord* records = shadow().data() + offset;
  const uint32_t serial = t_block->serial, epoch = t_block->epoch;
  const auto me = uint16_t(thread);
  for (size_t i = 0; i < bytes; ++i) {
    ByteRecord& r = records[i];
    if (write) {
      if (r.write_serial == serial && r.write_epoch == epoch && r.writer != me)
        shared_fault(SharedFault::write_after_write, offset + i, r.writer);
      if (r.read_serial == serial && r.read_epoch == epoch && r.reader != me)
        shared_fault(SharedFault::write_after_read, offset + i, r.reader);
      r.write_serial = serial, r.write_epoch = epoch, r.writer = me;
    } else {
      if (r.write_serial != serial) shared_fault(SharedFault::uninitialised, offset + i, 0);
      if (r.write_epoch == epoch && r.writer != me) shared_fault(SharedFault::read_after_write, offset + i, r.writer);
      if (r.read_serial == serial && r.read_epoch == epoch) {
        if (r.reader != me) r.reader = kManyReaders;
      } else {
        r.read_serial = serial, r.read_epoch = epoch, r.reader = me;
      }
    }
  }
}

// Address ranges the hooks compare against, read once.
struct Ranges {
  uintptr_t shared_begin, shared_size;
  uintptr_t arena_begin[kDeviceCount], arena_size[kDeviceCount];
  uintptr_t program_begin, program_size;  // the executable's own segments (sanitizer caches, constants)
};
const Ranges& ranges() {
  static const Ranges r = [] {
    Ranges x{};
    x.shared_begin = reinterpret_cast<uintptr_t>(__start_sg_emu_shared);
    x.shared_size = uintptr_t(__stop_sg_emu_shared - __start_sg_emu_shared);
    for (int d = 0; d < kDeviceCount; ++d) arena_bounds(d, x.arena_begin[d], x.arena_size[d]);
    // The first object dl_iterate_phdr reports is the executable.
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
          auto* r = static_cast<Ranges*>(data);
          uintptr_t lo = UINTPTR_MAX, hi = 0;
          for (int i = 0; i < info->dlpi_phnum; ++i)
            if (info->dlpi_phdr[i].p_type == PT_LOAD) {
              lo = std::min<uintptr_t>(lo, info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
              hi = std::max<uintptr_t>(hi, info->dlpi_addr + info->dlpi_phdr[i].p_vaddr + info->dlpi_phdr[i].p_memsz);
            }
          r->program_begin = lo;
          r->program_size = hi - lo;
          return 1;
        },
        &x);
    return x;
  }();
  return r;
}

[[gnu::noinline]] bool in_program_image(uintptr_t a) {
  for (const auto& [lo, hi] : images().ranges)
    if (a >= lo && a < hi) return true;
  return false;
}

inline void check_access(const void* address, size_t bytes, bool write) {
  ThreadState* t = t_thread;
  if (!t || t->in_emulator) return;  // host code, or the emulator's own
  const auto a = reinterpret_cast<uintptr_t>(address);
  const Ranges& r = ranges();
  if (a - r.shared_begin < r.shared_size) {
    if ((a & (bytes - 1)) != 0) access_fault(address, bytes, write, 0, 0);
    shared_check(t->linear, a - r.shared_begin, bytes, write);
    return;
  }
  if (a - reinterpret_cast<uintptr_t>(t->stack) < kStackBytes) return;  // its own locals
  for (int device = 0; device < kDeviceCount; ++device) {
    if (a - r.arena_begin[device] >= r.arena_size[device]) continue;
    if ((a & (bytes - 1)) != 0) access_fault(address, bytes, write, 1, device);
    if (device != t_block->launch->device) access_fault(address, bytes, write, 2, device);
    return;
  }
  if (a - t_block->launch->parameters < t_block->launch->parameter_bytes) return;
  if (!write && (a - r.program_begin < r.program_size || in_program_image(a))) return;  // the program's constants
  access_fault(address, bytes, write, 3, -1);
}

}  // namespace

EmulatorScope::EmulatorScope() : thread_(t_thread) {
  if (t_thread) ++t_thread->in_emulator;
}
EmulatorScope::~EmulatorScope() {
  if (thread_) --static_cast<ThreadState*>(thread_)->in_emulator;
}

// ---- Thread indices and shared memory -----------------------------------------------------------
uint3 thread_index() { return t_thread->index; }
uint3 block_index() { return t_block->index; }
dim3 block_dim() { return t_block->dim; }
dim3 grid_dim() { return t_block->grid; }

bool in_device_code() { return t_thread != nullptr; }
int current_linear_thread() { return t_thread->linear; }
std::string describe_current_thread() { return t_thread ? thread_text(*t_thread) : "host code"; }

uintptr_t shared_begin() { return reinterpret_cast<uintptr_t>(__start_sg_emu_shared); }
uintptr_t shared_end() { return reinterpret_cast<uintptr_t>(__stop_sg_emu_shared); }

void* dynamic_shared_memory() {
  if (!t_thread) fault("dynamic shared memory used outside device code");
  return g_dynamic_shared;
}

void note_static_shared(const void* variable, size_t bytes) {
  EmulatorScope scope;
  Launch& l = *t_block->launch;
  for (const auto& v : l.static_shared)
    if (v.first == variable) return;
  l.static_shared.emplace_back(variable, bytes);
  l.static_shared_bytes += bytes;
  const size_t limit = personality().shared_per_block;
  if (l.static_shared_bytes + l.dynamic_shared > limit)
    device_fault("uses " + std::to_string(l.static_shared_bytes) + " bytes of static and " +
                 std::to_string(l.dynamic_shared) + " bytes of dynamic shared memory; the emulated " +
                 personality().name + " allows " + std::to_string(limit) + " per block");
}

size_t shared_offset(const void* p, const char* file, int line) {
  EmulatorScope scope;
  const auto a = reinterpret_cast<uintptr_t>(p);
  if (a < shared_begin() || a >= shared_end())
    device_fault("__cvta_generic_to_shared of " + [&] {
      std::ostringstream s;
      s << p;
      return s.str();
    }() + ", which is not shared memory (" + file + ":" + std::to_string(line) + ")");
  return a - shared_begin();
}

// The launch configurations the tests use, for the ptxas resource check (scripts/kernel_resources.py
// compares each kernel's registers and shared memory with the threads and dynamic shared memory it is
// launched with). With SLIDEGRADE_EMULATED_LAUNCH_LOG=DIR, every process writes the distinct
// configurations it launched to DIR/launches-CARD-PID.tsv when it exits: card, threads per block,
// dynamic shared bytes, the kernel's __PRETTY_FUNCTION__.
class LaunchLog {
 public:
  static LaunchLog& instance() {
    static LaunchLog log;
    return log;
  }
  void record(const char* kernel, long threads, size_t dynamic_shared) {
    if (directory_.empty()) return;
    const std::lock_guard<std::mutex> lock(mutex_);
    seen_.emplace(kernel, threads, dynamic_shared);
  }
  ~LaunchLog() {
    if (directory_.empty() || seen_.empty()) return;
    const std::string path = directory_ + "/launches-" + personality().name + "-" + std::to_string(getpid()) + ".tsv";
    std::FILE* file = std::fopen(path.c_str(), "w");
    if (!file) {
      std::fprintf(stderr, "emulated CUDA device: cannot write the launch log %s\n", path.c_str());
      return;
    }
    for (const auto& [kernel, threads, shared] : seen_)
      std::fprintf(file, "%s\t%ld\t%zu\t%s\n", personality().name, threads, shared, kernel.c_str());
    if (std::fclose(file) != 0) std::fprintf(stderr, "emulated CUDA device: cannot write the launch log %s\n", path.c_str());
  }

 private:
  LaunchLog() {
    if (const char* dir = std::getenv("SLIDEGRADE_EMULATED_LAUNCH_LOG")) directory_ = dir;
  }
  std::string directory_;
  std::mutex mutex_;
  std::set<std::tuple<std::string, long, size_t>> seen_;
};

void kernel_entry(const char* name, int launch_bounds, int compiled_arch) {
  EmulatorScope scope;
  Launch& l = *t_block->launch;
  if (l.entry_checked) return;
  l.entry_checked = true;
  l.kernel_name = name;
  const long threads = long(l.block.x) * l.block.y * l.block.z;
  LaunchLog::instance().record(name, threads, l.dynamic_shared);
  if (launch_bounds > 0 && threads > launch_bounds)
    device_fault("launched with " + std::to_string(threads) + " threads per block, more than its __launch_bounds__(" +
                 std::to_string(launch_bounds) + ")");
  if (compiled_arch > personality().arch())
    device_fault("compiled for sm_" + std::to_string(compiled_arch / 10) + " but run on the emulated " +
                 personality().name + " (sm_" + std::to_string(personality().arch() / 10) + ")");
}

void shared_access_by(int thread, const void* address, size_t bytes, bool write) {
  const auto a = reinterpret_cast<uintptr_t>(address);
  if (a < shared_begin() || a + bytes > shared_end()) device_fault("a shared-memory operand outside shared memory");
  shared_check(thread, a - shared_begin(), bytes, write);
}

void global_access(const void* address, size_t bytes, bool write) {
  const auto a = reinterpret_cast<uintptr_t>(address);
  const int device = arena_device(a);
  if (device < 0) {
    std::ostringstream s;
    s << "a global-memory operand " << address << " that is not device memory";
    device_fault(s.str());
  }
  if (device != t_block->launch->device) device_fault("a global-memory operand of another device");
  if (!inside_device_allocation(address, bytes, device)) {
    std::ostringstream s;
    s << (write ? "writes " : "reads ") << bytes << " bytes at " << address << ", outside every cudaMalloc block";
    device_fault(s.str());
  }
}

// ---- Barriers and warp collectives ------------------------------------------------------------------
void syncthreads(const char* file, int line) { (void)syncthreads_reduce(0, -1, file, line); }

int syncthreads_reduce(int predicate, int how, const char* file, int line) {
  EmulatorScope scope;
  ThreadState* t = t_thread;
  if (!t) fault(std::string("__syncthreads called from host code (") + file + ":" + std::to_string(line) + ")");
  t->wait = Wait::barrier;
  t->file = file;
  t->line = line;
  t->predicate = predicate;
  t->reduce_how = how;
  switch_to_scheduler(*t);
  t->reduce_how = -1;
  return t->reduced;
}

void warp_collective(WarpPost& post) {
  EmulatorScope scope;
  ThreadState* t = t_thread;
  if (!t) fault(std::string("a warp collective called from host code (") + post.file + ")");
  const int lane = t->linear % 32;
  if (!(post.mask >> lane & 1u)) {
    std::ostringstream s;
    s << "lane " << lane << " calls a warp collective (" << post.file << ":" << post.line << ") whose mask 0x" << std::hex
      << post.mask << " does not include it";
    device_fault(s.str());
  }
  t->post = &post;
  t->wait = Wait::warp;
  switch_to_scheduler(*t);
  t->post = nullptr;
}

namespace {
struct ShufflePost {
  uint64_t value, result;
  int mode, operand, width;
};
void resolve_shuffle(WarpPost* const (&lanes)[32], unsigned mask) {
  for (int l = 0; l < 32; ++l) {
    if (!(mask >> l & 1u)) continue;
    auto& me = *static_cast<ShufflePost*>(lanes[l]->data);
    const int width = me.width, base = l & ~(width - 1), in_segment = l - base;
    int source = l;
    switch (me.mode) {
      case 0: source = base + (me.operand & (width - 1)); break;
      case 1: source = in_segment - me.operand >= 0 ? l - me.operand : l; break;
      case 2: source = in_segment + me.operand < width ? l + me.operand : l; break;
      case 3: source = base + ((in_segment ^ me.operand) & (width - 1)); break;
    }
    if (!(mask >> source & 1u)) {
      t_thread = nullptr;
      device_fault("a warp shuffle reads lane " + std::to_string(source) + ", which is not in its mask (undefined)");
    }
    me.result = static_cast<ShufflePost*>(lanes[source]->data)->value;
  }
}
struct VotePost {
  int predicate, how;
  unsigned result;
};
void resolve_vote(WarpPost* const (&lanes)[32], unsigned mask) {
  unsigned ballot = 0;
  for (int l = 0; l < 32; ++l)
    if ((mask >> l & 1u) && static_cast<VotePost*>(lanes[l]->data)->predicate) ballot |= 1u << l;
  for (int l = 0; l < 32; ++l) {
    if (!(mask >> l & 1u)) continue;
    auto& me = *static_cast<VotePost*>(lanes[l]->data);
    me.result = me.how == 0 ? ballot : me.how == 1 ? unsigned(ballot != 0) : unsigned(ballot == mask);
  }
}
void resolve_nothing(WarpPost* const (&)[32], unsigned) {}
}  // namespace

uint64_t shuffle(unsigned mask, uint64_t value, int mode, int operand, int width, const char* file, int line) {
  EmulatorScope scope;
  if (width < 1 || width > 32 || (width & (width - 1)))
    device_fault("a warp shuffle with width " + std::to_string(width) + " (a power of two up to 32)");
  ShufflePost data{value, 0, mode, operand, width};
  WarpPost post{mask, 1, file, line, &data, &resolve_shuffle};
  warp_collective(post);
  return data.result;
}

unsigned vote(unsigned mask, int predicate, int how, const char* file, int line) {
  EmulatorScope scope;
  VotePost data{predicate, how, 0};
  WarpPost post{mask, 2, file, line, &data, &resolve_vote};
  warp_collective(post);
  return data.result;
}

void syncwarp(unsigned mask, const char* file, int line) {
  WarpPost post{mask, 3, file, line, nullptr, &resolve_nothing};
  warp_collective(post);
}

void trap(const char* file, int line) {
  EmulatorScope scope;
  device_fault(std::string("executed __trap() at ") + file + ":" + std::to_string(line) +
               " (on a GPU: cudaErrorIllegalInstruction, the context is lost)");
}

// ---- cp.async ------------------------------------------------------------------------------------------
void async_copy_issue(const AsyncCopy& copy) {
  if (copy.source_bytes > 0) global_access(copy.global_source, size_t(copy.source_bytes), false);
  t_thread->open_group.push_back(copy);
}

void async_copy_commit() {
  ThreadState& t = *t_thread;
  t.committed_groups.push_back(std::move(t.open_group));
  t.open_group.clear();
}

void async_copy_wait(int pending_allowed) {
  ThreadState& t = *t_thread;
  while (int(t.committed_groups.size()) > pending_allowed) {
    for (const AsyncCopy& c : t.committed_groups.front()) {
      unsigned char bytes[16] = {};
      if (c.source_bytes > 0) std::memcpy(bytes, c.global_source, size_t(c.source_bytes));
      shared_access_by(t.linear, c.shared_destination, size_t(c.copy_bytes), true);
      std::memcpy(c.shared_destination, bytes, size_t(c.copy_bytes));
    }
    t.committed_groups.erase(t.committed_groups.begin());
  }
}

// ---- Launch ---------------------------------------------------------------------------------------------
void enqueue_launch(KernelBody* raw_body, dim3 grid, dim3 block, size_t dynamic_shared_bytes, cudaStream_t stream) {
  std::shared_ptr<KernelBody> body(raw_body);
  std::lock_guard lock(machine_mutex());
  const Personality& card = personality();
  const long threads = long(block.x) * block.y * block.z;
  std::ostringstream config;
  config << "a kernel launch with grid (" << grid.x << "," << grid.y << "," << grid.z << ") and block (" << block.x
         << "," << block.y << "," << block.z << ")";
  if (threads < 1 || threads > card.max_threads_per_block || block.x > 1024 || block.y > 1024 || block.z > 64) {
    set_error(cudaErrorInvalidConfiguration, config.str() + ": " + std::to_string(threads) +
                                                 " threads per block; the emulated " + card.name + " allows " +
                                                 std::to_string(card.max_threads_per_block));
    return;
  }
  if (grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
    set_error(cudaErrorInvalidConfiguration, config.str() + ": grid dimensions out of range");
    return;
  }
  if (dynamic_shared_bytes > card.shared_per_block) {
    set_error(cudaErrorInvalidValue, config.str() + ": " + std::to_string(dynamic_shared_bytes) +
                                         " bytes of dynamic shared memory; the emulated " + card.name + " allows " +
                                         std::to_string(card.shared_per_block) + " per block");
    return;
  }
  auto s = stream_state(stream, "kernel launch");
  if (!s) return;
  if (s->device != current_device()) {
    set_error(cudaErrorInvalidResourceHandle, config.str() + " on a stream of cuda:" + std::to_string(s->device) +
                                                  " while cuda:" + std::to_string(current_device()) + " is current");
    return;
  }
  auto launch = std::make_shared<Launch>();
  launch->body = std::move(body);
  launch->grid = grid;
  launch->block = block;
  launch->dynamic_shared = dynamic_shared_bytes;
  launch->device = s->device;
  Operation op;
  op.what = config.str();
  op.run = [launch] { execute(*launch); };
  enqueue(s, std::move(op));
}

}  // namespace sg_emu

// ---- Load and store hooks (clang's -fsanitize-coverage=trace-loads,trace-stores) --------------------
// Every load and store of the kernel translation units calls one of these with its address.
extern "C" {
void __sanitizer_cov_load1(uint8_t* p) { sg_emu::check_access(p, 1, false); }
void __sanitizer_cov_load2(uint16_t* p) { sg_emu::check_access(p, 2, false); }
void __sanitizer_cov_load4(uint32_t* p) { sg_emu::check_access(p, 4, false); }
void __sanitizer_cov_load8(uint64_t* p) { sg_emu::check_access(p, 8, false); }
void __sanitizer_cov_load16(__int128* p) { sg_emu::check_access(p, 16, false); }
void __sanitizer_cov_store1(uint8_t* p) { sg_emu::check_access(p, 1, true); }
void __sanitizer_cov_store2(uint16_t* p) { sg_emu::check_access(p, 2, true); }
void __sanitizer_cov_store4(uint32_t* p) { sg_emu::check_access(p, 4, true); }
void __sanitizer_cov_store8(uint64_t* p) { sg_emu::check_access(p, 8, true); }
void __sanitizer_cov_store16(__int128* p) { sg_emu::check_access(p, 16, true); }
}
