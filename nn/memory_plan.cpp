#include "nn/memory_plan.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <unordered_map>

#include "core/allocator.h"
#include "core/error.h"
#include "kernels/batch_norm.h"
#include "kernels/conv2d_params.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cuda_channel_reduce_layout.h"
#include "kernels/cuda_conv2d_scratch.h"
#include "kernels/cuda_kernel_paths.h"
#include "kernels/pooling.h"
#include "nn/optimizer_kind.h"
#include "nn/precision.h"

namespace sg::nn {

// What the allocator hands out for a request of `bytes` (its block rounding).
size_t allocator_bytes(size_t bytes) { return Allocator::round_size(bytes); }

int64_t optimizer_state_count(std::string_view optimizer) {
  switch (parse_word(kOptimizerWords, optimizer)) {
    case OptimizerKind::adamw: return 2;
    case OptimizerKind::sgd: return 1;
  }
  return 0;
}

namespace {

// ---- the replay's allocator --------------------------------------------------------------
enum class Kind { weights, compute_weights, gradients, optimizer_state, batch, activation, workspace };

class Ledger;

// One allocation; freed (uncounted) when the last shape-only tensor using it goes.
struct Block {
  Block(Ledger* owner, size_t size, Kind what) : ledger(owner), bytes(size), kind(what) {}
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
  ~Block();
  Ledger* ledger;
  size_t bytes;
  Kind kind;
  int saved_refs = 0;  // > 0: kept in the Context for backward
};

class Ledger {
 public:
  std::shared_ptr<Block> allocate(size_t raw_bytes, Kind kind) {
    if (raw_bytes == 0) return nullptr;  // Storage allocates nothing for an empty tensor
    auto block = std::make_shared<Block>(this, allocator_bytes(raw_bytes), kind);
    part(kind, false) += block->bytes;
    current_ += block->bytes;
    if (current_ > peak_) {
      peak_ = current_;
      at_peak_ = parts_;
      peak_at_ = where_;
    }
    return block;
  }
  void release(const Block& block) {
    part(block.kind, block.saved_refs > 0) -= block.bytes;
    current_ -= block.bytes;
  }
  // A block kept for backward counts as saved while any Context entry holds it.
  void mark_saved(Block& block, int delta) {
    if (block.kind != Kind::activation) return;
    const bool was = block.saved_refs > 0;
    block.saved_refs += delta;
    const bool is = block.saved_refs > 0;
    if (was != is) {
      part(block.kind, was) -= block.bytes;
      part(block.kind, is) += block.bytes;
    }
  }
  void set_where(std::string where) { where_ = std::move(where); }
  size_t peak() const { return peak_; }
  const MemoryParts& at_peak() const { return at_peak_; }
  const std::string& peak_at() const { return peak_at_; }
  const MemoryParts& now() const { return parts_; }

 private:
  size_t& part(Kind kind, bool saved) {
    switch (kind) {
      case Kind::weights: return parts_.weights;
      case Kind::compute_weights: return parts_.compute_weights;
      case Kind::gradients: return parts_.gradients;
      case Kind::optimizer_state: return parts_.optimizer_state;
      case Kind::batch: return parts_.batch;
      case Kind::workspace: return parts_.workspace;
      case Kind::activation: return saved ? parts_.saved : parts_.temporaries;
    }
    return parts_.temporaries;
  }
  size_t current_ = 0, peak_ = 0;
  MemoryParts parts_, at_peak_;
  std::string where_, peak_at_;
};

Block::~Block() { ledger->release(*this); }

// A shape-only tensor: shares its Block like Tensor shares its Storage.
struct T {
  Shape shape;
  DType dtype = DType::f32;
  std::shared_ptr<Block> block;
};

// ---- the replay's Context ------------------------------------------------------------------
class PlanContext {
 public:
  // take_cublas_workspace: on CUDA, the first GEMM takes the handle's workspace (false: the
  // process holds it already).
  explicit PlanContext(Ledger& ledger, DType activations, bool cuda, int cuda_arch, bool take_cublas_workspace)
      : ledger_(ledger), activations_(activations), cuda_(cuda), cuda_arch_(cuda_arch),
        take_cublas_workspace_(cuda && take_cublas_workspace) {}

