#include "nn/checkpointing.h"

#include <algorithm>
#include <charconv>

#include "core/error.h"

namespace sg::nn {

namespace {

constexpr const char* kForms = "none, every, every:K (K >= 1), blocks:I,J,... or auto";

int64_t parse_count(std::string_view text, std::string_view whole) {
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  SG_CHECK(ec == std::errc() && end == text.data() + text.size() && !text.empty(), "checkpoint policy '", whole,
           "': '", text, "' is not a whole number (expected ", kForms, ")");
  return value;
}

// Restores a Context flag however the scope ends (a block's forward may throw).
class FlagScope {
 public:
  FlagScope(Context& ctx, bool keep, bool recomputing)
      : ctx_(ctx), keep_(ctx.keep_for_backward()), recomputing_(ctx.recomputing()) {
    ctx_.set_keep_for_backward(keep);
    ctx_.set_recomputing(recomputing);
  }
  ~FlagScope() {
    ctx_.set_keep_for_backward(keep_);
    ctx_.set_recomputing(recomputing_);
  }
  FlagScope(const FlagScope&) = delete;
  FlagScope& operator=(const FlagScope&) = delete;

 private:
  Context& ctx_;
  bool keep_, recomputing_;
};

// What a checkpointed block keeps between its forward and its backward: its input and the random
// offsets its first pass drew, so the recompute draws the same dropout and drop-connect masks.
struct CheckpointRecord {
  Tensor x;
  uint64_t rng_offset = 0;  // the first offset the block drew
  uint64_t rng_count = 0;   // how many it drew
  std::vector<const Tensor*> tensors() const { return {&x}; }
};

}  // namespace

CheckpointPolicy CheckpointPolicy::every_kth_block(int64_t k) {
  SG_CHECK(k >= 1, "checkpoint policy: every k-th block needs k >= 1, got ", k);
  return {k == 1 ? Kind::every_block : Kind::every_kth_block, k, {}};
}

std::vector<bool> CheckpointPolicy::resolve(int64_t block_count) const {
  SG_CHECK(block_count >= 0, "checkpoint policy: block count ", block_count, " is negative");
  std::vector<bool> flags(size_t(block_count), false);
  switch (kind) {
    case Kind::none: break;
    case Kind::every_block: flags.assign(size_t(block_count), true); break;
    case Kind::every_kth_block:
      SG_CHECK(k >= 1, "checkpoint policy: every k-th block needs k >= 1, got ", k);
      for (int64_t i = 0; i < block_count; i += k) flags[size_t(i)] = true;
      break;
    case Kind::selected_blocks:
      // Blocks past the selection's end are not checkpointed; a selected block past the
      // network's end is an error.
      for (size_t i = 0; i < selected.size(); ++i) {
        SG_CHECK(!selected[i] || int64_t(i) < block_count, "checkpoint policy '", str(), "' selects block ", i,
                 " but the network has ", block_count, " blocks (0..", block_count - 1, ")");
        if (int64_t(i) < block_count) flags[i] = selected[i];
      }
      break;
    case Kind::automatic:
      throw Error("checkpoint policy 'auto' must be resolved for a memory budget first (nn::choose_checkpointing)");
  }
  return flags;
}

std::string CheckpointPolicy::str() const {
  switch (kind) {
    case Kind::none: return "none";
    case Kind::every_block: return "every";
    case Kind::every_kth_block: return detail::concat("every:", k);
    case Kind::automatic: return "auto";
    case Kind::selected_blocks: {
      std::string out = "blocks:";
      bool first = true;
      for (size_t i = 0; i < selected.size(); ++i)
        if (selected[i]) {
          if (!first) out += ',';
          out += std::to_string(i);
          first = false;
        }
      return out;
    }
  }
  return "?";
}

CheckpointPolicy parse_checkpoint_policy(std::string_view text) {
  if (text == "none" || text == "off") return CheckpointPolicy::none();
  if (text == "every" || text == "all") return CheckpointPolicy::every_block();
  if (text == "auto") return CheckpointPolicy::automatic();
  if (text.rfind("every:", 0) == 0) {
    const int64_t k = parse_count(text.substr(6), text);
    SG_CHECK(k >= 1, "checkpoint policy '", text, "': K must be >= 1 (expected ", kForms, ")");
    return CheckpointPolicy::every_kth_block(k);
  }
  if (text.rfind("blocks:", 0) == 0) {
    std::vector<int64_t> indices;
    std::string_view rest = text.substr(7);
    SG_CHECK(!rest.empty(), "checkpoint policy '", text, "': no block indices (expected ", kForms, ")");
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      indices.push_back(parse_count(rest.substr(0, comma), text));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    int64_t count = 0;
    for (int64_t i : indices) count = std::max(count, i + 1);
    std::vector<bool> selected(size_t(count), false);
    for (int64_t i : indices) selected[size_t(i)] = true;
    // The length is the highest index + 1; resolve() pads it to the network's block count.
    return CheckpointPolicy::blocks(std::move(selected));
  }
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos)
    return CheckpointPolicy::every_kth_block(std::max<int64_t>(1, parse_count(text, text)));
  throw Error(detail::concat("unknown checkpoint policy '", text, "' (expected ", kForms, ")"));
}

Tensor checkpointed_forward(Context& ctx, Module& block, const Tensor& x) {
  if (!ctx.keep_for_backward()) return block.forward(ctx, x);
  const uint64_t first_offset = ctx.rng_offset();
  Tensor y;
  {
    const FlagScope saving_off(ctx, /*keep=*/false, /*recomputing=*/false);
    y = block.forward(ctx, x);
  }
  // The record sits under the block's own key: the block saved nothing in this pass, and its
  // recompute saves under that key again only after backward has taken the record.
  ctx.save(&block, CheckpointRecord{.x = x, .rng_offset = first_offset, .rng_count = ctx.rng_offset() - first_offset});
  return y;
}

Tensor checkpointed_backward(Context& ctx, Module& block, const Tensor& dy) {
  CheckpointRecord record = ctx.take<CheckpointRecord>(&block, block.name() + " (checkpointed)");
  Tensor x = std::move(record.x);
  const uint64_t resume_offset = ctx.rng_offset();
  ctx.set_rng_offset(record.rng_offset);
  {
    const FlagScope recompute(ctx, /*keep=*/true, /*recomputing=*/true);
    const AllocationScope part("recompute");  // named in out-of-memory messages and the memory plan
    block.forward(ctx, x);  // the output is not needed: only what the block saved
  }
  const uint64_t drawn = ctx.rng_offset() - record.rng_offset;
  ctx.set_rng_offset(resume_offset);
  SG_CHECK(drawn == record.rng_count, "'", block.name(), "': the recomputed forward drew ", drawn,
           " random offsets but the first pass drew ", record.rng_count, " (was the training mode switched?)");
  x = Tensor();  // the block's first layer holds it now, and frees it in its backward
  return block.backward(ctx, dy);
}

}  // namespace sg::nn