  T tensor(const Shape& shape, DType dtype, Kind kind = Kind::activation) {
    return T{shape, dtype, ledger_.allocate(size_t(shape.numel()) * dtype_size(dtype), kind)};
  }
  // Scratch that lives for one kernel call: allocated together, then freed.
  void scratch(std::initializer_list<size_t> byte_counts) { scratch(std::vector<size_t>(byte_counts)); }
  void scratch(const std::vector<size_t>& byte_counts) {
    std::vector<std::shared_ptr<Block>> held;
    for (size_t bytes : byte_counts) held.push_back(ledger_.allocate(bytes, Kind::activation));
  }

  void save(const void* key, std::vector<T> tensors) {
    if (!keep_) return;
    for (T& t : tensors)
      if (t.block) ledger_.mark_saved(*t.block, +1);
    auto it = saved_.find(key);
    if (it != saved_.end()) unmark(it->second);
    saved_[key] = std::move(tensors);
  }
  std::vector<T> take(const void* key, const std::string& name) {
    auto it = saved_.find(key);
    SG_CHECK(it != saved_.end(), "memory plan: backward of '", name, "' without its forward (a bug in the plan)");
    std::vector<T> out = std::move(it->second);
    saved_.erase(it);
    unmark(out);
    return out;
  }
  size_t saved_count() const { return saved_.size(); }

  Ledger& ledger() { return ledger_; }
  DType activations() const { return activations_; }
  bool cuda() const { return cuda_; }
  int cuda_arch() const { return cuda_arch_; }
  // The cuBLAS handle's workspace: taken at the first GEMM and kept (kernels/cuda/linear.cu).
  void cublas_workspace() {
    if (take_cublas_workspace_ && !cublas_workspace_)
      cublas_workspace_ = ledger_.allocate(cublas_workspace_bytes(cuda_arch_), Kind::workspace);
  }
  bool recomputing = false;  // Context::recomputing()
  bool& keep_ref() { return keep_; }  // Context::keep_for_backward()

 private:
  void unmark(std::vector<T>& tensors) {
    for (T& t : tensors)
      if (t.block) ledger_.mark_saved(*t.block, -1);
  }
  Ledger& ledger_;
  DType activations_;
  bool cuda_;
  int cuda_arch_;
  bool take_cublas_workspace_;
  std::shared_ptr<Block> cublas_workspace_;
  bool keep_ = true;
  std::unordered_map<const void*, std::vector<T>> saved_;
};

// ---- kernel scratch --------------------------------------------------------------------------
// The partial sums of a CUDA per-channel reduction over M rows of C channels (rows 16-byte
// aligned, as the allocator's tensors are).
size_t cuda_channel_partials_bytes(int64_t M, int64_t C, DType dtype) {
  const ChannelLayout layout = channel_layout(M, C, channel_vector_width(C, dtype_size(dtype), true));
  return size_t(channel_reduce_workspace_floats(layout, C)) * sizeof(float);
}

// The buffers one CPU conv2d call allocates, all live together, as the kernel computes them.
void cpu_conv_scratch(PlanContext& ctx, cpu::Conv2dPass pass, const Conv2dParams& p, const Conv2dShape& s,
                      DType dtype) {
  const cpu::Conv2dCpuWorkspace workspace = cpu::conv2d_cpu_workspace(pass, p, s, dtype);
  if (workspace.buffer_floats.empty()) return;
  std::vector<size_t> bytes;
  for (const int64_t floats : workspace.buffer_floats) bytes.push_back(cpu::conv2d_cpu_buffer_bytes(floats));
  ctx.scratch(bytes);
}

// ---- the network as the replay sees it ---------------------------------------------------
struct ConvSpec {
  std::string name;
  Conv2dOptions o;
  bool input_grad = true;
  int64_t weight_numel() const { return o.out_channels * o.kernel * o.kernel * (o.in_channels / o.groups); }
};
struct BnSpec {
  std::string name;
  int64_t channels;
};
struct SeSpec {
  std::string name;
  int64_t channels, reduced;
};
struct BlockSpec {
  std::string name;
  MBConvOptions o;
  bool residual = false;
  bool expand = false, se = false;
  ConvSpec expand_conv, depthwise_conv, project_conv;
  BnSpec expand_bn, depthwise_bn, project_bn;
  SeSpec se_spec;
};
struct NetSpec {
  ConvSpec stem;
  BnSpec bn1;
  std::vector<BlockSpec> blocks;
  ConvSpec conv_head;
  BnSpec bn2;
  HeadOptions head;
};

NetSpec net_spec(const EfficientNetConfig& c) {
  const EfficientNetLayout layout = efficientnet_layout(c);
  NetSpec net;
  net.stem = {"conv_stem", Conv2dOptions{3, layout.stem_channels, 3, 2, 1, c.padding, false}, false};
  net.bn1 = {"bn1", layout.stem_channels};
  const std::vector<MBConvOptions> options = efficientnet_block_options(c);
  size_t index = 0;
  for (size_t stage = 0; stage < layout.stages.size(); ++stage)
    for (int64_t j = 0; j < layout.stages[stage].repeats; ++j, ++index) {
      const MBConvOptions& o = options[index];
      BlockSpec b;
      b.name = detail::concat("blocks.", stage, ".", j);
      b.o = o;
      b.residual = o.stride == 1 && o.in_channels == o.out_channels;
      b.expand = o.expand_ratio != 1;
      const int64_t hidden = o.in_channels * o.expand_ratio;
      b.expand_conv = {b.name + ".conv_pw", Conv2dOptions{o.in_channels, hidden, 1, 1, 1, o.padding, false}};
      b.expand_bn = {b.name + ".bn1", hidden};
      b.depthwise_conv = {b.name + ".conv_dw", Conv2dOptions{hidden, hidden, o.kernel, o.stride, hidden, o.padding, false}};
      b.depthwise_bn = {b.name + ".bn2", hidden};
      b.se = o.se_ratio > 0;
      b.se_spec = {b.name + ".se", hidden, std::max<int64_t>(1, int64_t(double(o.in_channels) * o.se_ratio))};
      b.project_conv = {b.name + ".conv_pwl", Conv2dOptions{hidden, o.out_channels, 1, 1, 1, o.padding, false}};
      b.project_bn = {b.name + ".bn3", o.out_channels};
      net.blocks.push_back(b);
    }
  const int64_t last = layout.stages.back().out_channels;
  net.conv_head = {"conv_head", Conv2dOptions{last, layout.head_channels, 1, 1, 1, c.padding, false}};
  net.bn2 = {"bn2", layout.head_channels};
  net.head = HeadOptions{layout.head_channels, c.outputs, c.pooling, c.dropout, 3.0};
  return net;
}

int64_t head_features(const HeadOptions& h) { return h.pooling == HeadPooling::avg_max ? 2 * h.in_channels : h.in_channels; }

// ---- persistent state: parameters, gradients, optimizer state, buffers, compute copies ----
struct Persistent {
  std::vector<std::shared_ptr<Block>> blocks;
  int64_t parameters = 0;
};

void add_parameter(PlanContext& ctx, Persistent& state, int64_t numel, bool compute_copy, int64_t optimizer_states) {
  const size_t bytes = size_t(numel) * sizeof(float);
  state.parameters += numel;
  state.blocks.push_back(ctx.ledger().allocate(bytes, Kind::weights));
  state.blocks.push_back(ctx.ledger().allocate(bytes, Kind::gradients));
  for (int64_t i = 0; i < optimizer_states; ++i) state.blocks.push_back(ctx.ledger().allocate(bytes, Kind::optimizer_state));
  if (compute_copy && ctx.activations() != DType::f32)
    state.blocks.push_back(
        ctx.ledger().allocate(size_t(numel) * dtype_size(ctx.activations()), Kind::compute_weights));
}

void add_bn(PlanContext& ctx, Persistent& state, const BnSpec& bn, int64_t optimizer_states) {
  add_parameter(ctx, state, bn.channels, false, optimizer_states);  // gamma
  add_parameter(ctx, state, bn.channels, false, optimizer_states);  // beta
  for (int i = 0; i < 2; ++i)  // running mean and variance
    state.blocks.push_back(ctx.ledger().allocate(size_t(bn.channels) * sizeof(float), Kind::weights));
}

Persistent persistent_state(PlanContext& ctx, const NetSpec& net, int64_t optimizer_states) {
  Persistent state;
  auto conv = [&](const ConvSpec& c) { add_parameter(ctx, state, c.weight_numel(), true, optimizer_states); };
  conv(net.stem);
  add_bn(ctx, state, net.bn1, optimizer_states);
  for (const BlockSpec& b : net.blocks) {
    if (b.expand) {
      conv(b.expand_conv);
      add_bn(ctx, state, b.expand_bn, optimizer_states);
    }
    conv(b.depthwise_conv);
    add_bn(ctx, state, b.depthwise_bn, optimizer_states);
    if (b.se) {
      const SeSpec& s = b.se_spec;
      add_parameter(ctx, state, s.reduced * s.channels, true, optimizer_states);
      add_parameter(ctx, state, s.reduced, false, optimizer_states);  // biases stay f32 (bias_activation)
      add_parameter(ctx, state, s.channels * s.reduced, true, optimizer_states);
      add_parameter(ctx, state, s.channels, false, optimizer_states);
    }
    conv(b.project_conv);
    add_bn(ctx, state, b.project_bn, optimizer_states);
  }
  conv(net.conv_head);
  add_bn(ctx, state, net.bn2, optimizer_states);
  if (net.head.pooling == HeadPooling::gem) add_parameter(ctx, state, 1, false, optimizer_states);
  add_parameter(ctx, state, net.head.outputs * head_features(net.head), true, optimizer_states);
  add_parameter(ctx, state, net.head.outputs, true, optimizer_states);  // linear's bias: the activations' dtype
  return state;
}

// ---- the modules, replayed (each mirrors its nn/*.cpp forward and backward) ---------------
struct Replay {
  PlanContext& ctx;
  int64_t macs = 0;  // forward MACs replayed (recomputes included)

  Conv2dParams conv_params(const ConvSpec& c, const Shape& x) const {
    return make_conv2d_params(c.o.kernel, c.o.kernel, c.o.stride, c.o.padding, x[1], x[2], c.o.groups);
  }
  Conv2dShape conv_shape(const ConvSpec& c, const Conv2dParams& p, const Shape& x) const {
    Conv2dShape s;
    s.n = x[0], s.h = x[1], s.w = x[2], s.c_in = x[3], s.c_out = c.o.out_channels;
    s.out_h = conv2d_output_extent(x[1], p.kernel_h, p.stride_h, p.pad_top, p.pad_bottom);
    s.out_w = conv2d_output_extent(x[2], p.kernel_w, p.stride_w, p.pad_left, p.pad_right);
    SG_CHECK(s.out_h >= 1 && s.out_w >= 1, "memory plan: '", c.name, "': input ", x.str(), " is too small");
    return s;
  }

  // nn/conv2d.cpp
  T conv_forward(const ConvSpec& c, const T& x) {
    const Conv2dParams p = conv_params(c, x.shape);
    const Conv2dShape s = conv_shape(c, p, x.shape);
    T y = ctx.tensor({s.n, s.out_h, s.out_w, s.c_out}, x.dtype);
    if (!ctx.cuda()) cpu_conv_scratch(ctx, cpu::Conv2dPass::forward, p, s, x.dtype);
    macs += s.n * s.out_h * s.out_w * s.c_out * c.o.kernel * c.o.kernel * (c.o.in_channels / c.o.groups);
    ctx.save(&c, {x});
    return y;
  }
  T conv_backward(const ConvSpec& c, const T& dy) {
    const std::vector<T> saved = ctx.take(&c, c.name);
    const T& x = saved.at(0);
    const Conv2dParams p = conv_params(c, x.shape);
    const Conv2dShape s = conv_shape(c, p, x.shape);
    T dw = ctx.tensor({c.o.out_channels, c.o.kernel, c.o.kernel, c.o.in_channels / c.o.groups}, dy.dtype);
    if (ctx.cuda())
      ctx.scratch(cuda_conv2d_backward_weight_scratch(p, s, dy.dtype, ctx.cuda_arch(), c.o.bias));
    else
      cpu_conv_scratch(ctx, cpu::Conv2dPass::backward_weight, p, s, dy.dtype);
    accumulate_grad(dw);
    if (!c.input_grad) return {};
    T dx = ctx.tensor(x.shape, dy.dtype);
    if (!ctx.cuda()) cpu_conv_scratch(ctx, cpu::Conv2dPass::backward_input, p, s, dy.dtype);
    return dx;
  }

  // nn/precision.cpp accumulate_grad: an f16/bf16 weight gradient goes through an f32 temporary.
  void accumulate_grad(const T& g) {
    if (const int64_t floats = nn::accumulate_grad_scratch_floats(g.shape.numel(), g.dtype))
      ctx.scratch({size_t(floats) * sizeof(float)});
  }

  // nn/batch_norm2d.cpp (training mode)
  T bn_forward(const BnSpec& b, const T& x) {
    T y = ctx.tensor(x.shape, x.dtype);
    T mean = ctx.tensor({b.channels}, DType::f32), invstd = ctx.tensor({b.channels}, DType::f32);
    {
      T mean_copy, var_copy;
      if (ctx.recomputing) {
        mean_copy = ctx.tensor({b.channels}, DType::f32);
        var_copy = ctx.tensor({b.channels}, DType::f32);
      }
      if (ctx.cuda()) ctx.scratch({cuda_channel_partials_bytes(x.shape.numel() / b.channels, b.channels, x.dtype)});
    }
    ctx.save(&b, {x, mean, invstd});
    return y;
  }
  T bn_backward(const BnSpec& b, const T& dy) {
    const std::vector<T> saved = ctx.take(&b, b.name);
    const T& x = saved.at(0);
    T dx = ctx.tensor(x.shape, dy.dtype);
    T dgamma = ctx.tensor({b.channels}, DType::f32), dbeta = ctx.tensor({b.channels}, DType::f32);
    if (ctx.cuda())
      ctx.scratch({size_t(cuda_batch_norm_backward_scratch_floats(b.channels)) * sizeof(float),
                   cuda_channel_partials_bytes(x.shape.numel() / b.channels, b.channels, x.dtype)});
    return dx;
  }

  // nn/squeeze_excite.cpp
  T se_forward(const SeSpec& se, const T& x) {
    const int64_t n = x.shape[0], c = se.channels, r = se.reduced;
    T pooled = ctx.tensor({n, c}, x.dtype);
    T z1 = ctx.tensor({n, r}, x.dtype);
    linear_gemm(x.dtype, n, r, c);  // z1 = pooled w_r^T
    T a = ctx.tensor({n, r}, x.dtype);
    T z2 = ctx.tensor({n, c}, x.dtype);
    linear_gemm(x.dtype, n, c, r);  // z2 = a w_e^T
    T s = ctx.tensor({n, c}, x.dtype);
    T y = ctx.tensor(x.shape, x.dtype);
    macs += n * 2 * c * r;
    ctx.save(&se, {x, pooled, z1, a, z2, s});
    return y;
  }
  T se_backward(const SeSpec& se, const T& dy) {
    const std::vector<T> saved = ctx.take(&se, se.name);
    const T& x = saved.at(0);
    const int64_t n = x.shape[0], c = se.channels, r = se.reduced;
    const DType dt = dy.dtype;
    T dx = ctx.tensor(x.shape, dt);
    T ds = ctx.tensor({n, c}, dt);
    T dz2 = ctx.tensor({n, c}, dt);
    T dbe = ctx.tensor({c}, DType::f32);
    if (ctx.cuda()) ctx.scratch({cuda_channel_partials_bytes(n, c, dt)});
    T dwe = ctx.tensor({c, r}, dt);
    linear_gemm(dt, c, r, n);  // dw_e = dz2^T a
    accumulate_grad(dwe);
    T da = ctx.tensor({n, r}, dt);
    linear_gemm(dt, n, r, c);  // da = dz2 w_e
    T dz1 = ctx.tensor({n, r}, dt);
    T dbr = ctx.tensor({r}, DType::f32);
    if (ctx.cuda()) ctx.scratch({cuda_channel_partials_bytes(n, r, dt)});
    T dwr = ctx.tensor({r, c}, dt);
    linear_gemm(dt, r, c, n);  // dw_r = dz1^T pooled
    accumulate_grad(dwr);
    T dpooled = ctx.tensor({n, c}, dt);
    linear_gemm(dt, n, c, r);  // dpooled = dz1 w_r
    T dx_pool = ctx.tensor(x.shape, dt);
    return dx;
  }

  // nn/mbconv.cpp (training mode)
  bool draws_mask(const BlockSpec& b) const { return b.residual && b.o.drop_connect > 0; }
  T block_forward(const BlockSpec& b, const T& x) {
    T h = x;
    if (b.expand) h = bn_forward(b.expand_bn, conv_forward(b.expand_conv, h));
    h = bn_forward(b.depthwise_bn, conv_forward(b.depthwise_conv, h));
    if (b.se) h = se_forward(b.se_spec, h);
    h = bn_forward(b.project_bn, conv_forward(b.project_conv, h));
    // drop-connect and the residual add work in place
    ctx.save(&b, {});
    return h;
  }
  T block_backward(const BlockSpec& b, const T& dy) {
    const std::vector<T> saved = ctx.take(&b, b.name);
    T dh = dy;
    if (draws_mask(b)) dh = ctx.tensor(dy.shape, dy.dtype);
    dh = conv_backward(b.project_conv, bn_backward(b.project_bn, dh));
    if (b.se) dh = se_backward(b.se_spec, dh);
    dh = conv_backward(b.depthwise_conv, bn_backward(b.depthwise_bn, dh));
    if (b.expand) dh = conv_backward(b.expand_conv, bn_backward(b.expand_bn, dh));
    return dh;
  }

  // nn/checkpointing.cpp
  T checkpointed_forward(const BlockSpec& b, const T& x) {
    T y;
    ctx.keep_ref() = false;
    y = block_forward(b, x);
    ctx.keep_ref() = true;
    ctx.save(&b, {x});
    return y;
  }
  T checkpointed_backward(const BlockSpec& b, const T& dy) {
    std::vector<T> record = ctx.take(&b, b.name + " (checkpointed)");
    T x = std::move(record.at(0));
    record.clear();
    ctx.ledger().set_where("backward of " + b.name + " (recompute)");
    ctx.recomputing = true;
    block_forward(b, x);
    ctx.recomputing = false;
    x = T();
    ctx.ledger().set_where("backward of " + b.name);
    return block_backward(b, dy);
  }

  // One linear layer's GEMM C [m, n] = A [m, k] B [k, n] (kernels/cuda/linear.cu). On CUDA it is a
  // cuBLAS GEMM: the first takes the handle's workspace, kept from then on; and cuBLAS has no bf16
  // GEMM before sm_70, where it runs in f32 on widened copies of the three matrices.
  void linear_gemm(DType dtype, int64_t m, int64_t n, int64_t k) {
    if (!ctx.cuda()) return;
    std::vector<std::shared_ptr<Block>> widened;  // live until the GEMM has run
    if (dtype == DType::bf16 && ctx.cuda_arch() < kCublasBf16MinArch)
      for (const int64_t floats : {m * k, k * n, m * n})
        widened.push_back(ctx.ledger().allocate(size_t(floats) * sizeof(float), Kind::activation));
    ctx.cublas_workspace();
  }

  // nn/head.cpp (training mode)
  T head_forward(const HeadOptions& h, const T& x) {
    const int64_t n = x.shape[0], c = h.in_channels, f = head_features(h);
    T features = ctx.tensor({n, f}, x.dtype);
    T argmax;
    switch (h.pooling) {
      case HeadPooling::avg: break;
      case HeadPooling::gem: break;
      case HeadPooling::max: argmax = ctx.tensor({n, c}, DType::i32); break;
      case HeadPooling::avg_max: {
        argmax = ctx.tensor({n, c}, DType::i32);
        T avg = ctx.tensor({n, c}, x.dtype), max = ctx.tensor({n, c}, x.dtype);
        break;
      }
    }
    T y = ctx.tensor({n, h.outputs}, x.dtype);
    linear_gemm(x.dtype, n, h.outputs, f);  // y = features w^T
    macs += n * h.outputs * f;
    ctx.save(&h, {features, argmax, h.pooling == HeadPooling::gem ? x : T()});
    return y;
  }
  T head_backward(const HeadOptions& h, const T& dy, const Shape& input) {
    const std::vector<T> saved = ctx.take(&h, "head");
    const int64_t n = input[0], c = h.in_channels, f = head_features(h);
    const DType dt = dy.dtype;
    T dw = ctx.tensor({h.outputs, f}, dt);
    T db = ctx.tensor({h.outputs}, dt);
    linear_gemm(dt, h.outputs, f, n);  // dw = dy^T features
    accumulate_grad(dw);
    accumulate_grad(db);
    T dfeatures = ctx.tensor({n, f}, dt);
    linear_gemm(dt, n, f, h.outputs);  // dfeatures = dy w
    T dx = ctx.tensor(input, dt);
    switch (h.pooling) {
      case HeadPooling::avg:
      case HeadPooling::max: break;
      case HeadPooling::gem: {
        T dp = ctx.tensor({1}, DType::f32);
        if (ctx.cuda()) ctx.scratch({size_t(cuda_gem_pool_backward_workspace_floats(n, c)) * sizeof(float)});
        break;
      }
      case HeadPooling::avg_max: {
        T davg = ctx.tensor({n, c}, dt), dmax = ctx.tensor({n, c}, dt);
        T dx_max = ctx.tensor(input, dt);
        break;
      }
    }
    return dx;
  }
};

struct StepReplay {
  const NetSpec& net;
  std::vector<bool> checkpointed;
  Replay replay;
  Shape head_input;

  // nn/efficientnet.cpp
  T forward(const T& x) {
    PlanContext& ctx = replay.ctx;
    ctx.ledger().set_where("forward of the stem");
    T h = replay.bn_forward(net.bn1, replay.conv_forward(net.stem, x));
    for (size_t i = 0; i < net.blocks.size(); ++i) {
      ctx.ledger().set_where("forward of " + net.blocks[i].name);
      h = checkpointed[i] ? replay.checkpointed_forward(net.blocks[i], h) : replay.block_forward(net.blocks[i], h);
    }
    ctx.ledger().set_where("forward of the head");
    h = replay.bn_forward(net.bn2, replay.conv_forward(net.conv_head, h));
    head_input = h.shape;
    T logits = replay.head_forward(net.head, h);
    // The logits leave the network in f32: a copy when the activations are f16/bf16 (cast_to).
    if (logits.dtype != DType::f32) logits = ctx.tensor(logits.shape, DType::f32);
    return logits;
  }
  // dlogits: f32, as the loss writes it; the network takes a copy in the activations' dtype for
  // the whole of its backward.
  T backward(const T& dlogits) {
    PlanContext& ctx = replay.ctx;
    ctx.ledger().set_where("backward of the head");
    const T dy = dlogits.dtype == ctx.activations() ? dlogits : ctx.tensor(dlogits.shape, ctx.activations());
    T dh = replay.head_backward(net.head, dy, head_input);
    dh = replay.conv_backward(net.conv_head, replay.bn_backward(net.bn2, dh));
    for (size_t i = net.blocks.size(); i-- > 0;) {
      ctx.ledger().set_where("backward of " + net.blocks[i].name);
      dh = checkpointed[i] ? replay.checkpointed_backward(net.blocks[i], dh) : replay.block_backward(net.blocks[i], dh);
    }
    ctx.ledger().set_where("backward of the stem");
    return replay.conv_backward(net.stem, replay.bn_backward(net.bn1, dh));
  }
};

void check_request(const MemoryPlanRequest& r) {
  SG_CHECK(r.batch >= 1, "memory plan: batch ", r.batch, " must be >= 1");
  SG_CHECK(r.height >= EfficientNet::kMinImageSize && r.width >= EfficientNet::kMinImageSize, "memory plan: image ",
           r.height, "x", r.width, " is too small: at least ", EfficientNet::kMinImageSize, "x",
           EfficientNet::kMinImageSize, " (the network downsamples by 32)");
  SG_CHECK(r.activations == DType::f32 || r.activations == DType::f16 || r.activations == DType::bf16,
           "memory plan: activations must be f32, f16 or bf16, got ", dtype_name(r.activations));
  SG_CHECK(r.optimizer_states >= 0, "memory plan: ", r.optimizer_states, " optimizer states per parameter");
  SG_CHECK(!r.checkpointing.is_automatic(),
           "memory plan: checkpointing 'auto' needs a budget (choose_checkpointing / --memory)");
}

}  // namespace

MemoryPlan plan_training_step(const MemoryPlanRequest& request) {
  check_request(request);
  const NetSpec net = net_spec(request.config);
  Ledger ledger;
  PlanContext ctx(ledger, request.activations, request.cuda, request.cuda_arch, !request.cublas_workspace_held);
  MemoryPlan plan;
  plan.checkpointed = request.checkpointing.resolve(int64_t(net.blocks.size()));

  ledger.set_where("model and optimizer");
  const Persistent state = persistent_state(ctx, net, request.optimizer_states);
  plan.parameters = state.parameters;
  // The step as a trainer runs it: the batch, forward, cross-entropy, backward, optimizer step
  // (in place: no allocation).
  const T x = ctx.tensor({request.batch, request.height, request.width, 3}, request.activations, Kind::batch);
  const T targets = ctx.tensor({request.batch}, DType::i32, Kind::batch);
  {
    StepReplay step{net, plan.checkpointed, Replay{ctx}, {}};
    const T logits = step.forward(x);
    plan.forward_macs = step.replay.macs;
    plan.saved_after_forward = ledger.now().saved;
    plan.in_use_after_forward = ledger.now().total();
    ledger.set_where("loss");
    const T loss = ctx.tensor({1}, DType::f32);
    const T dlogits = ctx.tensor(logits.shape, logits.dtype);
    step.backward(dlogits);
    plan.recomputed_macs = step.replay.macs - plan.forward_macs;
    SG_CHECK(ctx.saved_count() == 0, "memory plan: ", ctx.saved_count(), " entries left after backward (a bug in the plan)");
  }
  plan.peak = ledger.peak();
  plan.at_peak = ledger.at_peak();
  plan.peak_at = ledger.peak_at();
  return plan;
}

std::optional<CheckpointPolicy> choose_checkpointing(const MemoryPlanRequest& request, size_t budget) {
  MemoryPlanRequest r = request;
  r.checkpointing = CheckpointPolicy::none();
  if (plan_training_step(r).peak <= budget) return r.checkpointing;
  // Rank blocks by activation bytes freed per recomputed MAC: each block alone, checkpointed,
  // against none (its internals minus its input).
  const NetSpec net = net_spec(r.config);
  const size_t count = net.blocks.size();
  const MemoryPlan none = plan_training_step(r);
  std::vector<double> score(count);
  for (size_t i = 0; i < count; ++i) {
    std::vector<bool> one(count, false);
    one[i] = true;
    r.checkpointing = CheckpointPolicy::blocks(one);
    const MemoryPlan p = plan_training_step(r);
    const double freed = double(none.saved_after_forward) - double(p.saved_after_forward);
    score[i] = freed / double(std::max<int64_t>(1, p.recomputed_macs));
  }
  std::vector<size_t> order(count);
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  std::vector<bool> selected(count, false);
  for (size_t i : order) {
    selected[i] = true;
    r.checkpointing = CheckpointPolicy::blocks(selected);
    if (plan_training_step(r).peak <= budget) {
      if (std::all_of(selected.begin(), selected.end(), [](bool s) { return s; })) return CheckpointPolicy::every_block();
      return r.checkpointing;
    }
  }
  return std::nullopt;
}

int64_t largest_batch(const MemoryPlanRequest& request, size_t budget, int64_t max_batch) {
  auto fits = [&](int64_t batch) {
    MemoryPlanRequest r = request;
    r.batch = batch;
    if (r.checkpointing.is_automatic()) return choose_checkpointing(r, budget).has_value();
    return plan_training_step(r).peak <= budget;
  };
  if (!fits(1)) return 0;
  int64_t good = 1, bad = 2;
  while (bad <= max_batch && fits(bad)) {
    good = bad;
    bad *= 2;
  }
  if (bad > max_batch) {
    if (fits(max_batch)) return max_batch;
    bad = max_batch;
  }
  while (bad - good > 1) {
    const int64_t mid = good + (bad - good) / 2;
    (fits(mid) ? good : bad) = mid;
  }
  return good;
}

}  // namespace sg::nn
